"""Routers: estimators that choose a model for each query."""

from ._base import BaseRouter
from ._kmeans import KMeansRouter
from ._knn import KNNRouter
from ._mf import MFRouter
from ._reference import RandomRouter, SingleModelRouter

__all__ = [
    "BaseRouter",
    "KMeansRouter",
    "KNNRouter",
    "MFRouter",
    "RandomRouter",
    "SingleModelRouter",
]

"""Featurizers: scikit-learn transformers that turn queries into vectors.

``CLIPFeaturizer`` embeds the text and the image of each query with open_clip,
and ``AdaptiveFusion`` fuses the two halves into one vector per query.
"""

from ._clip import CLIPFeaturizer
from ._fusion import AdaptiveFusion
from ._images import ImageReadError

__all__ = [
    "AdaptiveFusion",
    "CLIPFeaturizer",
    "ImageReadError",
]

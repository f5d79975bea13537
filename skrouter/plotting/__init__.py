"""Plots of routers' cost-quality trade-offs.

matplotlib is imported only when something is drawn; install it with
``pip install "skrouter[plot]"``.
"""

from ._display import CostQualityDisplay

__all__ = ["CostQualityDisplay"]

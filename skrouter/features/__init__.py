"""Featurizers: scikit-learn transformers that turn queries into vectors.

``CLIPFeaturizer`` embeds the text and the image of each query with open_clip,
and ``AdaptiveFusion`` fuses the two halves into one vector per query.
``make_offline_featurizer`` combines ``SentenceEmbedder`` (packaged MiniLM
sentence embeddings) and ``ImageStatsFeaturizer`` (visual complexity measures
computed from pixels), which need no download.
"""

from ._clip import CLIPFeaturizer
from ._fusion import AdaptiveFusion
from ._image_stats import ImageStatsFeaturizer
from ._images import ImageReadError
from ._offline import make_offline_featurizer
from ._text import SentenceEmbedder

__all__ = [
    "AdaptiveFusion",
    "CLIPFeaturizer",
    "ImageReadError",
    "ImageStatsFeaturizer",
    "SentenceEmbedder",
    "make_offline_featurizer",
]

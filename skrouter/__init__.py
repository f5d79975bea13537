"""Cost-aware routing of queries to LLMs and multimodal LLMs.

skrouter picks, for each query, the model that should answer it, trading
answer quality against cost. Featurizers are scikit-learn transformers,
routers are estimators, and both compose in a ``Pipeline``.
"""

from ._outcomes import check_outcomes, complete_rows, make_outcomes
from ._persistence import get_trusted_types
from .plotting import CostQualityDisplay

__version__ = "0.1.0.dev0"

__all__ = [
    "CostQualityDisplay",
    "check_outcomes",
    "complete_rows",
    "get_trusted_types",
    "make_outcomes",
]

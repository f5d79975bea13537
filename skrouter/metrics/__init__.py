"""Cost-quality curves, their summaries, and scorers for routers."""

from ._curve import cost_quality_curve, pareto_frontier
from ._scorer import get_scorer, get_scorer_names, get_scorers, refit_within_budget
from ._scores import (
    nauc_score,
    oracle_curve,
    peak_score,
    qnc_score,
    single_model_points,
)

__all__ = [
    "cost_quality_curve",
    "get_scorer",
    "get_scorer_names",
    "get_scorers",
    "nauc_score",
    "oracle_curve",
    "pareto_frontier",
    "peak_score",
    "qnc_score",
    "refit_within_budget",
    "single_model_points",
]

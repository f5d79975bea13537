"""Summaries of a cost-quality curve: nAUC, peak score and QNC, and baselines."""

import numpy as np
import pandas as pd

from .._outcomes import _check_complete
from ._curve import (
    _check_predictions,
    _check_sweep,
    _sweep,
    cost_quality_curve,
    pareto_frontier,
)

_COST_RANGES = ("models", "frontier")

# Means of 0/1 outcomes computed along different paths can differ in the last
# bits; a quality counts as reaching a target within this tolerance.
_QUALITY_TOLERANCE = 1e-12


def nauc_score(
    y_true, quality_pred, cost_pred, *, sweep="cost_weight", cost_range="models"
):
    """Compute the normalized area under a router's cost-quality frontier.

    The frontier of the router's operating points (see
    :func:`cost_quality_curve` and :func:`pareto_frontier`) is interpolated
    linearly into a curve ``Q(c)``: 0 below its first point and equal to its
    last quality beyond its last point. The score is the mean of ``Q`` over a
    cost range ``[c_lo, c_hi]``.

    Parameters
    ----------
    y_true : DataFrame of shape (n_queries, 2 * n_models)
        True outcomes. Rows with a missing outcome are left out with a
        warning.
    quality_pred : array-like of shape (n_queries, n_models)
        Predicted qualities, in the model order of ``y_true``.
    cost_pred : array-like of shape (n_queries, n_models)
        Predicted costs, finite and >= 0.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points, see :func:`cost_quality_curve`.
    cost_range : {"models", "frontier"}, default="models"
        ``"models"``: from the cheapest to the most expensive single model's
        mean cost on ``y_true``, the same range for every router on the same
        data, so scores compare. ``"frontier"``: the frontier's own first and
        last cost, as MMR-Bench normalizes each router.

    Returns
    -------
    score : float
        In [0, 1]. When the range is a single cost, the frontier's best
        quality.

    See Also
    --------
    peak_score : Best quality on the frontier.
    qnc_score : Relative cost of matching the best single model.

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> from skrouter.metrics import nauc_score
    >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]])
    >>> float(nauc_score(y, y["quality"], y["cost"]))
    0.875
    """
    if cost_range not in _COST_RANGES:
        raise ValueError(
            f"cost_range must be one of {_COST_RANGES}; got {cost_range!r}."
        )
    frontier_costs, frontier_qualities, model_costs, _ = _frontier_and_models(
        y_true, quality_pred, cost_pred, sweep
    )
    return _nauc_of_frontier(
        frontier_costs, frontier_qualities, model_costs, cost_range
    )


def peak_score(y_true, quality_pred, cost_pred, *, sweep="cost_weight"):
    """Compute the best mean quality among a router's operating points (Ps).

    Parameters
    ----------
    y_true : DataFrame of shape (n_queries, 2 * n_models)
        True outcomes.
    quality_pred : array-like of shape (n_queries, n_models)
        Predicted qualities.
    cost_pred : array-like of shape (n_queries, n_models)
        Predicted costs.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points.

    Returns
    -------
    score : float

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> from skrouter.metrics import peak_score
    >>> y = make_outcomes([[1, 0], [0, 1]], [[4.0, 1.0], [4.0, 1.0]])
    >>> float(peak_score(y, y["quality"], y["cost"]))
    1.0
    """
    _, qualities, _ = cost_quality_curve(y_true, quality_pred, cost_pred, sweep=sweep)
    return float(qualities.max())


def qnc_score(y_true, quality_pred, cost_pred, *, sweep="cost_weight"):
    """Compute the relative cost at which a router matches the best single model.

    The best single model has the highest mean quality on ``y_true`` (ties:
    lower mean cost, then the earlier model). QNC is the cost of the first
    frontier point whose quality reaches that model's (within ``1e-12``),
    divided by that model's mean cost. Lower is better; below 1 the router
    matches the best model for less.

    Parameters
    ----------
    y_true : DataFrame of shape (n_queries, 2 * n_models)
        True outcomes.
    quality_pred : array-like of shape (n_queries, n_models)
        Predicted qualities.
    cost_pred : array-like of shape (n_queries, n_models)
        Predicted costs.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points.

    Returns
    -------
    score : float
        ``inf`` when no operating point reaches the best model's quality,
        ``nan`` when the best model's mean cost is 0.

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> from skrouter.metrics import qnc_score
    >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]])
    >>> float(qnc_score(y, y["quality"], y["cost"]))
    0.625
    """
    frontier_costs, frontier_qualities, model_costs, model_qualities = (
        _frontier_and_models(y_true, quality_pred, cost_pred, sweep)
    )
    return _qnc_of_frontier(
        frontier_costs, frontier_qualities, model_costs, model_qualities
    )


def single_model_points(y_true):
    """Compute each model's mean cost and mean quality, a baseline point each.

    Parameters
    ----------
    y_true : DataFrame of shape (n_queries, 2 * n_models)
        True outcomes. Rows with a missing outcome are left out with a
        warning, as in every metric.

    Returns
    -------
    points : DataFrame
        Indexed by model name, columns ``"cost"`` and ``"quality"``.

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> from skrouter.metrics import single_model_points
    >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]],
    ...                   models=["large", "small"])
    >>> single_model_points(y)
           cost  quality
    large   4.0      1.0
    small   1.0      0.5
    """
    quality, cost, models, _ = _check_complete(y_true, "y_true")
    return pd.DataFrame(
        {"cost": cost.mean(axis=0), "quality": quality.mean(axis=0)},
        index=pd.Index(models, name=None),
    )


def oracle_curve(y_true, *, sweep="cost_weight"):
    """Compute the curve of a router that knows the true outcomes.

    Parameters
    ----------
    y_true : DataFrame of shape (n_queries, 2 * n_models)
        True outcomes.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points.

    Returns
    -------
    costs, qualities, thresholds : ndarray
        As returned by :func:`cost_quality_curve` with the true qualities and
        costs passed as the predictions.

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> from skrouter.metrics import oracle_curve
    >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]])
    >>> costs, qualities, _ = oracle_curve(y)
    >>> costs, qualities
    (array([2.5, 1. ]), array([1. , 0.5]))
    """
    quality, cost, _, complete = _check_complete(y_true, "y_true")
    y_complete = y_true[complete]
    return cost_quality_curve(y_complete, quality, cost, sweep=sweep)


def _frontier_and_models(y_true, quality_pred, cost_pred, sweep):
    """Frontier of the router and mean cost and quality of each single model."""
    _check_sweep(sweep)
    quality, cost, quality_pred, cost_pred = _check_predictions(
        y_true, quality_pred, cost_pred
    )
    return _frontier_and_models_of_arrays(quality, cost, quality_pred, cost_pred, sweep)


def _frontier_and_models_of_arrays(quality, cost, quality_pred, cost_pred, sweep):
    """As :func:`_frontier_and_models`, on validated arrays of complete rows."""
    costs, qualities, _ = _sweep(quality, cost, quality_pred, cost_pred, sweep)
    frontier_costs, frontier_qualities = pareto_frontier(costs, qualities)
    return frontier_costs, frontier_qualities, cost.mean(axis=0), quality.mean(axis=0)


def _nauc_of_frontier(frontier_costs, frontier_qualities, model_costs, cost_range):
    """nAUC of a frontier over the range that ``cost_range`` names."""
    if cost_range == "models":
        low, high = model_costs.min(), model_costs.max()
    else:
        low, high = frontier_costs[0], frontier_costs[-1]
    return _mean_over_range(frontier_costs, frontier_qualities, low, high)


def _qnc_of_frontier(frontier_costs, frontier_qualities, model_costs, model_qualities):
    """QNC of a frontier against the best single model of the given means.

    The best model has the highest mean quality, then the lower mean cost,
    then comes first.
    """
    order = np.arange(model_costs.shape[0])
    best = np.lexsort((order, model_costs, -model_qualities))[0]
    if model_costs[best] == 0:
        return float("nan")
    reached = frontier_qualities >= model_qualities[best] - _QUALITY_TOLERANCE
    if not reached.any():
        return float("inf")
    return float(frontier_costs[np.argmax(reached)] / model_costs[best])


def _mean_over_range(frontier_costs, frontier_qualities, low, high):
    """Mean of the interpolated frontier curve over ``[low, high]``."""
    if not high > low:
        return float(frontier_qualities.max())

    # Nodes of the piecewise linear curve inside the range. The curve jumps
    # from 0 to the first frontier quality at the first frontier cost, so
    # that cost is a node and each segment lies wholly on one side of it.
    inside = frontier_costs[(frontier_costs > low) & (frontier_costs < high)]
    nodes = np.concatenate(([low], inside, [high]))
    values = np.interp(
        nodes,
        frontier_costs,
        frontier_qualities,
        left=0.0,
        right=frontier_qualities[-1],
    )
    widths = np.diff(nodes)
    heights = 0.5 * (values[:-1] + values[1:])
    heights[nodes[1:] <= frontier_costs[0]] = 0.0
    return float(np.sum(widths * heights) / (high - low))

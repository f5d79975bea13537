"""Exact cost-quality curves of a router's predictions.

An operating point is one routing rule applied to every query. Its coordinates
are the mean true cost and the mean true quality of the models it chooses. A
sweep walks through every distinct rule of one family (cost weights, or caps on
the predicted cost) and returns one point per distinct threshold.

Both sweeps are computed the way ``roc_curve`` computes its thresholds. Each
query contributes the few thresholds at which its choice changes, as events
``(threshold, change in true cost, change in true quality)``. One sort of all
events and cumulative sums then give every point at once.
"""

import numpy as np

from .._choice import _first_best
from .._outcomes import _check_complete

_SWEEPS = ("cost_weight", "cap")


def cost_quality_curve(
    y_true, quality_pred, cost_pred, *, sweep="cost_weight", cost_scale=None
):
    """Compute the operating points of a router over all thresholds.

    Parameters
    ----------
    y_true : DataFrame of shape (n_queries, 2 * n_models)
        True outcomes (see :func:`skrouter.make_outcomes`). Rows with a missing
        outcome are left out with a warning.
    quality_pred : array-like of shape (n_queries, n_models)
        Predicted quality of each model for each query, in the model order of
        ``y_true``.
    cost_pred : array-like of shape (n_queries, n_models)
        Predicted cost of each model for each query, finite and >= 0.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        ``"cost_weight"``: every cost weight λ >= 0 of the utility
        ``quality_pred - λ * cost_pred / cost_scale``. ``"cap"``: every cap C
        on the predicted cost. Under a cap each query takes the best-predicted
        model among those with ``cost_pred <= C``, or its predicted-cheapest
        model when none is eligible.
    cost_scale : float, default=None
        Divides the predicted costs in the utility; it only rescales the λ
        values reported. By default the largest per-model mean cost in
        ``y_true`` (1.0 when all costs are 0). Ignored by the cap sweep.

    Returns
    -------
    costs : ndarray of shape (n_points,)
        Mean true cost of each operating point.
    qualities : ndarray of shape (n_points,)
        Mean true quality of each operating point.
    thresholds : ndarray of shape (n_points,)
        Increasing thresholds: λ values (0 first, then every breakpoint, each
        point being the choice just after it) or caps (the distinct predicted
        costs).

    Notes
    -----
    Ties are broken the same way everywhere: the higher utility (or predicted
    quality under a cap) wins, then the lower predicted cost, then the earlier
    model. The computation takes O(n m log(n m)) time for n queries and m
    models, with a loop over the models only.

    Examples
    --------
    >>> import numpy as np
    >>> from skrouter import make_outcomes
    >>> from skrouter.metrics import cost_quality_curve
    >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]])
    >>> quality_pred = np.array([[0.9, 0.2], [0.6, 0.5]])
    >>> costs, qualities, lambdas = cost_quality_curve(y, quality_pred, y["cost"])
    >>> costs
    array([4. , 2.5, 1. ])
    >>> qualities
    array([1. , 1. , 0.5])
    """
    _check_sweep(sweep)
    quality, cost, quality_pred, cost_pred = _check_predictions(
        y_true, quality_pred, cost_pred
    )
    cost_scale = _check_cost_scale(cost_scale, cost)
    return _sweep(quality, cost, quality_pred, cost_pred, sweep, cost_scale)


def pareto_frontier(costs, qualities):
    """Keep the operating points that no cheaper point matches in quality.

    Points are sorted by cost, and equal costs by quality from the best. A
    point is kept when its quality exceeds that of every point before it by
    more than ``1e-12``. The tolerance keeps equal means of 0/1 outcomes,
    computed along different paths, from making a step.

    Parameters
    ----------
    costs : array-like of shape (n_points,)
        Mean cost of each point.
    qualities : array-like of shape (n_points,)
        Mean quality of each point.

    Returns
    -------
    frontier_costs : ndarray
        Costs of the frontier points, increasing.
    frontier_qualities : ndarray
        Their qualities, strictly increasing.

    Examples
    --------
    >>> from skrouter.metrics import pareto_frontier
    >>> pareto_frontier([3.0, 1.0, 2.0, 2.0], [0.9, 0.5, 0.4, 0.7])
    (array([1., 2., 3.]), array([0.5, 0.7, 0.9]))
    """
    costs = _check_points(costs, "costs")
    qualities = _check_points(qualities, "qualities")
    if costs.shape != qualities.shape:
        raise ValueError(
            f"costs and qualities must have the same length; got {costs.shape[0]} "
            f"and {qualities.shape[0]}."
        )

    order = np.lexsort((-qualities, costs))
    costs, qualities = costs[order], qualities[order]

    # A point is dominated by everything before it in this order, unless it
    # beats their best quality.
    best_before = np.maximum.accumulate(qualities)
    best_before = np.concatenate(([-np.inf], best_before[:-1]))
    keep = qualities > best_before + 1e-12
    return costs[keep], qualities[keep]


def _sweep(quality, cost, quality_pred, cost_pred, sweep, cost_scale=None):
    """Run a sweep on validated arrays of complete rows."""
    if sweep == "cost_weight":
        if cost_scale is None:
            cost_scale = _default_cost_scale(cost)
        return _cost_weight_sweep(quality, cost, quality_pred, cost_pred, cost_scale)
    return _cap_sweep(quality, cost, quality_pred, cost_pred)


def _check_sweep(sweep):
    if sweep not in _SWEEPS:
        raise ValueError(f"sweep must be one of {_SWEEPS}; got {sweep!r}.")


def _cost_weight_sweep(quality, cost, quality_pred, cost_pred, cost_scale):
    events = _events_by_block(
        _cost_weight_events, quality, cost, quality_pred, cost_pred
    )
    return _cost_weight_points(quality.shape[0], *events, cost_scale)


# Queries per block when finding events: the temporaries of a block of
# (rows, models) arrays then stay in the processor's cache, which keeps the
# time linear in the number of queries beyond a few hundred thousand.
_BLOCK_QUERIES = 2**15


def _events_by_block(find_events, quality, cost, quality_pred, cost_pred):
    """Run an events function on blocks of queries and join the results."""
    n_queries = quality.shape[0]
    if n_queries <= _BLOCK_QUERIES:
        return find_events(quality, cost, quality_pred, cost_pred)

    start_cost, start_quality, thresholds, cost_changes, quality_changes = (
        0.0,
        0.0,
        [],
        [],
        [],
    )
    for start in range(0, n_queries, _BLOCK_QUERIES):
        block = slice(start, start + _BLOCK_QUERIES)
        events = find_events(
            quality[block], cost[block], quality_pred[block], cost_pred[block]
        )
        start_cost += events[0]
        start_quality += events[1]
        thresholds.append(events[2])
        cost_changes.append(events[3])
        quality_changes.append(events[4])
    return (
        start_cost,
        start_quality,
        np.concatenate(thresholds),
        np.concatenate(cost_changes),
        np.concatenate(quality_changes),
    )


def _cost_weight_points(
    n_queries,
    start_cost,
    start_quality,
    event_slopes,
    event_costs,
    event_qualities,
    cost_scale,
):
    """Turn the events of ``_cost_weight_events`` into operating points."""
    thresholds, cost_sums, quality_sums = _accumulate_events(
        [event_slopes], [event_costs], [event_qualities], start_cost, start_quality
    )
    thresholds = np.concatenate(([0.0], cost_scale * thresholds))
    cost_sums = np.concatenate(([start_cost], cost_sums))
    quality_sums = np.concatenate(([start_quality], quality_sums))
    return cost_sums / n_queries, quality_sums / n_queries, thresholds


def _cost_weight_events(quality, cost, quality_pred, cost_pred):
    """Find where each query's choice changes as the cost weight grows.

    Returns the true cost and quality summed over the choices at λ = 0, and
    one event per switch: its slope ``dq / dc`` (λ divided by the cost
    scale) and the changes in true cost and quality. Events of disjoint sets
    of queries can be concatenated and accumulated together.
    """
    n_queries = quality.shape[0]
    rows = np.arange(n_queries)

    # The choice at λ = 0: best predicted quality, then lower cost, then the
    # earlier model.
    current = _first_best(quality_pred, -cost_pred)
    start_cost = cost[rows, current].sum()
    start_quality = quality[rows, current].sum()

    # Walk each query's upper-left convex hull toward cheaper models. Every
    # step strictly lowers the predicted cost, so at most m - 1 steps happen.
    event_lambdas, event_costs, event_qualities = [], [], []
    active = rows
    last_lambda = np.zeros(n_queries)
    for _ in range(quality.shape[1] - 1):
        current_cost = cost_pred[active, current[active]][:, None]
        current_quality = quality_pred[active, current[active]][:, None]
        cheaper = cost_pred[active] < current_cost
        # Hull decisions use the slope dq / dc alone, so that which models tie
        # does not depend on how cost_scale rounds; λ is that slope times it.
        with np.errstate(divide="ignore", invalid="ignore"):
            lambdas = (current_quality - quality_pred[active]) / (
                current_cost - cost_pred[active]
            )
        lambdas = np.where(cheaper, lambdas, np.inf)
        next_lambda = lambdas.min(axis=1)
        has_next = np.isfinite(next_lambda)
        if not has_next.any():
            break
        active = active[has_next]
        lambdas = lambdas[has_next]
        next_lambda = next_lambda[has_next]

        # Among models that become best at the same λ, the cheapest wins just
        # after it, then the better predicted quality, then the earlier model.
        tied = lambdas == next_lambda[:, None]
        tied_cost = np.where(tied, cost_pred[active], np.inf)
        following = _first_best(-tied_cost, quality_pred[active])

        # Rounding could make a later breakpoint fall a hair before an earlier
        # one; the hull's breakpoints never decrease, so clamp them.
        next_lambda = np.maximum(next_lambda, last_lambda[active])
        last_lambda[active] = next_lambda

        previous = current[active]
        event_lambdas.append(next_lambda)
        event_costs.append(cost[active, following] - cost[active, previous])
        event_qualities.append(quality[active, following] - quality[active, previous])
        current[active] = following

    return (
        start_cost,
        start_quality,
        np.concatenate(event_lambdas or [np.empty(0)]),
        np.concatenate(event_costs or [np.empty(0)]),
        np.concatenate(event_qualities or [np.empty(0)]),
    )


def _cap_sweep(quality, cost, quality_pred, cost_pred):
    events = _events_by_block(_cap_events, quality, cost, quality_pred, cost_pred)
    return _cap_points(quality.shape[0], *events, np.unique(cost_pred))


def _cap_points(
    n_queries, start_cost, start_quality, event_caps, event_costs, event_qualities, caps
):
    """Turn the events of ``_cap_events`` into one point per distinct cap."""
    thresholds, cost_sums, quality_sums = _accumulate_events(
        [event_caps],
        [event_costs],
        [event_qualities],
        start_cost,
        start_quality,
        grid=caps,
    )
    return cost_sums / n_queries, quality_sums / n_queries, thresholds


def _cap_events(quality, cost, quality_pred, cost_pred):
    """Find where each query's choice changes as the cap on cost grows.

    Returns the true cost and quality summed over the choices below every
    cap, and one event per switch: the predicted cost at which it happens
    and the changes in true cost and quality.
    """
    n_queries, n_models = quality.shape
    rows = np.arange(n_queries)[:, None]

    # Visit each query's models by predicted cost, then best predicted quality,
    # then model order. Below its cheapest cost a query takes the first of
    # them, which is also the fallback rule for a query with no eligible model.
    order = np.lexsort(
        (
            np.broadcast_to(np.arange(n_models), cost_pred.shape),
            -quality_pred,
            cost_pred,
        )
    )
    sorted_quality_pred = quality_pred[rows, order]

    # A newly eligible model replaces the running best only when its predicted
    # quality is strictly higher, since ties go to the cheaper model.
    running_best = np.maximum.accumulate(sorted_quality_pred, axis=1)
    improves = np.zeros_like(sorted_quality_pred, dtype=bool)
    improves[:, 1:] = sorted_quality_pred[:, 1:] > running_best[:, :-1]

    # Position of the running best after each position, then the switches.
    position = np.where(improves, np.arange(n_models), 0)
    position = np.maximum.accumulate(position, axis=1)
    chosen = order[rows, position]
    switch_rows, switch_cols = np.nonzero(improves)
    following = chosen[switch_rows, switch_cols]
    previous = chosen[switch_rows, switch_cols - 1]

    start = order[:, 0]
    start_cost = cost[rows[:, 0], start].sum()
    start_quality = quality[rows[:, 0], start].sum()

    return (
        start_cost,
        start_quality,
        cost_pred[switch_rows, following],
        cost[switch_rows, following] - cost[switch_rows, previous],
        quality[switch_rows, following] - quality[switch_rows, previous],
    )


def _accumulate_events(
    event_thresholds, event_costs, event_qualities, start_cost, start_quality, grid=None
):
    """Sum the events at each distinct threshold, then cumulate from the start.

    Without ``grid`` the thresholds are the distinct event thresholds; with it,
    every grid value gets a point, events falling on grid values.
    """
    event_thresholds = np.concatenate(event_thresholds or [np.empty(0)])
    event_costs = np.concatenate(event_costs or [np.empty(0)])
    event_qualities = np.concatenate(event_qualities or [np.empty(0)])

    if grid is None:
        grid, group = np.unique(event_thresholds, return_inverse=True)
    else:
        # Looking up sorted keys walks the grid in order, which is several
        # times faster than random lookups once the grid outgrows the cache.
        order = np.argsort(event_thresholds, kind="stable")
        group = np.empty(event_thresholds.shape[0], dtype=np.intp)
        group[order] = np.searchsorted(grid, event_thresholds[order])
    cost_steps = np.bincount(group, weights=event_costs, minlength=grid.shape[0])
    quality_steps = np.bincount(group, weights=event_qualities, minlength=grid.shape[0])
    return (
        grid,
        start_cost + np.cumsum(cost_steps),
        start_quality + np.cumsum(quality_steps),
    )


def _check_predictions(y_true, quality_pred, cost_pred):
    """Validate the inputs of a curve; keep the rows complete in ``y_true``.

    The warning about incomplete rows is issued here, once per metric call.
    """
    quality, cost, models, complete = _check_complete(y_true, "y_true")
    quality_pred, cost_pred = _check_prediction_values(
        quality_pred, cost_pred, complete, len(models)
    )
    return quality, cost, quality_pred, cost_pred


def _check_prediction_values(quality_pred, cost_pred, complete, n_models):
    """Validate predictions for the rows of ``complete``; keep the complete ones."""
    n_queries = complete.shape[0]
    checked = []
    for name, values in (("quality_pred", quality_pred), ("cost_pred", cost_pred)):
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a numeric array of shape (n_queries, n_models); "
                f"got {type(values).__name__} with non-numeric values."
            ) from None
        if values.shape != (n_queries, n_models):
            raise ValueError(
                f"{name} must have shape (n_queries, n_models) = "
                f"({n_queries}, {n_models}) to match y_true; got {values.shape}."
            )
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite; got NaN or infinite values.")
        checked.append(values[complete])
    quality_pred, cost_pred = checked
    if (cost_pred < 0).any():
        raise ValueError(
            f"cost_pred must be >= 0; got a minimum of {cost_pred.min()!r}."
        )
    return quality_pred, cost_pred


def _check_cost_scale(cost_scale, cost):
    if cost_scale is None:
        return _default_cost_scale(cost)
    if not np.isscalar(cost_scale) or not np.isfinite(cost_scale) or cost_scale <= 0:
        raise ValueError(
            f"cost_scale must be a positive finite number; got {cost_scale!r}."
        )
    return float(cost_scale)


def _default_cost_scale(cost):
    """Largest per-model mean cost over observed outcomes; 1.0 when it is 0."""
    scale = float(np.nanmax(np.nanmean(cost, axis=0)))
    return scale if scale > 0 else 1.0


def _check_points(values, name):
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D array of numbers.") from None
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array; got shape {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite; got NaN or infinite values.")
    return values

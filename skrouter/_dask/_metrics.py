"""Exact cost-quality curves and their scores for Dask DataFrames.

Each partition is reduced, where it lives, to per-model sums of the true
outcomes and to the events of the in-memory sweeps: the thresholds at which a
query's choice changes, with the changes in true cost and quality, summed per
distinct threshold. The client then merges every partition's events with
one sort and takes cumulative sums, as :func:`skrouter.metrics.cost_quality_curve`
does for one array, so both give the same points up to the order of
floating-point additions.
"""

import numpy as np

from .._outcomes import _outcome_arrays
from .._params import warn
from ..metrics._curve import (
    _cap_events,
    _cap_points,
    _check_cost_scale,
    _check_sweep,
    _cost_weight_events,
    _cost_weight_points,
    pareto_frontier,
)
from ..metrics._scores import _COST_RANGES, _nauc_of_frontier, _qnc_of_frontier
from ._columns import (
    COST_PRED_PREFIX,
    COST_PREFIX,
    QUALITY_PRED_PREFIX,
    QUALITY_PREFIX,
    outcome_models,
    prediction_columns,
    unflatten_outcomes,
)


def cost_quality_curve(
    y_true, quality_pred, cost_pred, *, sweep="cost_weight", cost_scale=None
):
    """Compute the operating points of a router from Dask DataFrames.

    The result is that of :func:`skrouter.metrics.cost_quality_curve` on the
    same rows held in memory.

    Parameters
    ----------
    y_true : dask.dataframe.DataFrame
        True outcomes as flat columns ``"quality__<model>"`` and
        ``"cost__<model>"`` (see :func:`flatten_outcomes`); other columns are
        ignored. Model order is the order of the quality columns. Rows with a
        missing outcome are left out with one warning.
    quality_pred : dask.dataframe.DataFrame
        Predicted qualities: the columns ``"quality_pred__<model>"`` (as
        :func:`route_queries` returns them) or, when those are absent, columns
        named after the models. Other columns are ignored.
    cost_pred : dask.dataframe.DataFrame
        Predicted costs, finite and >= 0: the columns ``"cost_pred__<model>"``
        or columns named after the models. It may be the same frame as
        ``quality_pred`` or ``y_true``, and then its partitions are computed
        once. The three frames must have the same number of partitions, and
        each partition the same index in all three.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points, see
        :func:`skrouter.metrics.cost_quality_curve`.
    cost_scale : float, default=None
        Rescales the λ values reported. By default the largest per-model mean
        cost in ``y_true`` (1.0 when all costs are 0). Ignored by the cap
        sweep.

    Returns
    -------
    costs : ndarray of shape (n_points,)
        Mean true cost of each operating point.
    qualities : ndarray of shape (n_points,)
        Mean true quality of each operating point.
    thresholds : ndarray of shape (n_points,)
        Increasing λ values or caps.

    Notes
    -----
    The inputs are computed when this function is called. Workers send the
    client each partition's distinct thresholds with their summed changes,
    so the client stores one entry per distinct threshold. That is the size
    of the returned curve, at most the number of queries times the number of
    models.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from skrouter import make_outcomes
    >>> from skrouter.dask import cost_quality_curve, flatten_outcomes
    >>> y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]])
    >>> table = flatten_outcomes(y).assign(
    ...     quality_pred__model0=[0.9, 0.6], quality_pred__model1=[0.2, 0.5],
    ...     cost_pred__model0=[4.0, 4.0], cost_pred__model1=[1.0, 1.0],
    ... )
    >>> frame = dd.from_pandas(table, npartitions=2)
    >>> costs, qualities, lambdas = cost_quality_curve(frame, frame, frame)
    >>> costs
    array([4. , 2.5, 1. ])
    >>> qualities
    array([1. , 1. , 0.5])
    """
    _check_sweep(sweep)
    if cost_scale is not None:
        cost_scale = _check_cost_scale(cost_scale, None)
    costs, qualities, thresholds, _, _ = _curve_and_models(
        y_true, quality_pred, cost_pred, sweep, cost_scale
    )
    return costs, qualities, thresholds


def nauc_score(
    y_true, quality_pred, cost_pred, *, sweep="cost_weight", cost_range="models"
):
    """Compute the nAUC of a router from Dask DataFrames.

    The result is that of :func:`skrouter.metrics.nauc_score` on the same
    rows held in memory.

    Parameters
    ----------
    y_true, quality_pred, cost_pred : dask.dataframe.DataFrame
        Outcomes and predictions with the same partitions, see
        :func:`cost_quality_curve`.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points.
    cost_range : {"models", "frontier"}, default="models"
        Cost range of the normalization, see
        :func:`skrouter.metrics.nauc_score`.

    Returns
    -------
    score : float
        In [0, 1].
    """
    if cost_range not in _COST_RANGES:
        raise ValueError(
            f"cost_range must be one of {_COST_RANGES}; got {cost_range!r}."
        )
    _check_sweep(sweep)
    costs, qualities, _, model_costs, _ = _curve_and_models(
        y_true, quality_pred, cost_pred, sweep, None
    )
    frontier_costs, frontier_qualities = pareto_frontier(costs, qualities)
    return _nauc_of_frontier(
        frontier_costs, frontier_qualities, model_costs, cost_range
    )


def peak_score(y_true, quality_pred, cost_pred, *, sweep="cost_weight"):
    """Compute the peak score (Ps) of a router from Dask DataFrames.

    The result is that of :func:`skrouter.metrics.peak_score` on the same
    rows held in memory.

    Parameters
    ----------
    y_true, quality_pred, cost_pred : dask.dataframe.DataFrame
        Outcomes and predictions with the same partitions, see
        :func:`cost_quality_curve`.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points.

    Returns
    -------
    score : float
    """
    _check_sweep(sweep)
    _, qualities, _, _, _ = _curve_and_models(
        y_true, quality_pred, cost_pred, sweep, None
    )
    return float(qualities.max())


def qnc_score(y_true, quality_pred, cost_pred, *, sweep="cost_weight"):
    """Compute the QNC of a router from Dask DataFrames.

    The result is that of :func:`skrouter.metrics.qnc_score` on the same
    rows held in memory.

    Parameters
    ----------
    y_true, quality_pred, cost_pred : dask.dataframe.DataFrame
        Outcomes and predictions with the same partitions, see
        :func:`cost_quality_curve`.
    sweep : {"cost_weight", "cap"}, default="cost_weight"
        Family of operating points.

    Returns
    -------
    score : float
        ``inf`` when no operating point reaches the best single model's
        quality, ``nan`` when that model's mean cost is 0.
    """
    _check_sweep(sweep)
    costs, qualities, _, model_costs, model_qualities = _curve_and_models(
        y_true, quality_pred, cost_pred, sweep, None
    )
    frontier_costs, frontier_qualities = pareto_frontier(costs, qualities)
    return _qnc_of_frontier(
        frontier_costs, frontier_qualities, model_costs, model_qualities
    )


def _curve_and_models(y_true, quality_pred, cost_pred, sweep, cost_scale):
    """Compute the curve, and each model's mean true cost and quality."""
    summaries = _summarize_partitions(y_true, quality_pred, cost_pred, sweep)

    n_rows = sum(summary["n_rows"] for summary in summaries)
    n_complete = sum(summary["n_complete"] for summary in summaries)
    if n_complete == 0:
        raise ValueError(
            "y_true has no query with an observed outcome for every model; "
            "metrics need complete rows (see skrouter.complete_rows)."
        )
    if n_complete < n_rows:
        warn(
            f"{n_rows - n_complete} of {n_rows} queries in y_true have missing "
            "outcomes and are left out of the metric.",
        )

    model_costs = sum(summary["cost_sums"] for summary in summaries) / n_complete
    model_qualities = sum(summary["quality_sums"] for summary in summaries) / n_complete
    start_cost = sum(summary["start_cost"] for summary in summaries)
    start_quality = sum(summary["start_quality"] for summary in summaries)
    events = [
        np.concatenate([summary[key] for summary in summaries])
        for key in ("thresholds", "cost_steps", "quality_steps")
    ]

    if sweep == "cost_weight":
        if cost_scale is None:
            largest = float(model_costs.max())
            cost_scale = largest if largest > 0 else 1.0
        costs, qualities, thresholds = _cost_weight_points(
            n_complete, start_cost, start_quality, *events, cost_scale
        )
    else:
        caps = np.unique(np.concatenate([summary["caps"] for summary in summaries]))
        costs, qualities, thresholds = _cap_points(
            n_complete, start_cost, start_quality, *events, caps
        )
    return costs, qualities, thresholds, model_costs, model_qualities


def _summarize_partitions(y_true, quality_pred, cost_pred, sweep):
    """Compute every partition's summary on the cluster; return them in order."""
    import dask
    import dask.dataframe as dd

    inputs = {"y_true": y_true, "quality_pred": quality_pred, "cost_pred": cost_pred}
    for name, frame in inputs.items():
        if not isinstance(frame, dd.DataFrame):
            raise TypeError(
                f"{name} must be a dask.dataframe.DataFrame; got "
                f"{type(frame).__name__}. For data in memory, use the function "
                "of the same name in skrouter.metrics."
            )
    npartitions = {name: frame.npartitions for name, frame in inputs.items()}
    if len(set(npartitions.values())) > 1:
        raise ValueError(
            "y_true, quality_pred and cost_pred must have the same partitions; "
            f"got {npartitions} partitions. Build them from the same queries, "
            "or repartition them alike."
        )

    models = outcome_models(y_true.columns, "y_true")
    columns = {
        "y_true": [QUALITY_PREFIX + name for name in models]
        + [COST_PREFIX + name for name in models],
        "quality_pred": prediction_columns(
            quality_pred.columns, models, QUALITY_PRED_PREFIX, "quality_pred"
        ),
        "cost_pred": prediction_columns(
            cost_pred.columns, models, COST_PRED_PREFIX, "cost_pred"
        ),
    }

    # A frame passed for several arguments is read once, with the union of
    # their columns, so that its partitions (a routing, say) run once.
    distinct = []
    for name, frame in inputs.items():
        for entry in distinct:
            if entry["frame"] is frame:
                entry["names"].append(name)
                break
        else:
            distinct.append({"frame": frame, "names": [name]})
    partitions = []
    for entry in distinct:
        needed = list(
            dict.fromkeys(col for name in entry["names"] for col in columns[name])
        )
        partitions.append(entry["frame"][needed].to_delayed())
    source = {name: k for k, entry in enumerate(distinct) for name in entry["names"]}

    summarize = dask.delayed(_summarize_partition, pure=True)
    tasks = [
        summarize(
            [blocks[number] for blocks in partitions],
            source,
            columns,
            sweep,
            number,
        )
        for number in range(y_true.npartitions)
    ]
    return dask.compute(*tasks)


def _summarize_partition(blocks, source, columns, sweep, number):
    """Reduce one partition to its per-model sums and its summed events."""
    frames = {name: blocks[source[name]][columns[name]] for name in columns}
    y_part = frames["y_true"]
    for name in ("quality_pred", "cost_pred"):
        if len(frames[name]) != len(y_part) or not frames[name].index.equals(
            y_part.index
        ):
            raise ValueError(
                f"Partition {number} of {name} does not describe the same queries "
                f"as y_true: {len(frames[name])} and {len(y_part)} rows, or a "
                "different index. Build the predictions from the same queries, "
                "in the same partitions, as the outcomes."
            )

    n_models = len(columns["quality_pred"])
    summary = {
        "n_rows": len(y_part),
        "n_complete": 0,
        "quality_sums": np.zeros(n_models),
        "cost_sums": np.zeros(n_models),
        "start_cost": 0.0,
        "start_quality": 0.0,
        "thresholds": np.empty(0),
        "cost_steps": np.empty(0),
        "quality_steps": np.empty(0),
        "caps": np.empty(0),
    }
    if len(y_part) == 0:
        return summary

    try:
        y = unflatten_outcomes(y_part)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"Partition {number} of y_true (rows counted from the start of the "
            f"partition): {exc}"
        ) from exc
    quality, cost, _ = _outcome_arrays(y)
    quality_pred = _prediction_values(frames["quality_pred"], "quality_pred", number)
    cost_pred = _prediction_values(frames["cost_pred"], "cost_pred", number)
    if (cost_pred < 0).any():
        raise ValueError(
            f"Partition {number} of cost_pred: costs must be >= 0; got a minimum "
            f"of {cost_pred.min()!r}."
        )

    complete = ~np.isnan(quality).any(axis=1)
    summary["n_complete"] = int(complete.sum())
    if not complete.any():
        return summary
    quality, cost = quality[complete], cost[complete]
    quality_pred, cost_pred = quality_pred[complete], cost_pred[complete]
    summary["quality_sums"] = quality.sum(axis=0)
    summary["cost_sums"] = cost.sum(axis=0)

    if sweep == "cost_weight":
        events = _cost_weight_events(quality, cost, quality_pred, cost_pred)
    else:
        events = _cap_events(quality, cost, quality_pred, cost_pred)
        summary["caps"] = np.unique(cost_pred)
    start_cost, start_quality, event_thresholds, event_costs, event_qualities = events

    # Equal thresholds merge here already; the client merges them again
    # across partitions.
    thresholds, group = np.unique(event_thresholds, return_inverse=True)
    summary["start_cost"] = float(start_cost)
    summary["start_quality"] = float(start_quality)
    summary["thresholds"] = thresholds
    summary["cost_steps"] = np.bincount(
        group, weights=event_costs, minlength=thresholds.shape[0]
    )
    summary["quality_steps"] = np.bincount(
        group, weights=event_qualities, minlength=thresholds.shape[0]
    )
    return summary


def _prediction_values(frame, name, number):
    try:
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise TypeError(
            f"Partition {number} of {name}: predictions must be numeric; got the "
            f"dtypes {sorted(set(map(str, frame.dtypes)))}."
        ) from None
    if not np.isfinite(values).all():
        raise ValueError(
            f"Partition {number} of {name}: predictions must be finite; got NaN "
            "or infinite values."
        )
    return values

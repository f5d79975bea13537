"""The outcomes table: what each model's answer to each query was worth and cost.

Outcomes travel as ``y`` through scikit-learn: a DataFrame with one row per
query and two-level columns, ``("quality", model)`` and ``("cost", model)``.
``NaN`` marks an outcome that was not observed. A cell counts as observed when
its quality is, so a cost without a quality is dropped, and a quality without a
cost is an error.
"""

import numpy as np
import pandas as pd

from ._params import warn

QUALITY = "quality"
COST = "cost"


def make_outcomes(quality, cost, models=None, *, index=None):
    """Build the canonical outcomes table from a quality and a cost matrix.

    Parameters
    ----------
    quality : array-like or DataFrame of shape (n_queries, n_models)
        How good each model's answer to each query was, in [0, 1]
        (1/0 for correct/incorrect, fractional for graded answers). ``NaN``
        means that the outcome was not observed.
    cost : array-like or DataFrame of shape (n_queries, n_models)
        What each answer cost, in USD, finite and non-negative. A cost whose
        quality is ``NaN`` is set to ``NaN``.
    models : list of str, default=None
        Model names, in column order. By default the columns of ``quality``
        when it is a DataFrame, else ``"model0"``, ``"model1"``, ...
    index : array-like, default=None
        Row index of the result. By default the index of ``quality`` when it
        is a DataFrame, else a range.

    Returns
    -------
    y : DataFrame of shape (n_queries, 2 * n_models)
        Columns ``("quality", model)`` for every model, then
        ``("cost", model)`` in the same order, all float64.

    See Also
    --------
    check_outcomes : Validate an outcomes table.

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> y = make_outcomes([[1, 0], [0, 1]], [[0.02, 0.001], [0.03, 0.002]],
    ...                   models=["large", "small"])
    >>> y["quality"]
           large  small
    0    1.0    0.0
    1    0.0    1.0
    >>> list(y.columns)
    [('quality', 'large'), ('quality', 'small'), ('cost', 'large'), ('cost', 'small')]
    """
    if models is None:
        if isinstance(quality, pd.DataFrame):
            models = list(quality.columns)
        elif isinstance(cost, pd.DataFrame):
            models = list(cost.columns)
    if index is None:
        for block in (quality, cost):
            if isinstance(block, (pd.DataFrame, pd.Series)):
                index = block.index
                break

    quality = _as_float_matrix(quality, "quality")
    cost = _as_float_matrix(cost, "cost")
    if quality.shape != cost.shape:
        raise ValueError(
            f"quality and cost must have the same shape; got quality of shape "
            f"{quality.shape} and cost of shape {cost.shape}."
        )

    n_models = quality.shape[1]
    if models is None:
        models = [f"model{j}" for j in range(n_models)]
    models = [str(name) if not isinstance(name, str) else name for name in models]
    if len(models) != n_models:
        raise ValueError(
            f"models must name every column: got {len(models)} name(s) for "
            f"{n_models} columns."
        )

    _check_ranges(quality, cost, models, "quality", "cost")

    columns = pd.MultiIndex.from_tuples(
        [(QUALITY, name) for name in models] + [(COST, name) for name in models]
    )
    y = pd.DataFrame(np.hstack([quality, cost]), columns=columns)
    if index is not None:
        if len(index) != len(y):
            raise ValueError(
                f"index must have one entry per query: got {len(index)} entries "
                f"for {len(y)} queries."
            )
        y.index = index
    return check_outcomes(y, input_name="outcomes")


def check_outcomes(y, *, input_name="y", allow_missing=True):
    """Validate an outcomes table and return a clean float64 copy.

    Every function and estimator of skrouter that accepts outcomes calls this
    function, so they all accept and reject the same tables.

    Parameters
    ----------
    y : DataFrame
        Outcomes with two-level columns: level 0 is ``"quality"`` or
        ``"cost"``, level 1 the model name. Every model has both columns.
    input_name : str, default="y"
        Name of the argument, used in error messages.
    allow_missing : bool, default=True
        Whether ``NaN`` outcomes (not observed) are accepted.

    Returns
    -------
    y : DataFrame
        A copy with float64 values, the quality block first and the cost block
        in the same model order, and the cost of every unobserved outcome set
        to ``NaN``.

    Raises
    ------
    TypeError
        If ``y`` is not a DataFrame with two-level columns, or contains
        non-numeric values.
    ValueError
        If the table is empty, a model appears under one level only or twice,
        a quality lies outside [0, 1], a cost is negative or infinite, or a
        quality has no cost.

    Examples
    --------
    >>> import numpy as np
    >>> from skrouter import make_outcomes, check_outcomes
    >>> y = make_outcomes([[1.0, np.nan]], [[0.5, 0.1]], models=["a", "b"])
    >>> check_outcomes(y)["cost"]
         a   b
    0  0.5 NaN
    """
    if not isinstance(y, pd.DataFrame):
        raise TypeError(
            f"{input_name} must be an outcomes DataFrame with two-level columns "
            f"('quality' or 'cost', model name); got {type(y).__name__}. "
            "Build one with skrouter.make_outcomes(quality, cost, models)."
        )
    if not isinstance(y.columns, pd.MultiIndex) or y.columns.nlevels != 2:
        raise TypeError(
            f"{input_name} must have two-level columns ('quality' or 'cost', model "
            f"name); got columns {list(y.columns)[:6]}. Build the table with "
            "skrouter.make_outcomes(quality, cost, models)."
        )

    levels = set(y.columns.get_level_values(0))
    unknown = sorted(map(str, levels - {QUALITY, COST}))
    if unknown:
        raise ValueError(
            f"{input_name} has unknown column groups {unknown}; level 0 of the "
            "columns must be 'quality' or 'cost'."
        )
    quality_models = [name for level, name in y.columns if level == QUALITY]
    cost_models = [name for level, name in y.columns if level == COST]
    for level, names in ((QUALITY, quality_models), (COST, cost_models)):
        duplicated = sorted({str(name) for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(
                f"{input_name} names the models {duplicated} more than once under "
                f"'{level}'; each model must have one quality and one cost column."
            )
    only_quality = [name for name in quality_models if name not in cost_models]
    only_cost = [name for name in cost_models if name not in quality_models]
    if only_quality or only_cost:
        raise ValueError(
            f"{input_name} must have a 'quality' and a 'cost' column for every "
            f"model; models with quality only: {only_quality}, with cost only: "
            f"{only_cost}."
        )
    if not quality_models:
        raise ValueError(f"{input_name} must describe at least one model; got none.")
    if len(y) == 0:
        raise ValueError(f"{input_name} must have at least one query; got 0 rows.")

    # Positions, not labels: selecting blocks of a two-level column index by
    # label costs milliseconds, and every fit, score and metric calls this.
    columns = list(y.columns)
    cost_position = {
        name: k for k, (level, name) in enumerate(columns) if level == COST
    }
    quality_positions = [k for k, (level, _) in enumerate(columns) if level == QUALITY]
    cost_positions = [cost_position[name] for name in quality_models]
    dtypes = list(y.dtypes)
    for level, positions in ((QUALITY, quality_positions), (COST, cost_positions)):
        non_numeric = [
            name
            for name, position in zip(quality_models, positions)
            if not _is_numeric(dtypes[position])
        ]
        if non_numeric:
            raise TypeError(
                f"{input_name} must hold numbers; the {level} columns of models "
                f"{non_numeric} have non-numeric values."
            )
    values = y.to_numpy(dtype=np.float64, na_value=np.nan)
    quality = values[:, quality_positions]
    cost = values[:, cost_positions]

    _check_ranges(
        quality,
        cost,
        quality_models,
        f"{input_name}['quality']",
        f"{input_name}['cost']",
    )

    quality_missing = np.isnan(quality)
    cost_missing = np.isnan(cost)
    no_cost = ~quality_missing & cost_missing
    if no_cost.any():
        row, col = np.argwhere(no_cost)[0]
        raise ValueError(
            f"{input_name} has a quality without a cost for model "
            f"{quality_models[col]!r} at row {row}; every observed outcome needs "
            "its cost."
        )
    if not allow_missing and quality_missing.any():
        raise ValueError(
            f"{input_name} has {int(quality_missing.sum())} missing outcomes (NaN); "
            "this function needs a complete table."
        )
    cost = np.where(quality_missing, np.nan, cost)

    if quality_positions + cost_positions == list(range(len(columns))):
        columns = y.columns
    else:
        columns = pd.MultiIndex.from_tuples(
            [(QUALITY, name) for name in quality_models]
            + [(COST, name) for name in quality_models]
        )
    return pd.DataFrame(np.hstack([quality, cost]), index=y.index, columns=columns)


def complete_rows(X, y):
    """Keep the queries whose outcomes are observed for every model.

    Metrics and ``score`` use these rows only; this function shows which ones
    they are.

    Parameters
    ----------
    X : array-like of shape (n_queries, ...) or None
        Queries, sliced alongside ``y``. ``None`` is passed through.
    y : DataFrame
        Outcomes table.

    Returns
    -------
    X_complete : same type as X
        The queries with complete outcomes.
    y_complete : DataFrame
        Their outcomes.

    Examples
    --------
    >>> import numpy as np
    >>> from skrouter import make_outcomes, complete_rows
    >>> y = make_outcomes([[1, 0], [np.nan, 1]], [[2, 1], [2, 1]])
    >>> X = np.array([[0.1], [0.2]])
    >>> X_complete, y_complete = complete_rows(X, y)
    >>> X_complete
    array([[0.1]])
    """
    y = check_outcomes(y)
    mask = ~np.isnan(y[QUALITY].to_numpy()).any(axis=1)
    if X is None:
        return None, y[mask]
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same number of queries; got {len(X)} and {len(y)}."
        )
    if hasattr(X, "iloc"):
        return X.iloc[np.flatnonzero(mask)], y[mask]
    if isinstance(X, list):
        return [row for row, keep in zip(X, mask) if keep], y[mask]
    return X[mask], y[mask]


def _as_float_matrix(values, name):
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must hold numbers (NaN for a missing outcome); {exc}."
        ) from None
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_queries, n_models); got an "
            f"array with {array.ndim} dimensions."
        )
    if array.shape[1] == 0:
        raise ValueError(f"{name} must describe at least one model; got 0 columns.")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must have at least one query; got 0 rows.")
    return array


def _check_ranges(quality, cost, models, quality_name, cost_name):
    """Raise on the first quality outside [0, 1] or cost that is < 0 or inf."""
    bad_quality = np.isinf(quality) | (quality < 0) | (quality > 1)
    if bad_quality.any():
        row, col = np.argwhere(bad_quality)[0]
        raise ValueError(
            f"{quality_name} must lie in [0, 1]; got {float(quality[row, col])} for "
            f"model {models[col]!r} at row {row}."
        )
    bad_cost = np.isinf(cost) | (cost < 0)
    if bad_cost.any():
        row, col = np.argwhere(bad_cost)[0]
        raise ValueError(
            f"{cost_name} must be finite and >= 0 (USD); got {float(cost[row, col])} "
            f"for model {models[col]!r} at row {row}."
        )


def _is_numeric(dtype):
    if dtype == np.float64:
        return True
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _outcome_arrays(y):
    """Split a validated outcomes table into quality, cost and model names.

    ``check_outcomes`` returns the quality block first and the cost block in
    the same model order, so the two halves of the values are the blocks.
    """
    n_models = y.shape[1] // 2
    models = list(y.columns.get_level_values(1)[:n_models])
    values = y.to_numpy(dtype=np.float64)
    return values[:, :n_models], values[:, n_models:], models


def _check_complete(y, input_name="y_true"):
    """Validate outcomes and keep the complete rows, warning once if any drop."""
    return _complete_arrays(check_outcomes(y, input_name=input_name), input_name)


def _complete_arrays(y, input_name):
    """Keep the complete rows of validated outcomes, warning once if any drop.

    Returns the quality and cost of the complete rows, the model names and
    the mask of complete rows.
    """
    quality, cost, models = _outcome_arrays(y)
    complete = ~np.isnan(quality).any(axis=1)
    n_left_out = int((~complete).sum())
    if n_left_out == len(y):
        raise ValueError(
            f"{input_name} has no query with an observed outcome for every model; "
            "metrics need complete rows (see skrouter.complete_rows)."
        )
    if n_left_out:
        warn(
            f"{n_left_out} of {len(y)} queries in {input_name} have missing outcomes "
            "and are left out of the metric.",
        )
    return quality[complete], cost[complete], models, complete

"""Flat column names for outcomes and predictions in Dask DataFrames.

Dask DataFrames have one level of column names, so the two-level outcomes
table ``("quality", model)`` / ``("cost", model)`` travels as
``"quality__<model>"`` / ``"cost__<model>"``, and routed predictions as
``"quality_pred__<model>"`` / ``"cost_pred__<model>"``.
"""

import pandas as pd

from .._outcomes import COST, QUALITY, check_outcomes

SEPARATOR = "__"
QUALITY_PREFIX = QUALITY + SEPARATOR
COST_PREFIX = COST + SEPARATOR
QUALITY_PRED_PREFIX = "quality_pred" + SEPARATOR
COST_PRED_PREFIX = "cost_pred" + SEPARATOR


def flatten_outcomes(y):
    """Turn an outcomes table into flat columns for a Dask DataFrame.

    Parameters
    ----------
    y : DataFrame of shape (n_queries, 2 * n_models)
        Outcomes with two-level columns (see :func:`skrouter.make_outcomes`).

    Returns
    -------
    flat : DataFrame of shape (n_queries, 2 * n_models)
        The same values, with the columns ``"quality__<model>"`` for every
        model, then ``"cost__<model>"`` in the same order, and the same
        index.

    See Also
    --------
    skrouter.dask.unflatten_outcomes : The inverse.

    Examples
    --------
    >>> from skrouter import make_outcomes
    >>> from skrouter.dask import flatten_outcomes
    >>> y = make_outcomes([[1, 0]], [[0.02, 0.001]], models=["large", "small"])
    >>> list(flatten_outcomes(y).columns)
    ['quality__large', 'quality__small', 'cost__large', 'cost__small']
    """
    y = check_outcomes(y, input_name="y")
    flat = y.copy()
    flat.columns = [f"{level}{SEPARATOR}{name}" for level, name in y.columns]
    return flat


def unflatten_outcomes(flat):
    """Turn flat outcome columns back into the two-level outcomes table.

    Parameters
    ----------
    flat : DataFrame
        Columns ``"quality__<model>"`` and ``"cost__<model>"`` for every
        model; other columns are ignored.

    Returns
    -------
    y : DataFrame of shape (n_queries, 2 * n_models)
        Validated outcomes (see :func:`skrouter.check_outcomes`), models in
        the order of the quality columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrouter.dask import unflatten_outcomes
    >>> flat = pd.DataFrame({"quality__a": [1.0], "cost__a": [0.5], "id": [7]})
    >>> unflatten_outcomes(flat).columns.tolist()
    [('quality', 'a'), ('cost', 'a')]
    """
    models = outcome_models(flat.columns, "flat")
    quality = flat[[QUALITY_PREFIX + name for name in models]]
    cost = flat[[COST_PREFIX + name for name in models]]
    y = pd.concat([quality, cost], axis=1)
    y.columns = pd.MultiIndex.from_tuples(
        [(QUALITY, name) for name in models] + [(COST, name) for name in models]
    )
    return check_outcomes(y, input_name="y_true")


def outcome_models(columns, input_name):
    """Return the model names of flat outcome columns, in quality order."""
    columns = [column for column in columns if isinstance(column, str)]
    models = [
        column[len(QUALITY_PREFIX) :]
        for column in columns
        if column.startswith(QUALITY_PREFIX)
    ]
    if not models:
        raise ValueError(
            f"{input_name} must have a column 'quality__<model>' and a column "
            f"'cost__<model>' for every model; got the columns {columns[:8]}. "
            "Build them with skrouter.dask.flatten_outcomes(y)."
        )
    missing_cost = [name for name in models if COST_PREFIX + name not in columns]
    if missing_cost:
        raise ValueError(
            f"{input_name} has no 'cost__<model>' column for the models "
            f"{missing_cost}; every model needs a quality and a cost column."
        )
    return models


def prediction_columns(columns, models, prefix, input_name):
    """Return the columns of one prediction block, in the order of ``models``.

    The block is ``prefix + model`` for every model when the frame has those
    columns, else the model names themselves.
    """
    columns = list(columns)
    for candidates in ([prefix + name for name in models], list(models)):
        if all(column in columns for column in candidates):
            return candidates
    raise ValueError(
        f"{input_name} must have a column '{prefix}<model>', or a column named "
        f"after the model, for every model of y_true {list(models)}; got the "
        f"columns {columns[:8]}."
    )

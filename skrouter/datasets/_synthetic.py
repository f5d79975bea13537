"""A synthetic routing problem with planted structure."""

import numpy as np

from .._outcomes import make_outcomes
from .._params import check_integer


def make_routing_problem(
    n_queries=1000,
    *,
    n_features=16,
    n_models=3,
    n_groups=4,
    cost_decades=3.0,
    missing_rate=0.0,
    noise=1.0,
    random_state=None,
):
    """Generate queries and outcomes where each model excels on some groups.

    Queries come from ``n_groups`` Gaussian blobs in feature space. Each
    model has an accuracy per group: a general skill that grows with its
    price, plus a specialty group where even a cheap model does well. Costs
    span ``cost_decades`` orders of magnitude between the cheapest and the
    most expensive model, and vary per query (longer answers cost more). A
    router that recognises the groups can match the best model for less.

    Parameters
    ----------
    n_queries : int, default=1000
        Number of queries.
    n_features : int, default=16
        Number of features.
    n_models : int, default=3
        Number of models, named ``"model0"``, ``"model1"``, ... from the
        cheapest to the most expensive.
    n_groups : int, default=4
        Number of query groups (blobs).
    cost_decades : float, default=3.0
        Orders of magnitude between the cheapest and the costliest model's
        mean cost; the cheapest costs about 1e-4 USD per query.
    missing_rate : float, default=0.0
        Share of outcomes set to NaN (not observed), at random; at least one
        outcome per model is kept.
    noise : float, default=1.0
        Standard deviation of the blobs around their centres, which are
        drawn with standard deviation 3.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_queries, n_features)
        Query features.
    y : DataFrame of shape (n_queries, 2 * n_models)
        Outcomes (quality 0/1, cost in USD).

    Examples
    --------
    >>> from skrouter.datasets import make_routing_problem
    >>> X, y = make_routing_problem(n_queries=500, random_state=0)
    >>> X.shape
    (500, 16)
    >>> y["quality"].mean().round(2).tolist()
    [0.44, 0.61, 0.83]
    """
    for name, value, low in (
        ("n_queries", n_queries, 1),
        ("n_features", n_features, 1),
        ("n_models", n_models, 1),
        ("n_groups", n_groups, 1),
    ):
        check_integer(name, value, low)
    if not 0.0 <= missing_rate < 1.0:
        raise ValueError(f"missing_rate must be in [0, 1); got {missing_rate!r}.")
    if not cost_decades >= 0:
        raise ValueError(f"cost_decades must be >= 0; got {cost_decades!r}.")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}.")
    rng = np.random.default_rng(random_state)

    centers = rng.normal(0.0, 3.0, (n_groups, n_features))
    groups = rng.integers(0, n_groups, n_queries)
    X = centers[groups] + rng.normal(0.0, noise, (n_queries, n_features))

    # Skill rises with price; each model also has one group it is good at.
    tier = np.linspace(0.0, 1.0, n_models)
    accuracy = np.tile(0.3 + 0.5 * tier, (n_groups, 1))
    specialty = rng.integers(0, n_groups, n_models)
    accuracy[specialty, np.arange(n_models)] = 0.9
    quality = (rng.random((n_queries, n_models)) < accuracy[groups]).astype(float)

    mean_cost = 1e-4 * 10.0 ** (cost_decades * tier)
    length = rng.lognormal(0.0, 0.5, (n_queries, 1))
    cost = mean_cost * length

    if missing_rate > 0:
        missing = rng.random((n_queries, n_models)) < missing_rate
        # Keep one observation per model so every model can be learned.
        missing[rng.integers(0, n_queries, n_models), np.arange(n_models)] = False
        quality[missing] = np.nan

    models = [f"model{j}" for j in range(n_models)]
    return X, make_outcomes(quality, cost, models)

"""Scorers for model selection of routers, and a refit rule stated in money."""

import numpy as np

from .._outcomes import _complete_arrays
from .._params import warn
from ._curve import _check_prediction_values, _sweep
from ._scores import (
    _frontier_and_models_of_arrays,
    _nauc_of_frontier,
    _qnc_of_frontier,
)


def _final_router(estimator, X):
    """Return the last step of a pipeline and ``X`` transformed by the others.

    ``Pipeline`` delegates only scikit-learn's own methods, not
    ``predict_quality`` and ``predict_cost``, so the scorer walks the steps.
    """
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return estimator, X
    for _, transformer in steps[:-1]:
        if transformer is None or transformer == "passthrough":
            continue
        X = transformer.transform(X)
    return _final_router(steps[-1][1], X)


class _RouterScorer:
    """Scorer ``(estimator, X, y) -> float``, greater is better."""

    def __init__(self, name, kind, sign=1.0):
        self.name = name
        self.kind = kind
        self.sign = sign

    def __repr__(self):
        return f"skrouter.metrics.get_scorer({self.name!r})"

    def __call__(self, estimator, X, y):
        router, arrays = _predictions_and_outcomes(estimator, X, y, self.name)
        return self._score(router, *arrays)

    def _score(self, router, quality, cost, quality_pred, cost_pred):
        """Score validated predictions of ``router`` on the complete rows of y."""
        if self.kind in ("mean_quality", "mean_cost"):
            choice = router._choose_from(quality_pred, cost_pred, router.cost_weight_)
            rows = np.arange(choice.shape[0])
            values = quality if self.kind == "mean_quality" else cost
            return self.sign * float(values[rows, choice].mean())

        if self.kind == "peak_score":
            _, qualities, _ = _sweep(
                quality, cost, quality_pred, cost_pred, "cost_weight"
            )
            return self.sign * float(qualities.max())

        frontier_costs, frontier_qualities, model_costs, model_qualities = (
            _frontier_and_models_of_arrays(
                quality, cost, quality_pred, cost_pred, "cost_weight"
            )
        )
        if self.kind == "nauc":
            score = _nauc_of_frontier(
                frontier_costs, frontier_qualities, model_costs, "models"
            )
        else:
            score = _qnc_of_frontier(
                frontier_costs, frontier_qualities, model_costs, model_qualities
            )
        return self.sign * score


class _RouterScorers:
    """Scorer ``(estimator, X, y) -> dict`` of several scores from one prediction."""

    def __init__(self, names):
        self.names = names

    def __repr__(self):
        return f"skrouter.metrics.get_scorers({self.names!r})"

    def __call__(self, estimator, X, y):
        router, arrays = _predictions_and_outcomes(estimator, X, y, "get_scorers")
        return {name: _SCORERS[name]._score(router, *arrays) for name in self.names}


def _predictions_and_outcomes(estimator, X, y, scorer_name):
    """Return the final router and the arrays that every score reads.

    y is validated once, in the model order of the router, and the
    predictions once; both keep only the rows complete in y, as every metric
    does. The arrays are quality, cost, quality_pred and cost_pred.
    """
    router, X = _final_router(estimator, X)
    if not hasattr(router, "predict_quality"):
        raise TypeError(
            f"the {scorer_name!r} scorer needs a skrouter router as the last step; "
            f"got {type(router).__name__}."
        )
    quality, cost, models, complete = _complete_arrays(router._align_outcomes(y), "y")
    quality_pred, cost_pred = _check_prediction_values(
        *router._predict(X), complete, len(models)
    )
    return router, (quality, cost, quality_pred, cost_pred)


_SCORERS = {
    "nauc": _RouterScorer("nauc", "nauc"),
    "peak_score": _RouterScorer("peak_score", "peak_score"),
    "neg_qnc": _RouterScorer("neg_qnc", "qnc", -1.0),
    "mean_quality": _RouterScorer("mean_quality", "mean_quality"),
    "neg_mean_cost": _RouterScorer("neg_mean_cost", "mean_cost", -1.0),
}


def get_scorer_names():
    """Return the names accepted by :func:`get_scorer`.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from skrouter.metrics import get_scorer_names
    >>> get_scorer_names()
    ['mean_quality', 'nauc', 'neg_mean_cost', 'neg_qnc', 'peak_score']
    """
    return sorted(_SCORERS)


def get_scorer(name):
    """Return a router scorer by name, for ``GridSearchCV(scoring=...)``.

    Every scorer is greater-is-better and works on a router or on a
    ``Pipeline`` that ends with one.

    - ``"nauc"``: nAUC of the whole cost-quality curve (the default score).
    - ``"peak_score"``: best quality on the curve.
    - ``"neg_qnc"``: minus the relative cost of matching the best model.
    - ``"mean_quality"``: mean true quality of the models the router
      chooses at its own operating point (``cost_weight_``).
    - ``"neg_mean_cost"``: minus their mean true cost, in USD.

    Parameters
    ----------
    name : str
        One of :func:`get_scorer_names`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returning a float.

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.metrics import get_scorer
    >>> from skrouter.routers import KMeansRouter
    >>> X, y = make_routing_problem(n_queries=300, random_state=0)
    >>> scores = cross_val_score(KMeansRouter(4, random_state=0), X, y, cv=3,
    ...                          scoring=get_scorer("peak_score"))
    >>> scores.shape
    (3,)
    """
    if name not in _SCORERS:
        raise ValueError(
            f"scorer name must be one of {get_scorer_names()}; got {name!r}."
        )
    return _SCORERS[name]


def get_scorers(names):
    """Return one scorer that computes several router scores from one prediction.

    In ``GridSearchCV(scoring=...)`` a dict of scorers runs the whole
    pipeline once per scorer on every test fold. This scorer runs it once and
    returns a dict, whose keys name the ``cv_results_`` columns as the keys
    of a dict of scorers would.

    Parameters
    ----------
    names : list of str
        Names from :func:`get_scorer_names`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returning a dict of floats.

    Examples
    --------
    >>> from sklearn.model_selection import cross_validate
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.metrics import get_scorers
    >>> from skrouter.routers import KMeansRouter
    >>> X, y = make_routing_problem(n_queries=300, random_state=0)
    >>> scoring = get_scorers(["mean_quality", "neg_mean_cost"])
    >>> results = cross_validate(KMeansRouter(4, random_state=0), X, y, cv=3,
    ...                          scoring=scoring)
    >>> sorted(key for key in results if key.startswith("test_"))
    ['test_mean_quality', 'test_neg_mean_cost']
    """
    if isinstance(names, str):
        raise TypeError(
            f"names must be a list of scorer names; got the string {names!r}. "
            f"Use get_scorer({names!r}) for one scorer."
        )
    names = list(names)
    unknown = [name for name in names if name not in _SCORERS]
    if unknown or not names:
        raise ValueError(
            f"names must be a non-empty list from {get_scorer_names()}; got {names!r}."
        )
    return _RouterScorers(names)


def refit_within_budget(budget, quality="mean_quality", cost="neg_mean_cost"):
    """Make a refit rule for ``GridSearchCV``: best quality within a mean cost.

    ``nAUC`` does not depend on ``cost_weight`` or ``budget``, and
    ``refit="mean_quality"`` would always pick a cost weight of 0. This rule
    picks, among the candidates whose cross-validated mean cost is within
    ``budget``, the one with the best cross-validated mean quality (ties go
    to the lower cost, then the earlier candidate). When no candidate is
    within the budget it picks the cheapest one and warns.

    Parameters
    ----------
    budget : float
        Maximum mean cost per query in USD.
    quality : str, default="mean_quality"
        Key of the quality scorer in the ``scoring`` dict.
    cost : str, default="neg_mean_cost"
        Key of the cost scorer in the ``scoring`` dict; its scores are
        negated costs, as :func:`get_scorer` returns them.

    Returns
    -------
    refit : callable
        ``refit(cv_results)`` returning the index of the chosen candidate.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.metrics import get_scorer, refit_within_budget
    >>> from skrouter.routers import KMeansRouter
    >>> X, y = make_routing_problem(n_queries=300, random_state=0)
    >>> scoring = {name: get_scorer(name) for name in ["mean_quality", "neg_mean_cost"]}
    >>> search = GridSearchCV(
    ...     KMeansRouter(4, random_state=0),
    ...     {"cost_weight": [0.0, 0.5, 1.0, 5.0]},
    ...     scoring=scoring,
    ...     refit=refit_within_budget(0.01),
    ...     cv=3,
    ... ).fit(X, y)
    >>> search.best_params_
    {'cost_weight': 0.5}
    """
    return _RefitWithinBudget(budget, quality, cost)


class _RefitWithinBudget:
    """Picklable refit callable behind :func:`refit_within_budget`."""

    def __init__(self, budget, quality="mean_quality", cost="neg_mean_cost"):
        if not np.isfinite(budget) or budget < 0:
            raise ValueError(
                f"budget must be a finite mean cost per query >= 0 (USD); got "
                f"{budget!r}."
            )
        self.budget = budget
        self.quality = quality
        self.cost = cost

    def __repr__(self):
        return (
            f"refit_within_budget({self.budget!r}, quality={self.quality!r}, "
            f"cost={self.cost!r})"
        )

    def __call__(self, cv_results):
        keys = {
            "quality": f"mean_test_{self.quality}",
            "cost": f"mean_test_{self.cost}",
        }
        for role, key in keys.items():
            if key not in cv_results:
                raise KeyError(
                    f"refit_within_budget needs {key!r} in cv_results_; pass a scoring "
                    f"dict with a {getattr(self, role)!r} scorer."
                )
        quality = np.asarray(cv_results[keys["quality"]], dtype=float)
        cost = -np.asarray(cv_results[keys["cost"]], dtype=float)
        candidates = np.arange(quality.shape[0])

        within = cost <= self.budget
        if not within.any():
            cheapest = int(np.lexsort((candidates, -quality, cost))[0])
            warn(
                f"no candidate has a mean cost within the budget of {self.budget!r} "
                f"USD per query (the cheapest costs {cost[cheapest]!r}); refitting "
                "the cheapest candidate.",
            )
            return cheapest
        quality = np.where(within, quality, -np.inf)
        return int(np.lexsort((candidates, cost, -quality))[0])

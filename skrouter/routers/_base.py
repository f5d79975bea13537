"""Shared behaviour of every router: outcomes in, model names out."""

import numbers
from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from .._choice import _first_best
from .._outcomes import _outcome_arrays, check_outcomes
from .._params import check_integer, warn
from ..metrics._curve import _cost_weight_sweep, _default_cost_scale
from ..metrics._scores import nauc_score


class BaseRouter(BaseEstimator, metaclass=ABCMeta):
    """Base class of routers.

    A router learns, from queries ``X`` and their outcomes ``y``, to predict
    for every query and model a quality and a cost. It routes each query to
    the model with the highest utility
    ``quality - cost_weight * cost / cost_scale_``; ties go to the lower
    predicted cost, then to the earlier model in ``models_``.

    Subclasses implement ``_fit(X, quality, cost)``, where missing outcomes
    are NaN, and ``_predict_outcomes(X)`` returning the raw predicted quality
    and cost arrays.
    """

    def __init__(self, *, cost_weight=0.0, budget=None):
        self.cost_weight = cost_weight
        self.budget = budget

    @abstractmethod
    def _fit(self, X, quality, cost):
        """Learn from features and outcome arrays with NaN for missing cells."""

    @abstractmethod
    def _predict_outcomes(self, X):
        """Return predicted quality and cost arrays of shape (n, n_models)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Learn to predict each model's quality and cost for a query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query features.
        y : DataFrame of shape (n_queries, 2 * n_models)
            Outcomes (see :func:`skrouter.make_outcomes`). Missing outcomes
            (NaN) are skipped, never read as 0.

        Returns
        -------
        self : object
            The fitted router.
        """
        self._check_operating_point()
        X = validate_data(self, X, reset=True, dtype=np.float64)
        y = check_outcomes(y, input_name="y")
        if len(y) != X.shape[0]:
            raise ValueError(
                f"X and y must describe the same queries; got {X.shape[0]} rows in "
                f"X and {len(y)} rows in y."
            )
        quality, cost, models = _outcome_arrays(y)
        never_observed = [
            name
            for name, seen in zip(models, (~np.isnan(quality)).any(axis=0))
            if not seen
        ]
        if never_observed:
            raise ValueError(
                f"y has no observed outcome for the models {never_observed}; every "
                "model needs at least one training query with a known quality."
            )

        self.models_ = np.asarray(models, dtype=object)
        self.cost_scale_ = _default_cost_scale(cost)
        self._fit(X, quality, cost)

        if self.budget is None:
            self.cost_weight_ = float(self.cost_weight)
        else:
            self.cost_weight_ = self._calibrate_budget(X)
        return self

    def predict_quality(self, X):
        """Predict each model's quality for each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query features.

        Returns
        -------
        quality : ndarray of shape (n_queries, n_models)
            Predicted quality in [0, 1], columns in the order of ``models_``.
        """
        return self._predict(X)[0]

    def predict_cost(self, X):
        """Predict each model's cost for each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query features.

        Returns
        -------
        cost : ndarray of shape (n_queries, n_models)
            Predicted cost in USD, >= 0, columns in the order of ``models_``.
        """
        return self._predict(X)[1]

    def decision_function(self, X):
        """Compute each model's utility for each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query features.

        Returns
        -------
        utility : ndarray of shape (n_queries, n_models)
            ``quality - cost_weight_ * cost / cost_scale_``, or
            ``-cost / cost_scale_`` when ``cost_weight_`` is infinite.
        """
        quality, cost = self._predict(X)
        if np.isinf(self.cost_weight_):
            return -cost / self.cost_scale_
        return quality - self.cost_weight_ * cost / self.cost_scale_

    def predict(self, X):
        """Choose a model for each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query features.

        Returns
        -------
        models : ndarray of shape (n_queries,)
            Name of the chosen model for each query.
        """
        choice = self._choose(X)
        return self.models_[choice]

    def score(self, X, y):
        """Compute the nAUC of the router's cost-quality curve on ``X``, ``y``.

        The curve covers every cost weight, so the score does not depend on
        ``cost_weight`` or ``budget``. Queries with a missing outcome are
        left out with a warning.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query features.
        y : DataFrame of shape (n_queries, 2 * n_models)
            True outcomes of the same models, in any column order.

        Returns
        -------
        score : float
            nAUC over the single models' cost range, see
            :func:`skrouter.metrics.nauc_score`.
        """
        y = self._align_outcomes(y)
        quality, cost = self._predict(X)
        return nauc_score(y, quality, cost)

    def _predict(self, X):
        check_is_fitted(self, "models_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        quality, cost = self._predict_outcomes(X)
        return np.clip(quality, 0.0, 1.0), np.maximum(cost, 0.0)

    def _choose(self, X):
        quality, cost = self._predict(X)
        return self._choose_from(quality, cost, self.cost_weight_)

    def _choose_from(self, quality, cost, cost_weight):
        if np.isinf(cost_weight):
            return _first_best(-cost, quality)
        return _first_best(quality - cost_weight * cost / self.cost_scale_, -cost)

    def _align_outcomes(self, y):
        """Validate outcomes and put their models in the order of ``models_``."""
        check_is_fitted(self, "models_")
        y = check_outcomes(y, input_name="y")
        models = list(y.columns.get_level_values(1)[: y.shape[1] // 2])
        if sorted(models) != sorted(self.models_):
            raise ValueError(
                f"y must describe the models the router was fitted on, "
                f"{list(self.models_)}; got {models}."
            )
        if models == list(self.models_):
            return y
        order = [
            (level, name) for level in ("quality", "cost") for name in self.models_
        ]
        return y[order]

    def _check_operating_point(self):
        weight = self.cost_weight
        if (
            not isinstance(weight, numbers.Real)
            or isinstance(weight, bool)
            or np.isnan(weight)
            or weight < 0
        ):
            raise ValueError(
                f"cost_weight must be a number >= 0 (inf routes to the cheapest "
                f"model); got {weight!r}."
            )
        budget = self.budget
        if budget is not None and (
            not isinstance(budget, numbers.Real)
            or isinstance(budget, bool)
            or not np.isfinite(budget)
            or budget < 0
        ):
            raise ValueError(
                f"budget must be None or a finite mean cost per query >= 0 (USD); "
                f"got {budget!r}."
            )

    def _calibrate_budget(self, X):
        """Find the cost weight whose mean predicted cost meets the budget.

        The exact cost-weight sweep runs on the training queries with the
        predicted outcomes standing in for the true ones. The first operating
        point at or under the budget wins, and the weight is taken halfway to
        the next breakpoint, so predictions do not flip on rounding at a tie.
        """
        quality, cost = self._predict_outcomes(X)
        quality, cost = np.clip(quality, 0.0, 1.0), np.maximum(cost, 0.0)
        mean_costs, _, weights = _cost_weight_sweep(
            quality, cost, quality, cost, self.cost_scale_
        )
        within = np.flatnonzero(mean_costs <= self.budget)
        if within.size == 0:
            warn(
                f"budget={self.budget!r} USD per query is below the mean predicted "
                f"cost of the cheapest choices on the training queries, "
                f"{mean_costs[-1]!r} USD; routing every query to its predicted-"
                "cheapest model.",
            )
            return float("inf")
        first = within[0]
        if first + 1 < weights.shape[0]:
            return float((weights[first] + weights[first + 1]) / 2)
        return float(2 * weights[first])


def _check_training_count(name, value, n_queries):
    """Check a count such as n_neighbors: an integer in [1, n_queries]."""
    check_integer(name, value, 1)
    if value > n_queries:
        raise ValueError(
            f"{name}={value} is larger than the number of training queries, "
            f"n_samples={n_queries}; use at most {n_queries}."
        )


def _check_prior_strength(prior_strength):
    if (
        not isinstance(prior_strength, numbers.Real)
        or isinstance(prior_strength, bool)
        or not np.isfinite(prior_strength)
        or prior_strength < 0
    ):
        raise ValueError(
            f"prior_strength must be a finite number >= 0 (a pseudo-count); got "
            f"{prior_strength!r}."
        )


def _blend_with_prior(local_sum, local_count, prior_mean, prior_strength):
    """Shrink local means toward the global mean by a pseudo-count.

    With no local observation the global mean is returned, whatever the
    pseudo-count, so a model never seen nearby falls back to its average.
    """
    numerator = local_sum + prior_strength * prior_mean
    denominator = local_count + prior_strength
    with np.errstate(invalid="ignore", divide="ignore"):
        blended = numerator / denominator
    return np.where(local_count > 0, blended, prior_mean)

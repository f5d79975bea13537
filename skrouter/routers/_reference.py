"""Reference routers to put beside learned ones: one model, or chance."""

import numpy as np

from ._base import BaseRouter

_NAMED_CHOICES = ("best", "cheapest")


class SingleModelRouter(BaseRouter):
    """Router that sends every query to one model.

    It predicts quality 1 and cost 0 for its model and quality 0 with the
    training mean cost for the others, so every cost weight and every cap
    picks its model and its curve is that model's single point.

    Parameters
    ----------
    model : str, default="best"
        ``"best"``: the model with the highest mean training quality (ties:
        lower mean cost, then the earlier model). ``"cheapest"``: the lowest
        mean training cost (ties: higher mean quality, then the earlier
        model). Any other string names a model of the training outcomes.

    Attributes
    ----------
    model_ : str
        Name of the chosen model.
    models_ : ndarray of str
        Model names, in the column order of the training outcomes.
    cost_scale_ : float
        Largest per-model mean observed training cost.
    cost_weight_ : float
        Always 0.0; the choice does not depend on it.
    n_features_in_ : int
        Number of features seen in ``fit``; the features are not used.

    Examples
    --------
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.routers import SingleModelRouter
    >>> X, y = make_routing_problem(n_queries=100, random_state=0)
    >>> router = SingleModelRouter("cheapest").fit(X, y)
    >>> router.model_
    'model0'
    """

    # Fixed operating point: the choice is the same at every cost weight.
    cost_weight = 0.0
    budget = None

    def __init__(self, model="best"):
        self.model = model

    def _fit(self, X, quality, cost):
        if not isinstance(self.model, str):
            raise ValueError(
                f"model must be 'best', 'cheapest' or a model name (str); got "
                f"{self.model!r}."
            )
        mean_quality = np.nanmean(quality, axis=0)
        mean_cost = np.nanmean(np.where(np.isnan(quality), np.nan, cost), axis=0)
        order = np.arange(mean_quality.shape[0])
        if self.model == "best":
            index = np.lexsort((order, mean_cost, -mean_quality))[0]
        elif self.model == "cheapest":
            index = np.lexsort((order, -mean_quality, mean_cost))[0]
        elif self.model in list(self.models_):
            index = list(self.models_).index(self.model)
        else:
            raise ValueError(
                f"model must be one of {_NAMED_CHOICES} or a model of y, "
                f"{list(self.models_)}; got {self.model!r}."
            )
        self.model_ = str(self.models_[index])
        self._index = index
        self._mean_cost = mean_cost

    def _predict_outcomes(self, X):
        n_queries = X.shape[0]
        quality = np.zeros((n_queries, self.models_.shape[0]))
        quality[:, self._index] = 1.0
        cost = np.tile(self._mean_cost, (n_queries, 1))
        cost[:, self._index] = 0.0
        return quality, cost


class RandomRouter(BaseRouter):
    """Router that predicts random qualities and each model's mean cost.

    The predicted qualities are ``np.random.default_rng(random_state)``
    draws, made afresh at each call, so the same ``X`` gets the same answer.
    The curve is therefore a random routing that moves toward cheaper models
    as the cost weight grows: the floor that a learned router must beat.

    Parameters
    ----------
    random_state : int or None, default=None
        Seed of the predicted qualities. ``None`` draws new ones each call.
    cost_weight : float, default=0.0
        Dimensionless price of cost in the utility.
    budget : float, default=None
        Target mean cost per query in USD; replaces ``cost_weight`` when set.

    Attributes
    ----------
    models_ : ndarray of str
        Model names, in the column order of the training outcomes.
    cost_scale_ : float
        Largest per-model mean observed training cost.
    cost_weight_ : float
        Cost weight used by ``predict``.
    n_features_in_ : int
        Number of features seen in ``fit``; the features are not used.

    Examples
    --------
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.routers import RandomRouter
    >>> X, y = make_routing_problem(n_queries=100, random_state=0)
    >>> router = RandomRouter(random_state=0).fit(X, y)
    >>> router.predict_quality(X[:1]).round(2)
    array([[0.64, 0.27, 0.04]])
    """

    def __init__(self, random_state=None, *, cost_weight=0.0, budget=None):
        super().__init__(cost_weight=cost_weight, budget=budget)
        self.random_state = random_state

    def _fit(self, X, quality, cost):
        if self.random_state is not None and not isinstance(
            self.random_state, (int, np.integer)
        ):
            raise ValueError(
                f"random_state must be None or an int seed; got {self.random_state!r}."
            )
        self._mean_cost = np.nanmean(np.where(np.isnan(quality), np.nan, cost), axis=0)

    def _predict_outcomes(self, X):
        shape = (X.shape[0], self.models_.shape[0])
        quality = np.random.default_rng(self.random_state).random(shape)
        return quality, np.tile(self._mean_cost, (X.shape[0], 1))

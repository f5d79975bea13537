"""Route by the outcomes of the nearest training queries."""

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import gen_batches

from ._base import (
    BaseRouter,
    _blend_with_prior,
    _check_prior_strength,
    _check_training_count,
)

_WEIGHTS = ("uniform", "distance")

# Predictions gather an (n_queries, n_neighbors, n_models) block; bound it.
_MAX_BLOCK_ELEMENTS = 2**22


class KNNRouter(BaseRouter):
    """Router that averages the outcomes of the nearest training queries.

    For each query, the predicted quality and cost of a model are the means
    over the ``n_neighbors`` closest training queries where that model's
    outcome was observed, shrunk toward the model's global training mean:
    ``(local_sum + prior_strength * global_mean) / (local_count +
    prior_strength)``.

    Parameters
    ----------
    n_neighbors : int, default=10
        Number of training queries to average over.
    metric : str or callable, default="cosine"
        Distance of scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors`.
    weights : {"uniform", "distance"}, default="uniform"
        ``"distance"`` weights neighbours by inverse distance; a neighbour at
        distance 0 takes all the weight. The weights of a query are rescaled
        to sum to its number of observed neighbours for each model, so
        ``prior_strength`` stays a count.
    prior_strength : float, default=1.0
        Pseudo-count of the global mean in each local mean; 0 gives the plain
        neighbourhood mean.
    cost_weight : float, default=0.0
        Dimensionless price of cost in the utility
        ``quality - cost_weight * cost / cost_scale_``; ``inf`` routes every
        query to its predicted-cheapest model.
    budget : float, default=None
        Target mean cost per query in USD. When set, it replaces
        ``cost_weight``: ``fit`` picks the cost weight whose mean predicted
        cost on the training queries is within the budget.
    algorithm : str, default="auto"
        Neighbour search algorithm, passed to ``NearestNeighbors``.
    n_jobs : int, default=None
        Parallel jobs of the neighbour search.

    Attributes
    ----------
    models_ : ndarray of str
        Model names, in the column order of the training outcomes.
    cost_scale_ : float
        Largest per-model mean observed training cost (1.0 when all are 0).
    cost_weight_ : float
        Cost weight used by ``predict``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Names of features seen in ``fit``, when ``X`` had string column names.
    nearest_neighbors_ : NearestNeighbors
        The fitted neighbour index.

    See Also
    --------
    KMeansRouter : Averages within clusters of training queries.
    MFRouter : Learns a low-rank model of queries and models.

    Examples
    --------
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.routers import KNNRouter
    >>> X, y = make_routing_problem(n_queries=300, random_state=0)
    >>> router = KNNRouter(n_neighbors=15).fit(X[:200], y[:200])
    >>> router.predict(X[200:203])
    array(['model2', 'model2', 'model2'], dtype=object)
    >>> round(router.score(X[200:], y[200:]), 3)
    0.754
    """

    def __init__(
        self,
        n_neighbors=10,
        *,
        metric="cosine",
        weights="uniform",
        prior_strength=1.0,
        cost_weight=0.0,
        budget=None,
        algorithm="auto",
        n_jobs=None,
    ):
        super().__init__(cost_weight=cost_weight, budget=budget)
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.weights = weights
        self.prior_strength = prior_strength
        self.algorithm = algorithm
        self.n_jobs = n_jobs

    def _fit(self, X, quality, cost):
        _check_training_count("n_neighbors", self.n_neighbors, X.shape[0])
        if self.weights not in _WEIGHTS:
            raise ValueError(
                f"weights must be one of {_WEIGHTS}; got {self.weights!r}."
            )
        _check_prior_strength(self.prior_strength)

        self.nearest_neighbors_ = NearestNeighbors(
            n_neighbors=self.n_neighbors,
            metric=self.metric,
            algorithm=self.algorithm,
            n_jobs=self.n_jobs,
        ).fit(X)
        self._observed = ~np.isnan(quality)
        self._quality = np.where(self._observed, quality, 0.0)
        self._cost = np.where(self._observed, cost, 0.0)
        self._global_quality = np.nanmean(quality, axis=0)
        self._global_cost = np.nanmean(np.where(self._observed, cost, np.nan), axis=0)

    def _predict_outcomes(self, X):
        n_queries, n_models = X.shape[0], self.models_.shape[0]
        quality = np.empty((n_queries, n_models))
        cost = np.empty((n_queries, n_models))
        batch_size = max(1, _MAX_BLOCK_ELEMENTS // (self.n_neighbors * n_models))
        for batch in gen_batches(n_queries, batch_size):
            distances, neighbors = self.nearest_neighbors_.kneighbors(X[batch])
            quality[batch], cost[batch] = self._neighborhood_means(distances, neighbors)
        return quality, cost

    def _neighborhood_means(self, distances, neighbors):
        observed = self._observed[neighbors]
        if self.weights == "uniform":
            weights = observed.astype(np.float64)
        else:
            weights = _inverse_distance(distances)[:, :, None] * observed
        counts = observed.sum(axis=1)

        # Rescale each model's weights to sum to its observed neighbour count,
        # so that the prior's pseudo-count compares with a count.
        totals = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(totals > 0, counts / totals, 0.0)
        quality_sum = (
            np.einsum("nkm,nkm->nm", weights, self._quality[neighbors]) * scale
        )
        cost_sum = np.einsum("nkm,nkm->nm", weights, self._cost[neighbors]) * scale
        return (
            _blend_with_prior(
                quality_sum, counts, self._global_quality, self.prior_strength
            ),
            _blend_with_prior(cost_sum, counts, self._global_cost, self.prior_strength),
        )


def _inverse_distance(distances):
    """Inverse-distance weights; neighbours at distance 0 take all the weight."""
    with np.errstate(divide="ignore"):
        weights = 1.0 / distances
    exact = np.isinf(weights)
    rows_with_exact = exact.any(axis=1)
    weights[rows_with_exact] = exact[rows_with_exact]
    return weights

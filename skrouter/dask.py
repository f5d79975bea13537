"""Scale routing and evaluation out with Dask.

Needs the ``dask`` extra: ``pip install "skrouter[dask]"``.

- :func:`route_queries` routes a ``dask.dataframe.DataFrame`` of queries
  lazily, partition by partition, loading the fitted pipeline once per worker
  process.
- :func:`cost_quality_curve`, :func:`nauc_score`, :func:`peak_score` and
  :func:`qnc_score` compute the exact curve and its scores from outcomes and
  predictions held in Dask DataFrames, with the same results as
  :mod:`skrouter.metrics` on the same rows in memory.
- :func:`flatten_outcomes` and :func:`unflatten_outcomes` convert between
  the two-level outcomes table and the flat columns ``"quality__<model>"``,
  ``"cost__<model>"`` that Dask DataFrames can hold.

A grid search over a skrouter pipeline needs nothing from this module: run
``GridSearchCV.fit`` inside ``joblib.parallel_backend("dask")`` with a
``dask.distributed.Client``, see the user guide.
"""

try:
    import dask.dataframe  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "skrouter.dask needs dask[dataframe] and distributed. Install them with: "
        'pip install "skrouter[dask]"'
    ) from exc

from ._dask._columns import flatten_outcomes, unflatten_outcomes
from ._dask._metrics import cost_quality_curve, nauc_score, peak_score, qnc_score
from ._dask._route import RoutingError, route_queries

__all__ = [
    "RoutingError",
    "cost_quality_curve",
    "flatten_outcomes",
    "nauc_score",
    "peak_score",
    "qnc_score",
    "route_queries",
    "unflatten_outcomes",
]

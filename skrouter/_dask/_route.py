"""Route a Dask DataFrame of queries, partition by partition."""

import hashlib
import os
import threading
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .._persistence import get_trusted_types
from ..routers._base import BaseRouter
from ._columns import COST_PRED_PREFIX, QUALITY_PRED_PREFIX

# Fitted pipelines loaded in this process, by source key: a skops file's
# (path, size, modification time), or the digest of a pickled estimator.
# Every partition that a worker routes reuses the entry, so the pipeline and
# the models its featurizers load lazily are read once per process.
_MAX_CACHED_PIPELINES = 4
_pipelines = OrderedDict()
_pipelines_lock = threading.Lock()

# Number of loads per source key in this process, for tests and diagnostics.
_load_counts = Counter()


class RoutingError(ValueError):
    """Raised when a partition of queries cannot be routed.

    The message names the partition and, when a single row fails on its
    own, that row's index label and position in the partition, followed by
    the type and message of the original error.

    Attributes
    ----------
    partition : int or None
        Number of the partition, from 0.
    row : object or None
        Index label of the failing row, when one row fails on its own.
    """

    def __init__(self, message, partition=None, row=None):
        super().__init__(message)
        self.partition = partition
        self.row = row

    def __reduce__(self):
        # Workers send exceptions to the client pickled.
        return type(self), (self.args[0], self.partition, self.row)


def route_queries(
    pipeline, queries, *, return_quality=False, return_cost=False, trusted=None
):
    """Route every query of a Dask DataFrame, lazily, partition by partition.

    Each partition goes through the fitted pipeline with ``map_partitions``:
    its featurizers transform the queries, and its router picks a model for
    each one, as ``pipeline.predict`` would. Nothing is computed until the
    result is.

    Each worker process loads the pipeline once and keeps it for every
    partition it routes and for later computations that use the same file or
    estimator. A skops file is read again only when its size or modification
    time changes. An estimator passed as an object is sent to each worker
    once per computation and unpickled once per process.
    Featurizer models (CLIP, sentence-transformers) are loaded lazily on the
    worker, never shipped in the pickle.

    Parameters
    ----------
    pipeline : Pipeline, router, str or path-like
        A fitted :class:`~sklearn.pipeline.Pipeline` whose last step is a
        skrouter router, a fitted router on its own, or the path of a skops
        file holding one. The path must name the same file on every worker,
        as on a shared file system; it is made absolute here.
    queries : dask.dataframe.DataFrame
        Queries in the form the first step of the pipeline accepts, such as
        a text and an image column for :class:`~skrouter.features.CLIPFeaturizer`.
    return_quality : bool, default=False
        Whether to add each model's predicted quality, as the columns
        ``"quality_pred__<model>"``.
    return_cost : bool, default=False
        Whether to add each model's predicted cost, as the columns
        ``"cost_pred__<model>"``.
    trusted : list of str, default=None
        Types that ``skops.io.load`` may build from the file, in addition to
        those skops trusts by default. By default
        :func:`skrouter.get_trusted_types`. Ignored for an estimator object.

    Returns
    -------
    routes : dask.dataframe.DataFrame
        One row per query, with the index and the divisions of ``queries``.
        Column ``"model"``: the chosen model, a categorical whose categories
        are the router's ``models_`` in order. Then, on request, the
        predicted qualities and costs, float64, in the order of ``models_``.

    Raises
    ------
    TypeError
        If ``queries`` is not a Dask DataFrame.
    RoutingError
        When the result is computed, if a partition fails to route. The
        message names the partition and, when one row fails on its own, that
        row (found by routing halves of the partition again).
    RuntimeError
        When the result is computed, if a partition returns a different
        number of rows than it received.

    See Also
    --------
    skrouter.dask.nauc_score : Score the routed predictions against outcomes.

    Notes
    -----
    Routing is row by row for every skrouter router except
    :class:`~skrouter.routers.RandomRouter`, whose random qualities are drawn
    per call, so they depend on how the queries are split into partitions.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import pandas as pd
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.dask import route_queries
    >>> from skrouter.routers import KNNRouter
    >>> X, y = make_routing_problem(n_queries=200, random_state=0)
    >>> router = KNNRouter().fit(X, y)
    >>> queries = dd.from_pandas(pd.DataFrame(X), npartitions=4)
    >>> routes = route_queries(router, queries, return_cost=True)
    >>> routes.npartitions, list(routes.columns)[:2]
    (4, ['model', 'cost_pred__model0'])
    >>> bool((routes["model"].compute().to_numpy() == router.predict(X)).all())
    True
    """
    import dask
    import dask.dataframe as dd

    if not isinstance(queries, dd.DataFrame):
        raise TypeError(
            f"queries must be a dask.dataframe.DataFrame; got "
            f"{type(queries).__name__}. Wrap a pandas DataFrame with "
            "dask.dataframe.from_pandas(X, npartitions=...), or call "
            "pipeline.predict(X) on it directly."
        )

    if isinstance(pipeline, (str, os.PathLike)):
        source_key = _skops_source_key(pipeline, trusted)
        payload = None
        estimator = _load_pipeline(source_key, None)
    else:
        estimator = pipeline
        _final_router(estimator)
        import cloudpickle

        payload_bytes = cloudpickle.dumps(estimator)
        source_key = ("pickle", hashlib.sha256(payload_bytes).hexdigest())
        # One graph node, so each worker fetches the bytes once per
        # computation instead of once per partition.
        payload = dask.delayed(payload_bytes, pure=True)

    models = list(_final_router(estimator).models_)
    meta = _routes_frame(
        queries._meta.index[:0],
        np.zeros(0, dtype=np.intp),
        np.zeros((0, len(models))),
        np.zeros((0, len(models))),
        models,
        return_quality,
        return_cost,
    )
    return queries.map_partitions(
        _route_partition,
        source_key,
        payload,
        return_quality,
        return_cost,
        meta=meta,
    )


def _skops_source_key(path, trusted):
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"Pipeline file {str(path)!r} not found. Pass a fitted pipeline, or "
            "the path of a skops file saved with skops.io.dump."
        )
    stat = path.stat()
    trusted = get_trusted_types() if trusted is None else list(trusted)
    return ("skops", str(path), stat.st_size, stat.st_mtime_ns, tuple(trusted))


def _load_pipeline(source_key, payload):
    """Return the pipeline of ``source_key``, loading it once per process."""
    with _pipelines_lock:
        if source_key in _pipelines:
            _pipelines.move_to_end(source_key)
            return _pipelines[source_key]

        if source_key[0] == "skops":
            estimator = _load_skops(*source_key[1:])
        else:
            import cloudpickle

            estimator = cloudpickle.loads(payload)
        _load_counts[source_key] += 1
        _pipelines[source_key] = estimator
        while len(_pipelines) > _MAX_CACHED_PIPELINES:
            _pipelines.popitem(last=False)
        return estimator


def _load_skops(path, size, mtime_ns, trusted):
    import skops.io as sio

    stat = os.stat(path)
    if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
        raise RuntimeError(
            f"The pipeline file {path!r} changed after route_queries was called "
            f"(size {size} -> {stat.st_size} bytes); call route_queries again "
            "so that every partition uses the same pipeline."
        )
    untrusted = [
        name for name in sio.get_untrusted_types(file=path) if name not in set(trusted)
    ]
    if untrusted:
        raise TypeError(
            f"The pipeline file {path!r} contains the types {untrusted}, which "
            "are not trusted. Check them, then pass them in trusted= (with "
            "skrouter.get_trusted_types()) to load the file."
        )
    estimator = sio.load(path, trusted=list(trusted))
    _final_router(estimator)
    return estimator


def _final_router(estimator):
    """Return the fitted router that ends ``estimator``, or raise."""
    router = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if not all(
        hasattr(router, method) for method in ("predict_quality", "predict_cost")
    ):
        raise TypeError(
            "pipeline must be a skrouter router, or a Pipeline whose last step "
            f"is one; got a last step of type {type(router).__name__}."
        )
    check_is_fitted(router, "models_")
    return router


def _route_partition(
    queries, source_key, payload, return_quality, return_cost, partition_info=None
):
    number = None if partition_info is None else partition_info["number"]
    estimator = _load_pipeline(source_key, payload)
    models = list(_final_router(estimator).models_)

    if len(queries) == 0:
        choice = np.zeros(0, dtype=np.intp)
        quality = cost = np.zeros((0, len(models)))
    else:
        try:
            choice, quality, cost = _route(estimator, queries)
        except MemoryError:
            raise
        except Exception as exc:
            raise _locate_failure(estimator, queries, number, exc) from exc

    if choice.shape[0] != len(queries):
        raise RuntimeError(
            f"Routing partition {number} returned {choice.shape[0]} choices for "
            f"{len(queries)} queries; every query must get exactly one model. "
            "Check that no step of the pipeline drops or adds rows."
        )
    return _routes_frame(
        queries.index, choice, quality, cost, models, return_quality, return_cost
    )


def _route(estimator, queries):
    """Return the position of the chosen model, and the predicted outcomes."""
    if isinstance(estimator, Pipeline):
        router = estimator[-1]
        features = estimator[:-1].transform(queries) if len(estimator) > 1 else queries
    else:
        router, features = estimator, queries

    if isinstance(router, BaseRouter):
        # Featurize and predict once for the choice and the outcomes; this is
        # what BaseRouter.predict does.
        quality, cost = router._predict(features)
        choice = router._choose_from(quality, cost, router.cost_weight_)
    else:
        quality = np.asarray(router.predict_quality(features), dtype=np.float64)
        cost = np.asarray(router.predict_cost(features), dtype=np.float64)
        names = np.asarray(router.predict(features))
        positions = {name: j for j, name in enumerate(router.models_)}
        choice = np.asarray([positions[name] for name in names], dtype=np.intp)
    return choice, quality, cost


def _routes_frame(index, choice, quality, cost, models, return_quality, return_cost):
    columns = {
        "model": pd.Categorical.from_codes(
            choice, dtype=pd.CategoricalDtype(models, ordered=False)
        )
    }
    if return_quality:
        for j, name in enumerate(models):
            columns[QUALITY_PRED_PREFIX + name] = quality[:, j].astype(np.float64)
    if return_cost:
        for j, name in enumerate(models):
            columns[COST_PRED_PREFIX + name] = cost[:, j].astype(np.float64)
    return pd.DataFrame(columns, index=index)


def _fails(estimator, queries):
    try:
        _route(estimator, queries)
    except MemoryError:
        raise
    except Exception as exc:
        return exc
    return None


def _locate_failure(estimator, queries, number, error):
    """Build the error of a failed partition, naming the failing row.

    Halves of the failing range are routed again until a single row fails on
    its own, about twice the partition's rows in all. A row that fails with
    another, control row also failing on its own is reported as possibly not
    specific to the row (for example a model file that cannot be loaded).
    """
    where = f"partition {number}" if number is not None else "a partition"
    low, high = 0, len(queries)
    while high - low > 1:
        middle = (low + high) // 2
        first_half = _fails(estimator, queries.iloc[low:middle])
        if first_half is not None:
            high, error = middle, first_half
            continue
        second_half = _fails(estimator, queries.iloc[middle:high])
        if second_half is None:
            return RoutingError(
                f"Failed to route {where} ({len(queries)} rows), but no single "
                f"row fails on its own: {type(error).__name__}: {error}",
                partition=number,
            )
        low, error = middle, second_half

    row = queries.index[low]
    control = len(queries) - 1 if low == 0 else 0
    if control != low and _fails(estimator, queries.iloc[control : control + 1]):
        return RoutingError(
            f"Failed to route {where}: row {row!r} (position {low}) fails, and "
            f"so does row {queries.index[control]!r} (position {control}), so "
            f"the error may not come from one row: {type(error).__name__}: "
            f"{error}",
            partition=number,
            row=row,
        )
    return RoutingError(
        f"Failed to route row {row!r} (position {low} of {where}): "
        f"{type(error).__name__}: {error}",
        partition=number,
        row=row,
    )

"""Grid search, routing and metrics on a local Dask cluster of two processes.

Every result is compared with the same computation in this process, on real
MATH-Vision and RouterBench queries.
"""

import logging
import os
import pickle
import re
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
import skops.io as sio  # noqa: E402
from sklearn.compose import make_column_transformer  # noqa: E402
from sklearn.decomposition import TruncatedSVD  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from skrouter import metrics  # noqa: E402
from skrouter.dask import (  # noqa: E402
    RoutingError,
    cost_quality_curve,
    flatten_outcomes,
    nauc_score,
    peak_score,
    qnc_score,
    route_queries,
    unflatten_outcomes,
)
from skrouter.datasets import load_math_vision, load_routerbench  # noqa: E402
from skrouter.features import AdaptiveFusion, CLIPFeaturizer  # noqa: E402
from skrouter.features._images import image_digest, read_image_source  # noqa: E402
from skrouter.metrics import get_scorer  # noqa: E402
from skrouter.routers import KMeansRouter, KNNRouter  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A client of two single-threaded worker processes on the loopback."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def math_vision():
    data = load_math_vision()
    return data.X, data.y


@pytest.fixture(scope="module")
def text_pipeline(math_vision):
    """TF-IDF, SVD and KNN fitted on every fifth MATH-Vision query."""
    X, y = math_vision
    pipeline = make_pipeline(
        make_column_transformer((TfidfVectorizer(min_df=2), "question")),
        TruncatedSVD(n_components=48, random_state=0),
        KNNRouter(n_neighbors=20, cost_weight=0.5),
    )
    return pipeline.fit(X.iloc[::5], y.iloc[::5])


@pytest.fixture(scope="module")
def pipeline_file(text_pipeline, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "router.skops"
    sio.dump(text_pipeline, path)
    return path


def predict_outcomes(pipeline, X):
    features = pipeline[:-1].transform(X)
    router = pipeline[-1]
    return router.predict_quality(features), router.predict_cost(features)


def load_counts(key_kind):
    """Pipeline loads per source key in one worker process."""
    from skrouter._dask import _route

    return {
        key[1]: count
        for key, count in _route._load_counts.items()
        if key[0] == key_kind
    }


# -- grid search -------------------------------------------------------------


def test_grid_search_matches_default_backend(
    client, math_vision, tiny_clip_dir, embedded_counts, tmp_path
):
    X, y = math_vision
    X, y = X.iloc[:450], y.iloc[:450]
    cache = tmp_path / "shared-cache"
    pipeline = Pipeline(
        [
            ("clip", CLIPFeaturizer(model_name=tiny_clip_dir, memory=str(cache))),
            ("fusion", AdaptiveFusion()),
            ("router", KMeansRouter(n_clusters=6, random_state=0)),
        ]
    )
    grid = {"fusion__strategy": ["adaptive", "mean"], "router__n_clusters": [4, 8]}
    scoring = {
        "nauc": get_scorer("nauc"),
        "quality": get_scorer("mean_quality"),
        "cost": get_scorer("neg_mean_cost"),
    }

    def search():
        return GridSearchCV(pipeline, grid, scoring=scoring, refit="nauc", cv=3)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with joblib.parallel_backend("dask"):
            on_cluster = search().fit(X, y)
        # The workers embedded every query; the refit here found them cached.
        assert embedded_counts == {"texts": 0, "images": 0}
        in_process = search().fit(X, y)
    assert embedded_counts == {"texts": 0, "images": 0}

    unique_texts = X["question"].nunique()
    unique_images = len(
        {image_digest(read_image_source(path)[0]) for path in X["image"]}
    )
    assert len(list(cache.rglob("*.npy"))) == unique_texts + unique_images
    assert not list(cache.rglob("*.tmp"))

    for key, values in in_process.cv_results_.items():
        if "_test_" in key:
            np.testing.assert_array_equal(on_cluster.cv_results_[key], values)
    assert on_cluster.best_params_ == in_process.best_params_


def test_pickled_featurizer_leaves_weights_out(math_vision, tiny_clip_dir):
    X, _ = math_vision
    featurizer = CLIPFeaturizer(model_name=tiny_clip_dir)
    featurizer.fit_transform(X.iloc[:8])
    assert featurizer._loaded_model is not None

    weights = Path(tiny_clip_dir.removeprefix("local-dir:")) / (
        "open_clip_model.safetensors"
    )
    size = len(pickle.dumps(featurizer))
    assert weights.stat().st_size > 1_000_000
    assert size < 4_000
    assert "_loaded_model" not in vars(pickle.loads(pickle.dumps(featurizer)))


# -- routing -----------------------------------------------------------------


def test_route_matches_predict(client, math_vision, text_pipeline, pipeline_file):
    X, _ = math_vision
    queries = dd.from_pandas(X, npartitions=8)
    lazy = route_queries(pipeline_file, queries, return_quality=True, return_cost=True)
    routes = lazy.compute()

    models = list(text_pipeline[-1].models_)
    assert len(routes) == len(X)
    assert routes.index.equals(X.index)
    assert routes.dtypes.equals(lazy.dtypes)
    assert list(routes["model"].cat.categories) == models
    np.testing.assert_array_equal(
        routes["model"].to_numpy(dtype=object), text_pipeline.predict(X)
    )

    quality, cost = predict_outcomes(text_pipeline, X)
    np.testing.assert_allclose(
        routes[[f"quality_pred__{name}" for name in models]], quality, rtol=1e-12
    )
    np.testing.assert_allclose(
        routes[[f"cost_pred__{name}" for name in models]], cost, rtol=1e-12
    )


def test_route_loads_file_once_per_worker(client, math_vision, pipeline_file):
    X, _ = math_vision
    queries = dd.from_pandas(X, npartitions=12)
    routes = route_queries(pipeline_file, queries)
    routes.compute()
    routes["model"].value_counts().compute()

    counts = client.run(load_counts, "skops")
    path = str(pipeline_file.resolve())
    assert len(counts) == 2
    assert [worker.get(path, 0) for worker in counts.values()] == [1, 1]


def test_route_estimator_object(client, math_vision, text_pipeline):
    X, _ = math_vision
    queries = dd.from_pandas(X.iloc[:1200], npartitions=6)
    routes = route_queries(text_pipeline, queries, return_cost=True)
    first = routes.compute()
    second = routes.compute()

    np.testing.assert_array_equal(
        first["model"].to_numpy(dtype=object), text_pipeline.predict(X.iloc[:1200])
    )
    pd.testing.assert_frame_equal(first, second)
    assert "quality_pred__Gemini-Pro" not in first.columns
    for worker_counts in client.run(load_counts, "pickle").values():
        assert all(count == 1 for count in worker_counts.values())


def test_route_bad_row_names_row_and_partition(client, math_vision, pipeline_file):
    X, _ = math_vision
    X = X.copy()
    X.loc[1234, "question"] = None
    queries = dd.from_pandas(X, npartitions=8)
    bad_partition = int(np.searchsorted(queries.divisions, 1234, side="right")) - 1

    with pytest.raises(RoutingError) as info:
        route_queries(pipeline_file, queries).compute()
    position = 1234 - queries.divisions[bad_partition]
    message = str(info.value)
    assert f"row 1234 (position {position} of partition {bad_partition})" in message
    # The original error follows, as "<type>: <message>".
    assert re.search(r"\): [A-Za-z]+Error: ", message)
    assert info.value.partition == bad_partition
    assert info.value.row == 1234


def test_route_checks_row_count(math_vision, text_pipeline):
    X, _ = math_vision
    dropping = Pipeline(
        [("drop_last", FunctionTransformer(lambda queries: queries.iloc[:-1]))]
        + text_pipeline.steps
    )
    routes = route_queries(dropping, dd.from_pandas(X.iloc[:100], npartitions=2))
    with pytest.raises(RuntimeError, match="returned 49 choices for 50 queries"):
        routes.compute(scheduler="sync")


def test_route_rejects_pandas_and_missing_file(math_vision, text_pipeline, tmp_path):
    X, _ = math_vision
    with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
        route_queries(text_pipeline, X)
    with pytest.raises(FileNotFoundError, match="not found"):
        route_queries(tmp_path / "absent.skops", dd.from_pandas(X, npartitions=2))


def test_route_empty_partition(math_vision, text_pipeline):
    X, _ = math_vision
    queries = dd.from_pandas(X.iloc[:40], npartitions=2)
    queries = queries[queries["level"] > 100]
    routes = route_queries(text_pipeline, queries, return_quality=True)
    assert len(routes.compute(scheduler="sync")) == 0


def test_worker_killed_mid_task(client, math_vision, text_pipeline, pipeline_file):
    X, _ = math_vision
    copies = [X.assign(question=X["question"] + f" (copy {k})") for k in range(6)]
    X = pd.concat(copies, ignore_index=True)
    routes = route_queries(pipeline_file, dd.from_pandas(X, npartitions=12))

    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    future = client.compute(routes)
    deadline = time.monotonic() + 60
    while not client.processing(workers=[victim])[victim]:
        assert time.monotonic() < deadline, "the worker got no task"
        time.sleep(0.005)
    assert not future.done()
    os.kill(pids[victim], signal.SIGKILL)

    result = future.result(timeout=180)
    np.testing.assert_array_equal(
        result["model"].to_numpy(dtype=object), text_pipeline.predict(X)
    )
    client.wait_for_workers(2, timeout=60)
    assert pids[victim] not in client.run(os.getpid).values()


# -- metrics -----------------------------------------------------------------


def routerbench_predictions(shared_data):
    """RouterBench outcomes, with noisy predictions where outcomes are missing."""
    data = load_routerbench(data_home=shared_data)
    y = data.y
    rng = np.random.default_rng(0)
    quality = y["quality"].fillna(0.5).to_numpy()
    cost = y["cost"].fillna(y["cost"].mean()).to_numpy()
    quality_pred = np.clip(quality + rng.normal(0, 0.3, quality.shape), 0, 1)
    cost_pred = cost * rng.lognormal(0, 0.3, cost.shape)
    return y, quality_pred, cost_pred


def math_vision_predictions(math_vision, text_pipeline):
    """MATH-Vision outcomes with a few unobserved cells, and routed predictions."""
    X, y = math_vision
    y = y.copy()
    for row, column in ((3, 0), (500, 4), (2900, 14)):
        y.iloc[row, column] = np.nan
    quality_pred, cost_pred = predict_outcomes(text_pipeline, X)
    return y, quality_pred, cost_pred


def prediction_table(y, quality_pred, cost_pred):
    models = list(y["quality"].columns)
    table = flatten_outcomes(y)
    for j, name in enumerate(models):
        table[f"quality_pred__{name}"] = quality_pred[:, j]
    for j, name in enumerate(models):
        table[f"cost_pred__{name}"] = cost_pred[:, j]
    return table


@pytest.mark.parametrize("data", ["math_vision", "routerbench"])
@pytest.mark.parametrize("sweep", ["cost_weight", "cap"])
def test_metrics_match_in_memory(
    client, math_vision, text_pipeline, shared_data, data, sweep
):
    if data == "math_vision":
        y, quality_pred, cost_pred = math_vision_predictions(math_vision, text_pipeline)
    else:
        y, quality_pred, cost_pred = routerbench_predictions(shared_data)
    frame = dd.from_pandas(prediction_table(y, quality_pred, cost_pred), npartitions=7)
    n_missing = int(y["quality"].isna().any(axis=1).sum())
    assert n_missing > 0

    with pytest.warns(UserWarning, match=f"{n_missing} of {len(y)} queries"):
        curve = cost_quality_curve(frame, frame, frame, sweep=sweep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = metrics.cost_quality_curve(y, quality_pred, cost_pred, sweep=sweep)
        for expected_array, array in zip(expected, curve):
            assert array.shape == expected_array.shape
            np.testing.assert_allclose(array, expected_array, rtol=1e-12, atol=1e-12)

        for score, in_memory in (
            (nauc_score, metrics.nauc_score),
            (peak_score, metrics.peak_score),
            (qnc_score, metrics.qnc_score),
        ):
            value = score(frame, frame, frame, sweep=sweep)
            expected_value = in_memory(y, quality_pred, cost_pred, sweep=sweep)
            assert value == pytest.approx(expected_value, rel=1e-12, abs=1e-12)
        value = nauc_score(frame, frame, frame, sweep=sweep, cost_range="frontier")
        expected_value = metrics.nauc_score(
            y, quality_pred, cost_pred, sweep=sweep, cost_range="frontier"
        )
        assert value == pytest.approx(expected_value, rel=1e-12, abs=1e-12)


def test_metrics_of_routed_queries(client, math_vision, text_pipeline, pipeline_file):
    X, y = math_vision
    queries = dd.from_pandas(X, npartitions=5)
    outcomes = dd.from_pandas(flatten_outcomes(y), npartitions=5)
    routes = route_queries(
        pipeline_file, queries, return_quality=True, return_cost=True
    )

    quality_pred, cost_pred = predict_outcomes(text_pipeline, X)
    score = nauc_score(outcomes, routes, routes)
    assert score == pytest.approx(
        metrics.nauc_score(y, quality_pred, cost_pred), rel=1e-12
    )


def test_metrics_accept_model_named_columns(math_vision):
    _, y = math_vision
    y = y.iloc[:300]
    quality = dd.from_pandas(y["quality"].iloc[:, ::-1], npartitions=3)
    cost = dd.from_pandas(y["cost"], npartitions=3)
    outcomes = dd.from_pandas(flatten_outcomes(y), npartitions=3)

    with dask_sync():
        value = peak_score(outcomes, quality, cost)
    assert value == metrics.peak_score(y, y["quality"], y["cost"])


def test_metrics_reject_mismatched_inputs(math_vision):
    _, y = math_vision
    y = y.iloc[:300]
    outcomes = dd.from_pandas(flatten_outcomes(y), npartitions=3)

    with pytest.raises(TypeError, match="skrouter.metrics"):
        nauc_score(outcomes, y["quality"], y["cost"])
    with pytest.raises(ValueError, match="same partitions"):
        nauc_score(outcomes, dd.from_pandas(y["quality"], npartitions=2), outcomes)
    with pytest.raises(ValueError, match="quality_pred__<model>"):
        nauc_score(outcomes, outcomes, outcomes)

    relabelled = y["quality"].set_axis(np.arange(len(y)) + 1000)
    relabelled = dd.from_pandas(relabelled, npartitions=3)
    cost = dd.from_pandas(y["cost"], npartitions=3)
    with dask_sync(), pytest.raises(ValueError, match="same queries"):
        nauc_score(outcomes, relabelled, cost)

    bad = flatten_outcomes(y)
    bad.iloc[250, 0] = 1.5
    bad = dd.from_pandas(bad, npartitions=3)
    with dask_sync(), pytest.raises(ValueError, match="Partition 2 of y_true"):
        nauc_score(bad, dd.from_pandas(y["quality"], npartitions=3), cost)


def test_flat_outcomes_round_trip(math_vision):
    _, y = math_vision
    pd.testing.assert_frame_equal(unflatten_outcomes(flatten_outcomes(y)), y)


def dask_sync():
    import dask

    return dask.config.set(scheduler="sync")

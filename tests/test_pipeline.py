"""Featurizer, fusion and router together on real MATH-Vision queries."""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skrouter.datasets import load_math_vision
from skrouter.features import AdaptiveFusion, CLIPFeaturizer
from skrouter.features._images import image_digest, read_image_source
from skrouter.metrics import get_scorer
from skrouter.routers import KMeansRouter, KNNRouter


@pytest.fixture(scope="module")
def math_vision_queries():
    """The first 240 built-in problems: question, thumbnail and outcomes."""
    data = load_math_vision()
    return data.X.iloc[:240].reset_index(drop=True), data.y.iloc[:240].reset_index(
        drop=True
    )


def test_grid_search_embeds_each_query_once(
    math_vision_queries, tiny_clip_dir, embedded_counts, tmp_path
):
    X, y = math_vision_queries
    pipeline = Pipeline(
        [
            ("clip", CLIPFeaturizer(model_name=tiny_clip_dir, memory=tmp_path)),
            ("fusion", AdaptiveFusion()),
            ("router", KMeansRouter(n_clusters=6, random_state=0)),
        ]
    )
    grid = {"fusion__strategy": ["adaptive", "mean"], "router__cost_weight": [0.0, 1.0]}
    scoring = {
        "nauc": get_scorer("nauc"),
        "quality": get_scorer("mean_quality"),
        "cost": get_scorer("neg_mean_cost"),
    }
    search = GridSearchCV(pipeline, grid, scoring=scoring, refit="nauc", cv=3, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)

    unique_texts = X["question"].nunique()
    unique_images = len(
        {image_digest(read_image_source(path)[0]) for path in X["image"]}
    )
    assert embedded_counts["texts"] == unique_texts
    assert embedded_counts["images"] == unique_images

    results = search.cv_results_
    assert np.all(np.isfinite(results["mean_test_nauc"]))
    # A higher cost weight never buys more expensive answers on average.
    for strategy in grid["fusion__strategy"]:
        rows = [
            k
            for k, params in enumerate(results["params"])
            if params["fusion__strategy"] == strategy
        ]
        costs = -results["mean_test_cost"][rows]
        assert costs[0] >= costs[1]
    assert set(search.predict(X.iloc[:10])) <= set(y["quality"].columns)


def test_router_trained_on_images_serves_text_only_queries(
    math_vision_queries, tiny_clip_dir
):
    X, y = math_vision_queries
    pipeline = Pipeline(
        [
            ("clip", CLIPFeaturizer(model_name=tiny_clip_dir)),
            ("fusion", AdaptiveFusion()),
            ("router", KNNRouter(n_neighbors=10)),
        ]
    ).fit(X, y)

    text_only = X.iloc[:20].assign(image=None)
    fused = pipeline[:-1].transform(text_only)
    text_half = pipeline[0].transform(text_only)[:, : fused.shape[1]]
    expected = text_half / np.linalg.norm(text_half, axis=1, keepdims=True)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    assert set(pipeline.predict(text_only)) <= set(y["quality"].columns)

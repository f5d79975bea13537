"""Time a grid search over a CLIP pipeline against searching the router alone.

Pipeline side: ``Pipeline([CLIPFeaturizer, AdaptiveFusion, router])`` in
``GridSearchCV`` over 20 cost weights x 5 folds, with the featurizer's
``memory`` set to a new, empty folder, so the first fold embeds every query
and the later fits and scores read the embedding cache.

Precomputed side: the same featurizer (also with a new, empty ``memory``
folder) and ``AdaptiveFusion`` transform all queries once, and
``GridSearchCV`` searches the router alone on the fused features.

Both sides time one real embedding pass plus the search, on the first
MATH-Vision problems (built-in thumbnails), with two models: ViT-B-32 with
random weights, a realistic cost per query, and the tiny test model, whose
embedding is so cheap that the ratio shows the bookkeeping alone. Searches are
scored with ``mean_quality`` and ``neg_mean_cost`` (one ``get_scorers``
call, so each test fold is transformed once) and refitted with
``refit_within_budget``. The ratio is pipeline time over precomputed time
(1.0 = no overhead), taken within each repetition; the table gives the
median of those ratios. The machine is shared with other jobs, so the sides run
interleaved (A B, B A, ...) and each time is the median of the repetitions.

The model calls are counted on both sides by wrapping
``_LoadedModel.encode_texts`` and ``encode_images``. The script fails unless
each side embeds every unique text and every unique image exactly once. It
also fails unless both sides pick the same cost weight with the same scores.

Run::

    python benchmarks/bench_search.py           # 3 to 5 minutes on 2 cores
    python benchmarks/bench_search.py --quick   # small sizes, a smoke run
"""

import argparse
import contextlib
import os
import platform
import tempfile
import time
import warnings

import numpy as np
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skrouter.datasets import load_math_vision
from skrouter.features import AdaptiveFusion, CLIPFeaturizer
from skrouter.features import _clip as clip_module
from skrouter.features._images import image_digest, read_image_source
from skrouter.features._tiny_clip import save_tiny_clip
from skrouter.metrics import get_scorers, refit_within_budget
from skrouter.routers import KMeansRouter, KNNRouter

# USD per query: between the cheapest setups (about 0.0001) and GPT-4
# (about 0.006) on MATH-Vision.
BUDGET = 0.001


@contextlib.contextmanager
def count_embedded():
    """Count the texts and images that reach the model, in all clones."""
    counts = {"texts": 0, "images": 0}
    encode_texts = clip_module._LoadedModel.encode_texts
    encode_images = clip_module._LoadedModel.encode_images

    def counting_texts(self, texts):
        texts = list(texts)
        counts["texts"] += len(texts)
        return encode_texts(self, texts)

    def counting_images(self, images):
        images = list(images)
        counts["images"] += len(images)
        return encode_images(self, images)

    clip_module._LoadedModel.encode_texts = counting_texts
    clip_module._LoadedModel.encode_images = counting_images
    try:
        yield counts
    finally:
        clip_module._LoadedModel.encode_texts = encode_texts
        clip_module._LoadedModel.encode_images = encode_images


def make_search(estimator, parameter, grid):
    # One scorer for both scores, so each test fold runs the pipeline once.
    scoring = get_scorers(["mean_quality", "neg_mean_cost"])
    return GridSearchCV(
        estimator,
        {parameter: grid["cost_weights"]},
        scoring=scoring,
        refit=refit_within_budget(BUDGET),
        cv=KFold(grid["n_folds"], shuffle=True, random_state=0),
    )


def search_pipeline(X, y, model, router, grid):
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline(
            [
                ("clip", CLIPFeaturizer(**model, memory=folder)),
                ("fusion", AdaptiveFusion()),
                ("router", router),
            ]
        )
        return make_search(pipeline, "router__cost_weight", grid).fit(X, y)


def search_precomputed(X, y, model, router, grid, embedding_times):
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        embeddings = CLIPFeaturizer(**model, memory=folder).fit_transform(X)
        embedding_times.append(time.perf_counter() - start)
        features = AdaptiveFusion().fit_transform(embeddings)
        return make_search(router, "cost_weight", grid).fit(features, y)


def check_same_search(pipeline_search, precomputed_search):
    """Raise AssertionError unless both searches found the same results."""
    pipeline_weight = pipeline_search.best_params_["router__cost_weight"]
    precomputed_weight = precomputed_search.best_params_["cost_weight"]
    if pipeline_weight != precomputed_weight:
        raise AssertionError(
            f"The pipeline search picked cost_weight={pipeline_weight}, the "
            f"precomputed search cost_weight={precomputed_weight}."
        )
    for key in ["mean_test_mean_quality", "mean_test_neg_mean_cost"]:
        if not np.allclose(
            pipeline_search.cv_results_[key], precomputed_search.cv_results_[key]
        ):
            raise AssertionError(f"The two searches disagree on {key}.")


def check_counts(counts, expected, side):
    if counts != expected:
        raise AssertionError(
            f"The {side} side embedded {counts}, expected each unique query "
            f"once: {expected}."
        )


def time_router(model_label, model, router_label, router, X, y, grid, repeats):
    """Return a table row comparing the two sides for one model and router."""
    expected = {
        "texts": X["question"].nunique(),
        "images": len(
            {image_digest(read_image_source(path)[0]) for path in X["image"]}
        ),
    }
    embedding_times = []
    sides = {
        "pipeline": lambda: search_pipeline(X, y, model, router, grid),
        "precomputed": lambda: search_precomputed(
            X, y, model, router, grid, embedding_times
        ),
    }
    times = {side: [] for side in sides}
    names = list(sides)
    for repetition in range(repeats):
        searches = {}
        for side in names if repetition % 2 == 0 else names[::-1]:
            with count_embedded() as counts:
                start = time.perf_counter()
                searches[side] = sides[side]()
                times[side].append(time.perf_counter() - start)
            check_counts(counts, expected, side)
        check_same_search(searches["pipeline"], searches["precomputed"])

    ratios = np.divide(times["pipeline"], times["precomputed"])
    # Every candidate transforms all queries (its training and its test
    # fold), and so does the refit.
    n_candidates = len(grid["cost_weights"]) * grid["n_folds"]
    rows_transformed = (n_candidates + 1) * len(X)
    overhead = np.median(times["pipeline"]) - np.median(times["precomputed"])
    return [
        f"{model_label}, {len(X)} queries",
        router_label,
        f"{np.median(embedding_times):.1f}",
        f"{np.median(times['pipeline']):.1f}",
        f"{np.median(times['precomputed']):.1f}",
        f"{np.median(ratios):.2f}",
        f"{ratios.min():.2f}-{ratios.max():.2f}",
        f"{overhead / rows_transformed * 1e6:.0f}",
        f"{expected['texts']} / {expected['images']}",
        str(searches["pipeline"].best_params_["router__cost_weight"].round(3)),
    ]


def run(settings, n_cost_weights, n_folds):
    """Time each (model, queries, routers, repeats) setting; print one table."""
    warnings.simplefilter("ignore")
    data = load_math_vision()
    grid = {
        "cost_weights": np.r_[0.0, np.logspace(-2, 1.5, n_cost_weights - 1)],
        "n_folds": n_folds,
    }
    rows = []
    with tempfile.TemporaryDirectory() as model_folder:
        for model_label, n_queries, routers, repeats in settings:
            if model_label == "tiny":
                model = {"model_name": save_tiny_clip(model_folder, random_state=0)}
            else:
                model = {
                    "model_name": model_label,
                    "pretrained": None,
                    "random_state": 0,
                }
            X = data.X.iloc[:n_queries].reset_index(drop=True)
            y = data.y.iloc[:n_queries].reset_index(drop=True)
            # Untimed: the first model built in a process pays for setting
            # up torch, which would count against whichever side ran first.
            CLIPFeaturizer(**model).fit_transform(X.iloc[:2])
            for router_label, router in routers:
                rows.append(
                    time_router(
                        model_label, model, router_label, router, X, y, grid, repeats
                    )
                )

    print(
        f"## MATH-Vision queries (built-in thumbnails), {n_cost_weights} cost "
        f"weights x {n_folds} folds, {os.cpu_count()} cores "
        f"({platform.machine()}); medians of interleaved repetitions; ratio = "
        "median of the per-repetition ratios"
    )
    columns = [
        "model",
        "router",
        "embedding pass s",
        "pipeline s",
        "precomputed s",
        "ratio",
        "ratio range",
        "overhead µs per transformed query",
        "unique texts / images, each embedded once",
        "best cost weight",
    ]
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        print(" | ".join(row))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run"
    )
    args = parser.parse_args()
    kmeans = ("KMeansRouter(8)", KMeansRouter(n_clusters=8, random_state=0))
    knn = ("KNNRouter(10)", KNNRouter(n_neighbors=10))
    if args.quick:
        run([("tiny", 60, [kmeans], 1)], n_cost_weights=4, n_folds=3)
    else:
        settings = [("ViT-B-32", 100, [kmeans], 3), ("tiny", 300, [kmeans, knn], 3)]
        run(settings, n_cost_weights=20, n_folds=5)


if __name__ == "__main__":
    main()

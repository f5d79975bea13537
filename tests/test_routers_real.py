"""Learned routers on real RouterBench rows, against random and single models."""

import time

import pytest
from sklearn.base import clone
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline

from skrouter import complete_rows
from skrouter.datasets import load_routerbench
from skrouter.metrics import nauc_score, peak_score, single_model_points
from skrouter.routers import KMeansRouter, KNNRouter, MFRouter, RandomRouter

# A router's peak quality may fall this far below the best single model's
# test quality. Measured with these features and parameters: KNNRouter is
# 0.007 below, KMeansRouter 0.002 below, and both MFRouter solvers reach
# 0.880, above the best model's 0.879.
PEAK_MARGIN = 0.02

ROUTERS = {
    "mf_ridge": MFRouter(solver="ridge", random_state=0),
    "mf_torch": MFRouter(solver="torch", random_state=0),
    "knn": KNNRouter(n_neighbors=40),
    "kmeans": KMeansRouter(n_clusters=8, random_state=0),
}


@pytest.fixture(scope="module")
def routerbench(shared_data):
    """Prompt features from TF-IDF and a 64-factor SVD, on the provided split."""
    train = load_routerbench(data_home=shared_data, split="train")
    test = load_routerbench(data_home=shared_data, split="test")
    features = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=2),
        TruncatedSVD(n_components=64, random_state=0),
    )
    X_train = features.fit_transform(train.X["prompt"])
    X_test, y_test = complete_rows(features.transform(test.X["prompt"]), test.y)

    random_router = RandomRouter(random_state=0).fit(X_train, train.y)
    random_nauc = nauc_score(
        y_test,
        random_router.predict_quality(X_test),
        random_router.predict_cost(X_test),
    )
    best_single_quality = single_model_points(y_test)["quality"].max()
    print(
        f"\nRouterBench test: {len(X_test)} complete rows, random nAUC "
        f"{random_nauc:.4f}, best single model quality {best_single_quality:.4f}"
    )
    return X_train, train.y, X_test, y_test, random_nauc, best_single_quality


@pytest.mark.parametrize("name", list(ROUTERS))
def test_router_beats_random_near_best_model(routerbench, name, record_property):
    X_train, y_train, X_test, y_test, random_nauc, best_single_quality = routerbench
    start = time.perf_counter()
    router = clone(ROUTERS[name]).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    quality = router.predict_quality(X_test)
    cost = router.predict_cost(X_test)
    nauc = nauc_score(y_test, quality, cost)
    peak = peak_score(y_test, quality, cost)

    print(f"{name}: nAUC {nauc:.4f}, peak score {peak:.4f}, fit {fit_seconds:.2f} s")
    record_property("nauc", nauc)
    record_property("peak_score", peak)
    record_property("fit_seconds", fit_seconds)
    assert nauc > random_nauc
    assert peak >= best_single_quality - PEAK_MARGIN

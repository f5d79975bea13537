"""Time the routers against the plainest code doing the same computation.

Each router is fitted on 11,000 queries x 10 models with 512 features (the
size of MMR-Bench's CLIP embeddings) and predicts the models for 11,000 new
queries. The comparison, run in the same process on the same data, is the
scikit-learn or numpy code that a user would write by hand: the neighbour
search or clustering, per-model means of the outcomes, and an argmax of the
utility. The ratio is router time over plain time (1.0 = no overhead).

One-query latency is the median and 99th percentile of 1,000 calls of
``predict`` on a single query.

Run::

    python benchmarks/bench_routers.py           # full size
    python benchmarks/bench_routers.py --quick   # small sizes, a smoke run
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.linear_model import Ridge
from sklearn.neighbors import NearestNeighbors

from skrouter import make_outcomes
from skrouter.routers import KMeansRouter, KNNRouter

try:
    from skrouter.routers import MFRouter
except ImportError:  # the matrix-factorization router is optional here
    MFRouter = None


def make_problem(n_queries, n_models, n_features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n_queries, n_features))
    price = 10 ** rng.uniform(-5, -2, n_models)
    quality = (rng.random((2 * n_queries, n_models)) < 0.5).astype(float)
    cost = price * rng.lognormal(0, 0.5, (2 * n_queries, n_models))
    y = make_outcomes(quality, cost)
    return X[:n_queries], y.iloc[:n_queries], X[n_queries:]


def choose(quality, cost, cost_weight, cost_scale):
    return np.argmax(quality - cost_weight * cost / cost_scale, axis=1)


class PlainKNN:
    def __init__(self, n_neighbors):
        self.n_neighbors = n_neighbors

    def fit(self, X, quality, cost):
        self.index = NearestNeighbors(
            n_neighbors=self.n_neighbors, metric="cosine"
        ).fit(X)
        self.quality, self.cost = quality, cost
        self.scale = cost.mean(axis=0).max()
        return self

    def predict(self, X):
        _, neighbors = self.index.kneighbors(X)
        quality = self.quality[neighbors].mean(axis=1)
        cost = self.cost[neighbors].mean(axis=1)
        return choose(quality, cost, 0.5, self.scale)


class PlainKMeans:
    def __init__(self, n_clusters):
        self.n_clusters = n_clusters

    def fit(self, X, quality, cost):
        self.kmeans = KMeans(self.n_clusters, n_init="auto", random_state=0).fit(X)
        labels = self.kmeans.labels_
        self.quality = np.array(
            [quality[labels == k].mean(axis=0) for k in range(self.n_clusters)]
        )
        self.cost = np.array(
            [cost[labels == k].mean(axis=0) for k in range(self.n_clusters)]
        )
        self.scale = cost.mean(axis=0).max()
        return self

    def predict(self, X):
        labels = self.kmeans.predict(X)
        return choose(self.quality[labels], self.cost[labels], 0.5, self.scale)


class PlainRidgeMF:
    def __init__(self, n_factors, alpha):
        self.n_factors, self.alpha = n_factors, alpha

    def fit(self, X, quality, cost):
        self.svd = TruncatedSVD(self.n_factors, random_state=0).fit(X)
        factors = self.svd.transform(X)
        self.quality_model = Ridge(alpha=self.alpha).fit(factors, quality)
        self.cost_model = Ridge(alpha=self.alpha).fit(factors, cost)
        self.scale = cost.mean(axis=0).max()
        return self

    def predict(self, X):
        factors = self.svd.transform(X)
        quality = np.clip(self.quality_model.predict(factors), 0, 1)
        cost = np.maximum(self.cost_model.predict(factors), 0)
        return choose(quality, cost, 0.5, self.scale)


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def latency(router, X, n_calls):
    times = np.empty(n_calls)
    for k in range(n_calls):
        query = X[k % len(X)][None, :]
        start = time.perf_counter()
        router.predict(query)
        times[k] = time.perf_counter() - start
    return np.median(times) * 1e3, np.percentile(times, 99) * 1e3


def run(n_queries, n_models, n_features, repeats, n_calls):
    warnings.simplefilter("ignore")
    X, y, X_new = make_problem(n_queries, n_models, n_features)
    quality = y["quality"].to_numpy()
    cost = y["cost"].to_numpy()

    cases = [
        (
            "KNNRouter",
            KNNRouter(n_neighbors=20, prior_strength=0.0, cost_weight=0.5),
            PlainKNN(20),
        ),
        (
            "KMeansRouter",
            KMeansRouter(
                n_clusters=32, prior_strength=0.0, cost_weight=0.5, random_state=0
            ),
            PlainKMeans(32),
        ),
    ]
    if MFRouter is not None:
        cases.append(
            (
                "MFRouter ridge",
                MFRouter(solver="ridge", n_factors=64, alpha=1.0, cost_weight=0.5),
                PlainRidgeMF(64, 1.0),
            )
        )
        cases.append(
            (
                "MFRouter torch",
                MFRouter(
                    solver="torch",
                    n_factors=64,
                    cost_weight=0.5,
                    max_epochs=5,
                    early_stopping=False,
                    random_state=0,
                ),
                None,
            )
        )

    print(
        f"# {n_queries:,} training and {n_queries:,} new queries, {n_models} models, "
        f"{n_features} features; medians of {repeats} runs, "
        f"latency over {n_calls} calls"
    )
    columns = [
        "router",
        "fit s",
        "plain fit s",
        "predict s",
        "plain predict s",
        "predict ratio",
        "1 query ms",
        "p99 ms",
    ]
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for name, router, plain in cases:
        fit_seconds = median_time(lambda r=router: r.fit(X, y), repeats)
        predict_seconds = median_time(lambda r=router: r.predict(X_new), repeats)
        median_ms, p99_ms = latency(router, X_new, n_calls)
        if plain is None:
            plain_fit = plain_predict = ratio = "-"
        else:
            plain_fit = (
                f"{median_time(lambda p=plain: p.fit(X, quality, cost), repeats):.3f}"
            )
            plain_seconds = median_time(lambda p=plain: p.predict(X_new), repeats)
            plain_predict = f"{plain_seconds:.3f}"
            ratio = f"{predict_seconds / plain_seconds:.2f}"
        row = [
            name,
            f"{fit_seconds:.3f}",
            plain_fit,
            f"{predict_seconds:.3f}",
            plain_predict,
            ratio,
            f"{median_ms:.3f}",
            f"{p99_ms:.3f}",
        ]
        print(" | ".join(row))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run"
    )
    args = parser.parse_args()
    if args.quick:
        run(1_000, 5, 64, repeats=2, n_calls=100)
    else:
        run(11_000, 10, 512, repeats=5, n_calls=1_000)


if __name__ == "__main__":
    main()

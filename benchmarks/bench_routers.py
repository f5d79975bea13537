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
from functools import partial

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


class PlainTorchMF:
    """The torch factorization of MFRouter as a bare training loop.

    Same model, loss, optimizer, batch size, epochs and thread count. It
    assumes every outcome is observed, as in this benchmark's data, so the
    losses are plain means, while MFRouter masks missing outcomes. Its
    biases start at 0 instead of each model's mean outcome, which changes
    the weights but not the work per step.
    """

    def __init__(self, n_factors, epochs, batch_size=128, learning_rate=0.01):
        self.n_factors, self.epochs = n_factors, epochs
        self.batch_size, self.learning_rate = batch_size, learning_rate

    def fit(self, X, quality, cost):
        import torch

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        generator = torch.Generator().manual_seed(0)

        self.mean, self.std = X.mean(axis=0), X.std(axis=0)
        self.unit = cost.mean(axis=0)
        self.scale = cost.mean(axis=0).max()
        features = torch.as_tensor((X - self.mean) / self.std, dtype=torch.float32)
        quality_target = torch.as_tensor(quality, dtype=torch.float32)
        cost_target = torch.as_tensor(np.log1p(cost / self.unit), dtype=torch.float32)

        n_queries, n_features = X.shape
        n_models = quality.shape[1]

        def random(*shape, std):
            return (torch.randn(*shape, generator=generator) * std).requires_grad_()

        weights = {
            "quality_projection": random(n_features, self.n_factors, std=0.05),
            "quality_factors": random(n_models, self.n_factors, std=0.1),
            "cost_projection": random(n_features, self.n_factors, std=0.05),
            "cost_factors": random(n_models, self.n_factors, std=0.1),
        }
        biases = {
            "quality_bias": torch.zeros(n_models, requires_grad=True),
            "cost_bias": torch.zeros(n_models, requires_grad=True),
        }
        optimizer = torch.optim.Adam(
            [
                {"params": list(weights.values()), "weight_decay": 0.01},
                {"params": list(biases.values()), "weight_decay": 0.0},
            ],
            lr=self.learning_rate,
        )

        for _ in range(self.epochs):
            order = torch.randperm(n_queries, generator=generator)
            for start in range(0, n_queries, self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = features[rows]
                quality_logits = (
                    batch @ weights["quality_projection"] @ weights["quality_factors"].T
                    + biases["quality_bias"]
                )
                cost_output = (
                    batch @ weights["cost_projection"] @ weights["cost_factors"].T
                    + biases["cost_bias"]
                )
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    quality_logits, quality_target[rows]
                ) + torch.nn.functional.mse_loss(cost_output, cost_target[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        torch.set_num_threads(previous_threads)
        self.params = {
            name: value.detach().numpy().astype(np.float64)
            for name, value in {**weights, **biases}.items()
        }
        return self

    def predict(self, X):
        features = (X - self.mean) / self.std
        params = self.params
        quality_logits = (
            features @ params["quality_projection"] @ params["quality_factors"].T
            + params["quality_bias"]
        )
        cost_output = (
            features @ params["cost_projection"] @ params["cost_factors"].T
            + params["cost_bias"]
        )
        quality = 1.0 / (1.0 + np.exp(-quality_logits))
        cost = self.unit * np.expm1(np.maximum(cost_output, 0.0))
        return choose(quality, cost, 0.5, self.scale)


def interleaved_medians(first, second, repeats):
    """Return the median times of two functions run in turns (A B, B A, ...).

    Taking turns spreads any drift of the machine's speed over both sides.
    """
    times = ([], [])
    for repetition in range(repeats):
        order = (0, 1) if repetition % 2 == 0 else (1, 0)
        for side in order:
            start = time.perf_counter()
            (first, second)[side]()
            times[side].append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


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
                PlainTorchMF(64, epochs=5),
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
        "fit ratio",
        "predict s",
        "plain predict s",
        "predict ratio",
        "1 query ms",
        "p99 ms",
    ]
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for name, router, plain in cases:
        # Untimed: the first fit in a process pays one-time setup, such as
        # torch's first optimizer step, that would count against one side.
        router.fit(X[:256], y.iloc[:256])
        plain.fit(X[:256], quality[:256], cost[:256])

        fit_seconds, plain_fit = interleaved_medians(
            partial(router.fit, X, y), partial(plain.fit, X, quality, cost), repeats
        )
        predict_seconds, plain_predict = interleaved_medians(
            partial(router.predict, X_new), partial(plain.predict, X_new), repeats
        )
        median_ms, p99_ms = latency(router, X_new, n_calls)
        row = [
            name,
            f"{fit_seconds:.3f}",
            f"{plain_fit:.3f}",
            f"{fit_seconds / plain_fit:.2f}",
            f"{predict_seconds:.3f}",
            f"{plain_predict:.3f}",
            f"{predict_seconds / plain_predict:.2f}",
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

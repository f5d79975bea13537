"""Time the exact curves and metrics against a plain per-threshold loop.

The plain loop is how a reference implementation computes a sweep: for every
distinct threshold, route every query again and recompute the means. It is
vectorized over queries (one numpy pass per threshold), so the ratio measures
the algorithm, not Python's speed.

Run::

    python benchmarks/bench_metrics.py            # 11,000 x 10, then growth
    python benchmarks/bench_metrics.py --quick    # small sizes, a smoke run
"""

import argparse
import platform
import time
import warnings

import numpy as np

from skrouter import make_outcomes
from skrouter.metrics import cost_quality_curve, nauc_score, peak_score, qnc_score


def make_predictions(n_queries, n_models, seed=0):
    rng = np.random.default_rng(seed)
    price = 10 ** rng.uniform(-5, -2, n_models)
    quality = (
        rng.random((n_queries, n_models)) < rng.uniform(0.3, 0.8, n_models)
    ).astype(float)
    cost = price * rng.lognormal(0, 0.5, (n_queries, n_models))
    quality_pred = np.clip(
        quality * 0.3 + rng.random((n_queries, n_models)) * 0.7, 0, 1
    )
    cost_pred = price * rng.lognormal(0, 0.3, (n_queries, n_models))
    return make_outcomes(quality, cost), quality_pred, cost_pred


def plain_cap_curve(quality, cost, quality_pred, cost_pred):
    """Route every query again at every distinct predicted cost."""
    rows = np.arange(quality.shape[0])
    cheapest = np.lexsort((-quality_pred, cost_pred), axis=1)[:, 0]
    costs, qualities = [], []
    for cap in np.unique(cost_pred):
        eligible = cost_pred <= cap
        masked = np.where(eligible, quality_pred, -np.inf)
        best = masked.max(axis=1, keepdims=True)
        tied_cost = np.where(masked == best, cost_pred, np.inf)
        chosen = tied_cost.argmin(axis=1)
        chosen = np.where(eligible.any(axis=1), chosen, cheapest)
        costs.append(cost[rows, chosen].mean())
        qualities.append(quality[rows, chosen].mean())
    return np.array(costs), np.array(qualities)


def plain_cost_weight_curve(quality, cost, quality_pred, cost_pred, weights, scale):
    """Route every query again at λ = 0 and just after every breakpoint."""
    rows = np.arange(quality.shape[0])
    probes = np.concatenate(
        ([0.0], (weights[1:-1] + weights[2:]) / 2, [2 * weights[-1]])
    )
    probes = probes[: len(weights)]
    costs, qualities = [], []
    for weight in probes:
        utility = quality_pred - weight * cost_pred / scale
        best = utility.max(axis=1, keepdims=True)
        tied_cost = np.where(utility == best, cost_pred, np.inf)
        chosen = tied_cost.argmin(axis=1)
        costs.append(cost[rows, chosen].mean())
        qualities.append(quality[rows, chosen].mean())
    return np.array(costs), np.array(qualities)


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(n_queries, n_models, growth, repeats):
    warnings.simplefilter("ignore")
    y, quality_pred, cost_pred = make_predictions(n_queries, n_models)
    quality = y["quality"].to_numpy()
    cost = y["cost"].to_numpy()
    scale = float(cost.mean(axis=0).max())

    print(
        f"# {n_queries:,} queries x {n_models} models, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"{'sweep':<12} {'points':>8} {'plain s':>9} {'curve s':>9} {'ratio':>8} "
        f"{'nauc s':>8} {'peak s':>8} {'qnc s':>8} {'max |diff|':>11}"
    )
    for sweep in ("cost_weight", "cap"):
        costs, qualities, thresholds = cost_quality_curve(
            y, quality_pred, cost_pred, sweep=sweep, cost_scale=scale
        )
        start = time.perf_counter()
        if sweep == "cap":
            plain_costs, plain_qualities = plain_cap_curve(
                quality, cost, quality_pred, cost_pred
            )
        else:
            plain_costs, plain_qualities = plain_cost_weight_curve(
                quality, cost, quality_pred, cost_pred, thresholds, scale
            )
        plain_seconds = time.perf_counter() - start
        difference = max(
            np.abs(plain_costs - costs).max(), np.abs(plain_qualities - qualities).max()
        )

        def curve(sweep=sweep):
            cost_quality_curve(
                y, quality_pred, cost_pred, sweep=sweep, cost_scale=scale
            )

        curve_seconds = median_time(curve, repeats)
        metric_seconds = [
            median_time(
                lambda m=metric, s=sweep: m(y, quality_pred, cost_pred, sweep=s),
                repeats,
            )
            for metric in (nauc_score, peak_score, qnc_score)
        ]
        print(
            f"{sweep:<12} {len(costs):>8,} {plain_seconds:>9.2f} {curve_seconds:>9.4f} "
            f"{plain_seconds / curve_seconds:>7.0f}x {metric_seconds[0]:>8.4f} "
            f"{metric_seconds[1]:>8.4f} {metric_seconds[2]:>8.4f} {difference:>11.1e}"
        )

    print()
    print(f"{'queries':>10} {'cost_weight s':>14} {'cap s':>8}")
    for size in growth:
        y, quality_pred, cost_pred = make_predictions(size, n_models, seed=1)
        times = [
            median_time(
                lambda s=sweep, y=y, q=quality_pred, c=cost_pred: cost_quality_curve(
                    y, q, c, sweep=s
                ),
                max(1, repeats // 2),
            )
            for sweep in ("cost_weight", "cap")
        ]
        print(f"{size:>10,} {times[0]:>14.3f} {times[1]:>8.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run"
    )
    args = parser.parse_args()
    if args.quick:
        run(1_000, 5, growth=[10_000], repeats=3)
    else:
        run(11_000, 10, growth=[110_000, 1_100_000], repeats=5)


if __name__ == "__main__":
    main()

"""Route a large query log on a local Dask cluster and in one process.

The queries are the 3,040 MATH-Vision questions repeated, each copy with one
word dropped at a seeded random position so that its TF-IDF features differ.
The router is a pipeline of TF-IDF, TruncatedSVD (48 components) and
``KNNRouter`` (20 neighbours), fitted on every fifth original question and
saved with skops.

Three runs route the same queries and must choose the same models:

- ``in memory``: one process builds every query in a pandas DataFrame and
  calls ``pipeline.predict`` once;
- ``dask, sync``: one process routes partition by partition with
  ``route_queries`` and the synchronous scheduler;
- ``dask, 2 workers``: ``route_queries`` on a ``LocalCluster`` of two worker
  processes with one thread each, on 127.0.0.1.

In the Dask runs, each partition is generated where it is routed, so no
process stores the whole log. Times include generating the queries. Peak
memory is the peak resident set size of each process (VmHWM, so Linux only);
the first two runs each start in a fresh process.

A second part times ``nauc_score`` on MATH-Vision outcomes repeated to
10,000, 100,000 and 1,000,000 queries, with predictions that are the true
outcomes plus seeded noise: ``skrouter.metrics.nauc_score`` on arrays in
memory against ``skrouter.dask.nauc_score`` on a persisted Dask DataFrame of 8
partitions on the same cluster. Both must give the same score to 1e-12.

Run::

    python benchmarks/bench_dask.py           # 200,000 queries; 1,000,000 rows
    python benchmarks/bench_dask.py --quick   # 20,000 queries; 100,000 rows
"""

import argparse
import logging
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd


def make_queries(start, stop):
    """Return queries ``start`` to ``stop - 1`` of the generated log."""
    from skrouter.datasets import load_math_vision

    questions = load_math_vision().X["question"].to_numpy()
    texts = []
    for number in range(start, stop):
        words = questions[number % questions.shape[0]].split()
        if len(words) > 3:
            rng = np.random.default_rng(number)
            del words[int(rng.integers(len(words)))]
        texts.append(" ".join(words))
    return pd.DataFrame(
        {"question": np.asarray(texts, dtype=object)},
        index=pd.RangeIndex(start, stop, name="query"),
    )


def fit_pipeline(path):
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    from skrouter.datasets import load_math_vision
    from skrouter.routers import KNNRouter

    data = load_math_vision()
    pipeline = make_pipeline(
        make_column_transformer((TfidfVectorizer(min_df=2), "question")),
        TruncatedSVD(n_components=48, random_state=0),
        KNNRouter(n_neighbors=20, cost_weight=0.5),
    )
    pipeline.fit(data.X.iloc[::5], data.y.iloc[::5])
    sio.dump(pipeline, path)
    return list(pipeline[-1].models_)


def peak_memory_mib():
    """Return the peak resident set size of this process (VmHWM), in MiB.

    Unlike ``ru_maxrss``, which Linux keeps across ``execve``, VmHWM starts
    afresh in a spawned process, so it does not include the parent's memory.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status; this needs Linux.")


def query_log(n_queries, partition_size):
    import dask.dataframe as dd

    bounds = [
        (start, min(start + partition_size, n_queries))
        for start in range(0, n_queries, partition_size)
    ]
    return dd.from_map(
        lambda bound: make_queries(*bound),
        bounds,
        meta=make_queries(0, 0),
        divisions=[start for start, _ in bounds] + [n_queries - 1],
    )


def run_in_memory(path, n_queries):
    import skops.io as sio

    from skrouter import get_trusted_types

    start = time.perf_counter()
    pipeline = sio.load(path, trusted=get_trusted_types())
    queries = make_queries(0, n_queries)
    choices = pipeline.predict(queries)
    seconds = time.perf_counter() - start
    codes = pd.Categorical(choices, categories=pipeline[-1].models_).codes
    return seconds, peak_memory_mib(), codes


def run_sync(path, n_queries, partition_size):
    from skrouter.dask import route_queries

    start = time.perf_counter()
    routes = route_queries(path, query_log(n_queries, partition_size))
    choices = routes["model"].compute(scheduler="sync")
    seconds = time.perf_counter() - start
    return seconds, peak_memory_mib(), choices.cat.codes.to_numpy()


def in_fresh_process(target, *args):
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(target, *args).result()


def local_cluster():
    import distributed

    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )


def run_cluster(path, n_queries, partition_size):
    import distributed

    from skrouter.dask import route_queries

    with local_cluster() as cluster, distributed.Client(cluster) as client:
        idle = client.run(peak_memory_mib)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            routes = route_queries(path, query_log(n_queries, partition_size))
            choices = routes["model"].compute()
            timings.append(time.perf_counter() - start)
        peaks = client.run(peak_memory_mib)
    return timings, idle, peaks, choices.cat.codes.to_numpy()


def make_outcome_table(start, stop):
    """Return rows ``start`` to ``stop - 1`` of outcomes and noisy predictions."""
    from skrouter.dask import flatten_outcomes
    from skrouter.datasets import load_math_vision

    y = load_math_vision().y
    models = list(y["quality"].columns)
    rows = np.arange(start, stop) % len(y)
    quality = y["quality"].to_numpy()[rows]
    cost = y["cost"].to_numpy()[rows]
    rng = np.random.default_rng(start)
    quality_pred = np.clip(quality + rng.normal(0, 0.3, quality.shape), 0, 1)
    cost_pred = cost * rng.lognormal(0, 0.3, cost.shape)

    table = flatten_outcomes(y).iloc[rows]
    table.index = pd.RangeIndex(start, stop)
    predictions = pd.DataFrame(
        np.hstack([quality_pred, cost_pred]),
        columns=[f"quality_pred__{name}" for name in models]
        + [f"cost_pred__{name}" for name in models],
        index=table.index,
    )
    return pd.concat([table, predictions], axis=1)


def run_metrics(sizes):
    import dask.dataframe as dd
    import distributed

    from skrouter import dask as skdask
    from skrouter import metrics
    from skrouter.dask import unflatten_outcomes

    rows = []
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        for n_queries in sizes:
            size = -(-n_queries // 8)
            bounds = [
                (start, min(start + size, n_queries))
                for start in range(0, n_queries, size)
            ]

            table = pd.concat([make_outcome_table(*bound) for bound in bounds])
            y = unflatten_outcomes(table)
            models = list(y["quality"].columns)
            quality_pred = table[[f"quality_pred__{m}" for m in models]].to_numpy()
            cost_pred = table[[f"cost_pred__{m}" for m in models]].to_numpy()
            start = time.perf_counter()
            expected = metrics.nauc_score(y, quality_pred, cost_pred)
            memory_seconds = time.perf_counter() - start
            del table, y, quality_pred, cost_pred

            frame = dd.from_map(
                lambda bound: make_outcome_table(*bound),
                bounds,
                meta=make_outcome_table(0, 0),
                divisions=[start for start, _ in bounds] + [n_queries - 1],
            )
            frame = client.persist(frame)
            distributed.wait(frame)
            start = time.perf_counter()
            score = skdask.nauc_score(frame, frame, frame)
            dask_seconds = time.perf_counter() - start
            del frame

            if abs(score - expected) > 1e-12:
                raise SystemExit(f"nAUC differs: {score!r} and {expected!r}.")
            rows.append((n_queries, memory_seconds, dask_seconds, score))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="route 20,000 queries instead of 200,000"
    )
    parser.add_argument(
        "--part",
        choices=["routing", "metrics", "all"],
        default="all",
        help="which part to run (default: all)",
    )
    parser.add_argument(
        "--partition-size",
        type=int,
        default=10_000,
        help="queries per partition (default: 10,000)",
    )
    args = parser.parse_args()
    n_queries = 20_000 if args.quick else 200_000
    if args.part in ("routing", "all"):
        report_routing(n_queries, args.partition_size)
    if args.part in ("metrics", "all"):
        sizes = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
        report_metrics(sizes)


def report_routing(n_queries, partition_size):
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "router.skops")
        models = fit_pipeline(path)
        print(
            f"Routing {n_queries:,} queries to {len(models)} models, partitions "
            f"of {partition_size:,}"
        )

        memory_seconds, memory_peak, memory_codes = in_fresh_process(
            run_in_memory, path, n_queries
        )
        sync_seconds, sync_peak, sync_codes = in_fresh_process(
            run_sync, path, n_queries, partition_size
        )
        timings, idle, peaks, cluster_codes = run_cluster(
            path, n_queries, partition_size
        )

    identical = np.array_equal(memory_codes, sync_codes) and np.array_equal(
        memory_codes, cluster_codes
    )
    print()
    print("| run | wall time (s) | queries/s | peak memory per process (MiB) |")
    print("|---|---:|---:|---|")
    print(
        f"| in memory, 1 process | {memory_seconds:.1f} | "
        f"{n_queries / memory_seconds:,.0f} | {memory_peak:,.0f} |"
    )
    print(
        f"| dask, sync scheduler, 1 process | {sync_seconds:.1f} | "
        f"{n_queries / sync_seconds:,.0f} | {sync_peak:,.0f} |"
    )
    worker_peaks = ", ".join(f"{peak:,.0f}" for peak in peaks.values())
    worker_idle = ", ".join(f"{peak:,.0f}" for peak in idle.values())
    for label, seconds in zip(("first", "second"), timings):
        print(
            f"| dask, 2 workers, {label} run | {seconds:.1f} | "
            f"{n_queries / seconds:,.0f} | workers {worker_peaks} "
            f"(idle {worker_idle}) |"
        )
    print()
    print(f"Same choices in all runs: {identical}")
    if not identical:
        raise SystemExit("The runs chose different models.")


def report_metrics(sizes):
    rows = run_metrics(sizes)
    print()
    print("nauc_score, 15 models, 8 partitions on 2 workers")
    print()
    print("| queries | in memory (s) | dask (s) | nAUC |")
    print("|---:|---:|---:|---:|")
    for n_queries, memory_seconds, dask_seconds, score in rows:
        print(
            f"| {n_queries:,} | {memory_seconds:.2f} | {dask_seconds:.2f} | "
            f"{score:.6f} |"
        )


if __name__ == "__main__":
    main()

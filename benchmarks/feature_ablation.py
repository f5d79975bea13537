"""Compare query features for routing on MATH-Vision, with real outcomes.

For each of 5 seeds, the 3,040 problems shipped with skrouter are split into
20 % training and 80 % test queries (``train_test_split(train_size=0.2)``).
Each router is fitted on the training queries with each feature set, and its
cost-quality curve on the test queries is summarized by nAUC, peak score (Ps)
and QNC. The table gives mean ± standard deviation over the seeds (QNC over
the seeds where some operating point reaches the best single model's
quality), with the best single model and the oracle on the same test
queries.

Feature sets:

- ``tfidf``: TF-IDF of the question (``sublinear_tf``, ``min_df=2``), then
  ``TruncatedSVD`` to 100 dimensions, both fitted on the training queries;
- ``minilm``: packaged all-MiniLM-L6-v2 sentence embeddings (384);
- ``image``: ``ImageStatsFeaturizer`` on the thumbnails (with the original
  image sizes), standardized on the training queries (10);
- ``minilm+image``: both, image block weighted by ``1 / sqrt(10)``
  (``make_offline_featurizer``'s ``image_weight="balanced"``);
- ``minilm+image w=1``: both, image block unweighted.

Embeddings and image statistics do not depend on the training queries, so
they are computed once for all problems (embeddings go through the cache in
``--memory``), and the per-split steps (TF-IDF, SVD, scaling) are fitted on
the training queries only. ``--check`` also fits the real
``make_offline_featurizer`` pipeline for one seed and checks that it gives
the same test features.

Run::

    python benchmarks/feature_ablation.py --check

docs/user_guide/feature_ablation.rst shows the table of one run and what it shows.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrouter.datasets import load_math_vision
from skrouter.features import (
    ImageStatsFeaturizer,
    SentenceEmbedder,
    make_offline_featurizer,
)
from skrouter.metrics import (
    nauc_score,
    peak_score,
    qnc_score,
    single_model_points,
)
from skrouter.routers import KMeansRouter, KNNRouter

try:
    from skrouter.routers import MFRouter
except ImportError:
    MFRouter = None

FEATURE_SETS = ("tfidf", "minilm", "image", "minilm+image", "minilm+image w=1")
BALANCED_WEIGHT = 1.0 / np.sqrt(10)


def make_routers(seed):
    routers = {
        "KNNRouter": KNNRouter(),
        "KMeansRouter": KMeansRouter(random_state=seed),
    }
    if MFRouter is not None:
        routers["MFRouter"] = MFRouter(random_state=seed)
    return routers


def split_features(name, train, test, questions, embeddings, image_stats, seed):
    """Return the (train, test) feature matrices of one feature set."""
    if name == "tfidf":
        text = make_pipeline(
            TfidfVectorizer(sublinear_tf=True, min_df=2),
            TruncatedSVD(n_components=100, random_state=seed),
        )
        return (
            text.fit_transform(questions[train]),
            text.transform(questions[test]),
        )
    if name == "minilm":
        return embeddings[train], embeddings[test]

    scaler = StandardScaler().fit(image_stats[train])
    image_train = scaler.transform(image_stats[train])
    image_test = scaler.transform(image_stats[test])
    if name == "image":
        return image_train, image_test
    weight = BALANCED_WEIGHT if name == "minilm+image" else 1.0
    return (
        np.hstack([embeddings[train], weight * image_train]),
        np.hstack([embeddings[test], weight * image_test]),
    )


def router_scores(y_test, quality, cost):
    return {
        "nAUC": nauc_score(y_test, quality, cost),
        "Ps": peak_score(y_test, quality, cost),
        "QNC": qnc_score(y_test, quality, cost),
    }


def baseline_scores(y_test):
    """Return the scores of the best single model and of the oracle."""
    points = single_model_points(y_test)
    best = points.sort_values(["quality", "cost"], ascending=[False, True]).index[0]
    models = list(y_test["quality"].columns)

    # A router that always picks the best model: it predicts quality 1 and
    # cost 0 for that model, 0 and 1 for the others.
    picks = np.asarray([model == best for model in models], dtype=float)
    quality = np.tile(picks, (len(y_test), 1))
    single = router_scores(y_test, quality, 1.0 - quality)
    single["model"] = best

    oracle = router_scores(y_test, y_test["quality"], y_test["cost"])
    return single, oracle


def summarize(records):
    """Return mean ± std over seeds; QNC over the seeds where it is finite.

    QNC is infinite when no operating point reaches the best single model's
    quality, so its mean is taken over the other seeds, and the cell states in
    how many seeds it was finite.
    """
    table = pd.DataFrame(records)
    rows = []
    for (router, features), group in table.groupby(["router", "features"], sort=False):
        row = {"router": router, "features": features}
        for metric in ("nAUC", "Ps"):
            row[metric] = _mean_std(group[metric])
        finite = group["QNC"][np.isfinite(group["QNC"])]
        reached = f"({len(finite)}/{len(group)} seeds)"
        row["QNC"] = (
            f"{_mean_std(finite)} {reached}" if len(finite) else f"inf {reached}"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_std(values):
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def to_markdown(table):
    lines = ["| " + " | ".join(table.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(value) for value in row) + " |")
    return "\n".join(lines)


def check_pipeline(X, seed, embeddings, image_stats, memory):
    """Check that make_offline_featurizer gives the precomputed features."""
    train, test = train_test_split(np.arange(len(X)), train_size=0.2, random_state=seed)
    featurizer = make_offline_featurizer(memory=memory).fit(X.iloc[train])
    features = featurizer.transform(X.iloc[test])
    _, expected = split_features(
        "minilm+image", train, test, None, embeddings, image_stats, seed
    )
    difference = float(np.abs(features - expected).max())
    print(f"make_offline_featurizer vs precomputed, max |difference|: {difference:.2e}")
    return difference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, default=5, help="number of train/test splits (seeds)"
    )
    parser.add_argument(
        "--memory",
        default=os.path.join(tempfile.gettempdir(), "skrouter-ablation-cache"),
        help="folder of the embedding cache (default: %(default)s)",
    )
    parser.add_argument("--out", help="Markdown file to write the tables to")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also fit make_offline_featurizer for seed 0 and compare",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*rows.*left out.*")

    X, y = load_math_vision(return_X_y=True)
    questions = X["question"].to_numpy()

    start = time.perf_counter()
    embeddings = SentenceEmbedder(memory=args.memory).fit_transform(X)
    embed_seconds = time.perf_counter() - start
    start = time.perf_counter()
    image_stats = ImageStatsFeaturizer().fit_transform(X)
    image_seconds = time.perf_counter() - start
    print(
        f"features of {len(X)} problems: MiniLM {embed_seconds:.1f} s "
        f"(cached entries are read, not embedded), image stats "
        f"{image_seconds:.1f} s",
        file=sys.stderr,
    )

    records, baselines = [], []
    for seed in range(args.seeds):
        train, test = train_test_split(
            np.arange(len(X)), train_size=0.2, random_state=seed
        )
        y_train, y_test = y.iloc[train], y.iloc[test]
        single, oracle = baseline_scores(y_test)
        baselines.append({"router": "best single model", "seed": seed, **single})
        baselines.append({"router": "oracle", "seed": seed, **oracle})

        for features in FEATURE_SETS:
            X_train, X_test = split_features(
                features, train, test, questions, embeddings, image_stats, seed
            )
            for name, router in make_routers(seed).items():
                router.fit(X_train, y_train)
                quality = router.predict_quality(X_test)
                cost = router.predict_cost(X_test)
                scores = router_scores(y_test, quality, cost)
                records.append(
                    {"router": name, "features": features, "seed": seed, **scores}
                )
        print(f"seed {seed} done", file=sys.stderr)

    table = summarize(records)
    baseline_table = summarize([{**record, "features": "-"} for record in baselines])
    best_models = sorted({record["model"] for record in baselines if "model" in record})
    table = pd.concat([table, baseline_table], ignore_index=True)

    header = (
        f"MATH-Vision, {len(X)} problems, {y['quality'].shape[1]} setups; "
        f"{args.seeds} seeds of a 20 % / 80 % train/test split; "
        f"mean ± std over seeds. Best single model (by test quality): "
        f"{', '.join(best_models)}. Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs."
    )
    print(header)
    print(to_markdown(table))

    difference = None
    if args.check:
        difference = check_pipeline(X, 0, embeddings, image_stats, args.memory)

    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            file.write(render_page(header, table, difference))
    return table


def render_page(header, table, difference):
    check = ""
    if difference is not None:
        check = (
            "\nFor seed 0, the features of `make_offline_featurizer()` fitted on "
            "the training queries differ from the precomputed ones by at most "
            f"{difference:.1e}.\n"
        )
    return f"""# Feature ablation on MATH-Vision

Produced by `python benchmarks/feature_ablation.py`.

{header}

{to_markdown(table)}
{check}"""


if __name__ == "__main__":
    main()

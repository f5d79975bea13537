"""The evaluation behind ``skrouter evaluate``: load, featurize, split, fit, score.

Queries are featurized once, all together, and then split into training and
test queries, as MMR-Bench does. The featurizers learn nothing from outcomes,
so no outcome of a test query reaches a router, but unsupervised steps (the
TF-IDF vocabulary and its SVD) do see the test queries' texts.
"""

import importlib.util
import inspect
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from ._outcomes import complete_rows
from .metrics import (
    cost_quality_curve,
    nauc_score,
    pareto_frontier,
    peak_score,
    qnc_score,
)
from .routers import KMeansRouter, KNNRouter, RandomRouter, SingleModelRouter

BUILTIN_DATA = ("math-vision", "mathvista", "routerbench")
FEATURE_KINDS = ("auto", "clip", "offline", "text-tfidf")
ROUTER_NAMES = ("knn", "kmeans", "mf")
SWEEPS = ("cost_weight", "cap")

# Router settings of the command. On MATH-Vision text embeddings with 20 %
# training queries (5 splits), k = 30 with a prior pseudo-count of 30 raised
# the routed accuracy of KNNRouter from 0.154 to 0.161.
KNN_NEIGHBORS = 30
KNN_PRIOR_STRENGTH = 30.0
KMEANS_CLUSTERS = 16

TFIDF_COMPONENTS = 128

_VERSIONED_PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "torch",
    "open_clip_torch",
    "sentence-transformers",
    "matplotlib",
)


class EvaluationError(Exception):
    """A problem with the user's request or data, reported as one line."""


@dataclass
class RoutingData:
    """Queries and outcomes, with the columns that featurizers read."""

    name: str
    X: pd.DataFrame
    y: pd.DataFrame
    text_column: str
    image_column: str | None


@dataclass
class FeatureChoice:
    """The featurizer that will run, and why it was chosen."""

    kind: str
    requested: str
    transformer: object
    description: str
    reason: str


class Progress:
    """Progress lines on stderr, silenced by ``--quiet``."""

    def __init__(self, enabled=True, stream=None):
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream

    def log(self, message):
        if self.enabled:
            print(f"[skrouter] {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, message):
        """Log ``message``, run the block, then log how long it took."""
        self.log(f"{message} ...")
        start = time.perf_counter()
        yield
        self.log(f"{message}: done in {time.perf_counter() - start:.1f} s")


# -- data ------------------------------------------------------------------


def load_data(data, *, data_home=None, image_root=None):
    """Load a built-in data set by name, or an MMR-Bench CSV by path.

    Raises FileNotFoundError or ValueError, from the loaders, for missing
    files and invalid contents.
    """
    from . import datasets

    if data == "math-vision":
        X, y = datasets.load_math_vision(data_home, return_X_y=True)
        return RoutingData(data, X, y, "question", "image")
    if data == "mathvista":
        X, y = datasets.load_mathvista(data_home, return_X_y=True)
        return RoutingData(data, X, y, "question", None)
    if data == "routerbench":
        X, y = datasets.load_routerbench(data_home, split=None, return_X_y=True)
        return RoutingData(data, X, y, "prompt", None)

    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(
            f"--data {data!r} is neither a built-in data set "
            f"({', '.join(BUILTIN_DATA)}) nor an existing CSV file."
        )
    X, y = datasets.read_mmr_csv(path, image_root=image_root)
    image_column = "image" if X["image"].notna().any() else None
    return RoutingData(str(path), X, y, "question", image_column)


def subsample(data, max_queries, seed):
    """Keep ``max_queries`` queries drawn at random, in their original order."""
    if max_queries is None or max_queries >= len(data.X):
        return data
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(data.X), size=max_queries, replace=False))
    return RoutingData(
        data.name,
        data.X.iloc[keep].reset_index(drop=True),
        data.y.iloc[keep].reset_index(drop=True),
        data.text_column,
        data.image_column,
    )


# -- features ----------------------------------------------------------------


def _fill_missing_text(texts):
    """Turn missing texts into empty strings, as TfidfVectorizer needs str."""
    return pd.Series(texts).fillna("").astype(str).to_numpy()


def make_tfidf_featurizer(data, seed):
    """Build TF-IDF of the query texts reduced by a truncated SVD.

    The SVD keeps at most 128 components, fewer when the vocabulary or the
    number of queries is smaller.
    """
    texts = _fill_missing_text(data.X[data.text_column])
    vocabulary_size = len(_tfidf().fit(texts).vocabulary_)
    n_components = max(1, min(TFIDF_COMPONENTS, vocabulary_size - 1, len(texts) - 1))
    text_steps = Pipeline(
        [
            ("fill", FunctionTransformer(_fill_missing_text)),
            ("tfidf", _tfidf()),
            ("svd", TruncatedSVD(n_components=n_components, random_state=seed)),
        ]
    )
    return ColumnTransformer([("text", text_steps, data.text_column)])


def _tfidf():
    return TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))


def make_clip_featurizer(
    data, *, model_name, pretrained, image_root, verbose, memory=None
):
    """Build CLIP text and image embeddings fused by AdaptiveFusion."""
    from .features import AdaptiveFusion, CLIPFeaturizer

    clip = CLIPFeaturizer(
        text_column=data.text_column,
        image_column=data.image_column,
        model_name=model_name,
        pretrained=pretrained,
        image_root=image_root,
        memory=memory,
        verbose=verbose,
    )
    return Pipeline([("clip", clip), ("fusion", AdaptiveFusion())])


def make_offline_featurizer(data, *, image_root, verbose, memory=None):
    """Build the package's offline text and image featurizer.

    Raises ImportError when the package or its optional dependencies do not
    provide it.
    """
    from . import features

    factory = getattr(features, "make_offline_featurizer", None)
    if factory is None:
        raise ImportError(
            "skrouter.features.make_offline_featurizer is not available in this "
            "version of skrouter."
        )
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ImportError(
            "the offline featurizer needs sentence-transformers; install it with: "
            'pip install "skrouter[text]"'
        )

    # Pass only the settings that the factory accepts.
    settings = {
        "text_column": data.text_column,
        "image_column": data.image_column,
        "image_root": image_root,
        "memory": memory,
        "verbose": verbose,
    }
    accepted = inspect.signature(factory).parameters
    return factory(**{key: value for key, value in settings.items() if key in accepted})


def clip_weights_available(featurizer, data):
    """Return whether CLIP loads here without any download.

    The probe embeds one query with ``HF_HUB_OFFLINE`` set, so weights that
    are not in the local cache fail at once instead of after network retries.
    """
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        featurizer.fit_transform(data.X.iloc[:1])
    except (ImportError, OSError, RuntimeError):
        return False
    finally:
        if saved is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = saved
    return True


def choose_features(
    kind,
    data,
    *,
    clip_model,
    clip_pretrained,
    image_root,
    seed,
    progress,
    memory=None,
):
    """Pick the featurizer for ``--features``; ``auto`` falls back in order.

    ``auto`` takes CLIP when its weights load without a download, else the
    offline featurizer when it is importable with its optional dependencies,
    else TF-IDF.
    """
    clip_description = f"CLIP {clip_model} ({clip_pretrained}) + AdaptiveFusion"
    if kind == "clip":
        featurizer = make_clip_featurizer(
            data,
            model_name=clip_model,
            pretrained=clip_pretrained,
            image_root=image_root,
            verbose=int(progress.enabled),
            memory=memory,
        )
        return FeatureChoice("clip", kind, featurizer, clip_description, "requested")
    if kind == "offline":
        try:
            featurizer = make_offline_featurizer(
                data,
                image_root=image_root,
                verbose=int(progress.enabled),
                memory=memory,
            )
        except ImportError as exc:
            raise EvaluationError(f"--features offline is unavailable: {exc}") from exc
        return FeatureChoice(
            "offline", kind, featurizer, _describe(featurizer), "requested"
        )
    if kind == "text-tfidf":
        return FeatureChoice(
            "text-tfidf",
            kind,
            make_tfidf_featurizer(data, seed),
            _TFIDF_DESCRIPTION,
            "requested",
        )

    reasons = []
    featurizer = make_clip_featurizer(
        data,
        model_name=clip_model,
        pretrained=clip_pretrained,
        image_root=image_root,
        verbose=0,
        memory=memory,
    )
    with progress.step(f"checking whether CLIP {clip_model} ({clip_pretrained}) loads"):
        clip_ok = clip_weights_available(featurizer, data)
    if clip_ok:
        return FeatureChoice(
            "clip", kind, featurizer, clip_description, "CLIP weights load locally"
        )
    reasons.append(f"CLIP weights {clip_model} ({clip_pretrained}) not found locally")

    try:
        featurizer = make_offline_featurizer(
            data,
            image_root=image_root,
            verbose=int(progress.enabled),
            memory=memory,
        )
    except ImportError as exc:
        reasons.append(f"offline featurizer unavailable ({exc})")
    else:
        return FeatureChoice(
            "offline", kind, featurizer, _describe(featurizer), "; ".join(reasons)
        )

    return FeatureChoice(
        "text-tfidf",
        kind,
        make_tfidf_featurizer(data, seed),
        _TFIDF_DESCRIPTION,
        "; ".join(reasons),
    )


_TFIDF_DESCRIPTION = "TF-IDF of the question text (words and word pairs) + TruncatedSVD"


def _describe(featurizer):
    return type(featurizer).__name__


def featurize(choice, data, *, progress, seed=0):
    """Fit the featurizer on all queries and return their features.

    An ``auto`` choice of the offline featurizer falls back to TF-IDF when
    its model cannot be loaded here; ``choice`` is updated in place.
    """
    try:
        with progress.step(f"featurizing {len(data.X):,} queries with {choice.kind}"):
            features = choice.transformer.fit_transform(data.X)
    except (ImportError, OSError) as exc:
        if choice.requested != "auto" or choice.kind != "offline":
            raise EvaluationError(
                f"--features {choice.kind} failed: {_for_the_command_line(exc)}"
            ) from exc
        choice.reason += f"; offline featurizer failed to load ({_one_line(exc)})"
        choice.kind = "text-tfidf"
        choice.transformer = make_tfidf_featurizer(data, seed)
        choice.description = _TFIDF_DESCRIPTION
        progress.log(f"falling back to text-tfidf features: {choice.reason}")
        with progress.step(f"featurizing {len(data.X):,} queries with text-tfidf"):
            features = choice.transformer.fit_transform(data.X)
    except ValueError as exc:
        # Images that cannot be read are a data problem, not a bug.
        from .features import ImageReadError

        if isinstance(exc, ImageReadError):
            raise EvaluationError(_one_line(exc)) from exc
        raise

    if hasattr(features, "toarray"):
        features = features.toarray()
    return np.asarray(features, dtype=np.float64)


def _one_line(exc):
    return " ".join(str(exc).split())


_HOW_TO_PASS_LOCAL_WEIGHTS_HERE = (
    "Pass a downloaded checkpoint with --clip-pretrained /path/to/weights.pt "
    "(or .safetensors), or a folder holding open_clip_config.json and the "
    "weights with --clip-model local-dir:/path/to/folder, or use "
    "--features auto to fall back to features that need no download."
)


def _for_the_command_line(exc):
    """Return the message of ``exc`` with the CLI options in place of Python's."""
    from .features._clip import _HOW_TO_PASS_LOCAL_WEIGHTS

    return _one_line(exc).replace(
        " ".join(_HOW_TO_PASS_LOCAL_WEIGHTS.split()), _HOW_TO_PASS_LOCAL_WEIGHTS_HERE
    )


# -- routers -----------------------------------------------------------------


def mf_router_class():
    """Return MFRouter when this version of skrouter has it, else None."""
    from . import routers

    return getattr(routers, "MFRouter", None)


def default_router_names():
    """Return ``knn, kmeans`` and ``mf`` when MFRouter is importable."""
    names = ["knn", "kmeans"]
    if mf_router_class() is not None:
        names.append("mf")
    return names


def make_router(name, n_train, seed):
    """Build a router of the command by name, sized for ``n_train`` queries."""
    if name == "knn":
        return KNNRouter(
            n_neighbors=min(KNN_NEIGHBORS, n_train),
            prior_strength=KNN_PRIOR_STRENGTH,
        )
    if name == "kmeans":
        return KMeansRouter(n_clusters=min(KMEANS_CLUSTERS, n_train), random_state=seed)
    if name == "mf":
        router_class = mf_router_class()
        if router_class is None:
            raise EvaluationError(
                "--routers mf needs skrouter.routers.MFRouter, which this version "
                "of skrouter does not have."
            )
        router = router_class()
        if "random_state" in router.get_params():
            router.set_params(random_state=seed)
        return router
    raise EvaluationError(
        f"--routers: unknown router {name!r}; choose from {', '.join(ROUTER_NAMES)}."
    )


# -- evaluation ----------------------------------------------------------------


@dataclass
class Evaluation:
    """Scores of every router and reference on the test queries."""

    rows: list
    predictions: dict
    y_test: pd.DataFrame
    n_train: int
    n_test: int
    n_test_complete: int
    router_params: dict


def score_predictions(y_true, quality_pred, cost_pred, sweep):
    """Compute nAUC over both cost ranges, Ps, QNC and the mean cost at Ps."""
    costs, qualities, _ = cost_quality_curve(
        y_true, quality_pred, cost_pred, sweep=sweep
    )
    frontier_costs, _ = pareto_frontier(costs, qualities)
    return {
        "nauc_models": nauc_score(
            y_true, quality_pred, cost_pred, sweep=sweep, cost_range="models"
        ),
        "nauc_frontier": nauc_score(
            y_true, quality_pred, cost_pred, sweep=sweep, cost_range="frontier"
        ),
        "peak_score": peak_score(y_true, quality_pred, cost_pred, sweep=sweep),
        "qnc": qnc_score(y_true, quality_pred, cost_pred, sweep=sweep),
        # The frontier's qualities increase, so its last point is the
        # cheapest one that reaches the peak.
        "cost_at_peak": float(frontier_costs[-1]),
    }


def evaluate(features, y, router_names, *, train_size, seed, sweep, progress):
    """Split, fit every router and reference on the training queries, score.

    Test queries with a missing outcome are left out of the scores, because
    every metric needs complete rows.
    """
    indices = np.arange(len(y))
    train, test = train_test_split(indices, train_size=train_size, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    X_train, y_train = features[train], y.iloc[train]
    X_test, y_test = complete_rows(features[test], y.iloc[test])
    if len(y_test) == 0:
        raise EvaluationError(
            "no test query has an observed outcome for every model, so no metric "
            "can be computed; pass a larger data set or a smaller --train-size."
        )
    progress.log(
        f"{len(train):,} training queries, {len(test):,} test queries "
        f"({len(y_test):,} with every outcome observed)"
    )

    entries = [
        (name, "router", make_router(name, len(train), seed)) for name in router_names
    ]
    entries += [
        ("best single model", "reference", SingleModelRouter("best")),
        ("cheapest model", "reference", SingleModelRouter("cheapest")),
        ("random", "reference", RandomRouter(random_state=seed)),
    ]

    rows, predictions, router_params = [], {}, {}
    for name, kind, router in entries:
        with progress.step(f"fitting {name}"):
            router.fit(X_train, y_train)
        if isinstance(router, SingleModelRouter):
            name = f"{name} ({router.model_})"
        quality_pred = router.predict_quality(X_test)
        cost_pred = router.predict_cost(X_test)
        scores = score_predictions(y_test, quality_pred, cost_pred, sweep)
        rows.append({"name": name, "kind": kind, **scores})
        predictions[name] = (kind, quality_pred, cost_pred)
        router_params[name] = {
            "class": type(router).__name__,
            **{key: _jsonable(value) for key, value in router.get_params().items()},
        }

    oracle_quality = y_test["quality"].to_numpy(dtype=float)
    oracle_cost = y_test["cost"].to_numpy(dtype=float)
    scores = score_predictions(y_test, oracle_quality, oracle_cost, sweep)
    rows.insert(len(router_names), {"name": "oracle", "kind": "reference", **scores})

    return Evaluation(
        rows=rows,
        predictions=predictions,
        y_test=y_test,
        n_train=len(train),
        n_test=len(test),
        n_test_complete=len(y_test),
        router_params=router_params,
    )


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def package_versions():
    """Return the versions of skrouter and the packages its results depend on."""
    from . import __version__

    versions = {"python": sys.version.split()[0], "skrouter": __version__}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions

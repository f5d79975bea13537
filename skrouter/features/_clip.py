"""CLIP text and image embeddings of queries, with open_clip."""

import hashlib
import json
import numbers
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state

from .._params import warn
from ._cache import EmbeddingCache, content_key, hash_identity
from ._images import (
    DEFAULT_MAX_SIDE,
    ImageReadError,
    cell_digest,
    is_missing,
    load_image,
)

__all__ = ["CLIPFeaturizer"]

_LOCAL_DIR_PREFIX = "local-dir:"
_HF_HUB_PREFIX = "hf-hub:"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")

_HOW_TO_PASS_LOCAL_WEIGHTS = (
    "Pass a downloaded checkpoint as pretrained='/path/to/weights.pt' (or "
    ".safetensors), or a folder holding open_clip_config.json and the weights "
    "as model_name='local-dir:/path/to/folder', or pretrained=None for random "
    "weights in tests."
)

# Weights digests by (path, size, modification time), so that a checkpoint of
# several hundred MB is hashed once per process, not at every transform.
_file_digests = {}


def _file_digest(path):
    path = Path(path).resolve()
    stat = path.stat()
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _file_digests:
        hasher = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                hasher.update(block)
        _file_digests[memo_key] = hasher.hexdigest()
    return _file_digests[memo_key]


def _hub_offline():
    """Return True when huggingface_hub is set to make no network calls."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().upper() in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _cached_tag_checkpoint(tag_config):
    """Return the local file of a pretrained tag's weights, or None.

    Looks in the places where open_clip 3.x downloads them: the Hugging Face
    hub cache and ``~/.cache/clip``. Makes no network call.
    """
    if "file" in tag_config:
        return tag_config["file"]

    hub_entry = tag_config.get("hf_hub", "")
    if hub_entry:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub_entry)
        candidates = [filename] if filename else []
        if not filename or filename == "open_clip_pytorch_model.bin":
            candidates = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        elif filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            path = try_to_load_from_cache(repo_id, candidate)
            if isinstance(path, str):
                return path

    url = tag_config.get("url", "")
    if url:
        path = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if path.is_file():
            return str(path)
    return None


def _download_tag_checkpoint(model_name, tag, tag_config):
    """Download a tag's weights and return the local file.

    Raises OSError, with the ways to pass local weights, when the download
    fails or huggingface_hub is offline.
    """
    where = f"pretrained={tag!r} of model_name={model_name!r}"
    if _hub_offline():
        raise OSError(
            f"The weights of {where} are not in the local cache, and "
            f"HF_HUB_OFFLINE is set, so they cannot be downloaded. "
            f"{_HOW_TO_PASS_LOCAL_WEIGHTS}"
        )

    hub_entry = tag_config.get("hf_hub", "")
    try:
        if hub_entry:
            from huggingface_hub import hf_hub_download

            repo_id, filename = os.path.split(hub_entry)
            return hf_hub_download(
                repo_id, filename or "open_clip_pytorch_model.bin", etag_timeout=5
            )

        # NOTE: open_clip downloads URL-only tags with urllib and no timeout,
        # so on a network that drops packets this call can wait for minutes.
        from open_clip.pretrained import download_pretrained

        return download_pretrained(tag_config, prefer_hf_hub=False)
    except Exception as exc:
        reason = str(exc).strip().rstrip(".")
        raise OSError(
            f"Failed to download the weights of {where}: {reason}. "
            f"{_HOW_TO_PASS_LOCAL_WEIGHTS}"
        ) from exc


def _local_dir_weights(folder):
    return sorted(
        path
        for path in Path(folder).iterdir()
        if path.is_file() and path.suffix in _WEIGHT_SUFFIXES
    )


class _LoadedModel:
    """An open_clip model with its tokenizer and image preprocessing."""

    def __init__(self, model, tokenizer, preprocess, device):
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.device = device

    def encode_texts(self, texts):
        import torch

        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            embedding = self.model.encode_text(tokens)
        return embedding.float().cpu().numpy()

    def encode_images(self, images):
        import torch

        pixels = torch.stack([self.preprocess(image) for image in images])
        with torch.inference_mode():
            embedding = self.model.encode_image(pixels.to(self.device))
        return embedding.float().cpu().numpy()


class CLIPFeaturizer(TransformerMixin, BaseEstimator):
    """Embed the text and the image of each query with a CLIP model.

    Each query becomes ``[text_embedding, image_embedding]``, two halves of the
    model's embedding size ``d``. A missing image gives a zero image half, and
    a missing or empty text of a query with an image gives a zero text half,
    so text-only and image-only queries flow through the same pipeline.

    The transformer learns nothing from data: ``fit`` only checks the
    parameters and records the input columns and the embedding size, and
    ``transform`` works without it.

    Parameters
    ----------
    text_column : str or None, default="question"
        Column of ``X`` with the query texts. None embeds no text (every text
        half is zero).
    image_column : str or None, default="image"
        Column of ``X`` with the images. Each cell is a path (relative paths
        are resolved against ``image_root``), a ``PIL.Image.Image``, encoded
        bytes, a mapping with ``"bytes"`` or ``"path"``, or a missing value
        (None, NaN or ""). None embeds no images.
    model_name : str, default="ViT-B-32"
        An open_clip architecture name, or ``"local-dir:<folder>"`` for a
        folder with ``open_clip_config.json`` and a weights file (then
        ``pretrained`` is ignored), or ``"hf-hub:<repo>"``.
    pretrained : str or None, default="openai"
        A pretrained tag of ``model_name`` (see
        ``open_clip.list_pretrained_tags_by_model``), or the path of a weights
        file. A tag is read from the local cache, and downloaded only when it
        is not there and ``HF_HUB_OFFLINE`` is not set. None builds random
        weights seeded by ``random_state``, with a warning, for tests.
    image_root : str or path-like, default=None
        Folder that relative image paths are resolved against.
    normalize : bool, default=False
        Whether to L2-normalize each half. Leave it off in front of
        :class:`AdaptiveFusion`, whose ``confidence="norm"`` reads the raw
        norms.
    batch_size : int, default=32
        Number of texts or images per model call.
    device : str, default="cpu"
        Torch device of the model, such as ``"cuda"``.
    memory : str, path-like, joblib.Memory or None, default=None
        Folder of the embedding cache, as in scikit-learn's ``Pipeline``.
        Each text and image is stored under a hash of the model identity and
        of its content, so later transforms embed only what is new. None
        disables the cache.
    on_image_error : {"raise", "missing"}, default="raise"
        What to do with an image file that is missing or cannot be decoded:
        raise an error naming the row and the path, or treat the image as
        missing.
    random_state : int, RandomState instance or None, default=None
        Seed of the random weights when ``pretrained=None``. Only an int makes
        such features reproducible and cacheable.
    verbose : int, default=0
        Print progress to stderr when positive.

    Attributes
    ----------
    embedding_dim_ : int
        Size ``d`` of each half. The output has ``2 * d`` columns.
    n_features_in_ : int
        Number of columns of ``X`` during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Column names of ``X`` during ``fit``.

    See Also
    --------
    AdaptiveFusion : Fuse the two halves into one vector per query.

    Notes
    -----
    The model is loaded on the first call that needs it, and is not part of
    the pickled or skops state: an unpickled featurizer loads it again. When
    every text and image of a call is in the cache, the model is not loaded.

    Images are converted to RGB (transparent pixels become white), turned
    upright from their EXIF orientation, and shrunk to at most 1024 pixels on
    the longer side before the model's own preprocessing. Texts longer than
    the model's context are truncated by its tokenizer.

    Examples
    --------
    >>> import pandas as pd
    >>> from PIL import Image
    >>> from skrouter.features import CLIPFeaturizer
    >>> from skrouter.features._tiny_clip import register_tiny_clip
    >>> queries = pd.DataFrame({
    ...     "question": ["What is the area?", None],
    ...     "image": [None, Image.new("RGB", (64, 48), "white")],
    ... })
    >>> featurizer = CLIPFeaturizer(
    ...     model_name=register_tiny_clip(), pretrained=None, random_state=0
    ... )
    >>> features = featurizer.fit_transform(queries)
    >>> features.shape
    (2, 32)
    >>> featurizer.get_feature_names_out()[[0, 16]]
    array(['text0', 'image0'], dtype=object)
    """

    def __init__(
        self,
        text_column="question",
        image_column="image",
        model_name="ViT-B-32",
        pretrained="openai",
        image_root=None,
        normalize=False,
        batch_size=32,
        device="cpu",
        memory=None,
        on_image_error="raise",
        random_state=None,
        verbose=0,
    ):
        self.text_column = text_column
        self.image_column = image_column
        self.model_name = model_name
        self.pretrained = pretrained
        self.image_root = image_root
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.memory = memory
        self.on_image_error = on_image_error
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn API ---------------------------------------------------

    def fit(self, X, y=None):
        """Check the parameters and record the input columns.

        Parameters
        ----------
        X : pandas.DataFrame
            Queries, with the columns ``text_column`` and ``image_column``.
        y : None
            Ignored.

        Returns
        -------
        self : CLIPFeaturizer
            The fitted featurizer.
        """
        self._validate_params()
        self._check_columns(X)

        self.n_features_in_ = X.shape[1]
        if all(isinstance(column, str) for column in X.columns):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.embedding_dim_ = self._embedding_dim()
        return self

    def transform(self, X):
        """Embed the text and the image of each query.

        Parameters
        ----------
        X : pandas.DataFrame
            Queries, with the columns ``text_column`` and ``image_column``.

        Returns
        -------
        features : ndarray of shape (n_queries, 2 * embedding_dim), float32
            Text embedding, then image embedding. A missing half is zero.

        Raises
        ------
        ValueError
            If a query has neither a text nor an image.
        ImageReadError
            If an image cannot be read and ``on_image_error="raise"``.
        """
        self._validate_params()
        self._check_columns(X)
        n_rows = len(X)
        rows = list(X.index)
        texts = self._column_values(X, self.text_column, n_rows)
        images = self._column_values(X, self.image_column, n_rows)

        namespace = self._cache_namespace()
        cache = EmbeddingCache.from_memory(self.memory, namespace)
        dim = self._embedding_dim()

        text_keys = self._text_keys(texts)
        image_keys, image_sources_failed = self._image_keys(images, rows)

        for position in range(n_rows):
            if text_keys[position] is None and image_keys[position] is None:
                reason = (
                    "its image could not be read"
                    if image_sources_failed[position]
                    else "it has neither"
                )
                raise ValueError(
                    f"Row {rows[position]!r} of X has no text and no image "
                    f"({reason}). Every query needs a non-empty "
                    f"'{self.text_column}' or '{self.image_column}'."
                )

        text_half = cache.embed(
            text_keys, lambda positions: self._encode_texts(texts, positions), dim
        )
        image_half = cache.embed(
            image_keys,
            lambda positions: self._encode_images(images, rows, positions, dim),
            dim,
        )

        # Images that turned out undecodable with on_image_error="missing".
        undecodable = np.isnan(image_half).any(axis=1)
        image_half[undecodable] = 0.0
        for position in np.flatnonzero(undecodable):
            if text_keys[position] is None:
                raise ValueError(
                    f"Row {rows[position]!r} of X has no text and no image "
                    "(its image could not be decoded). Every query needs a "
                    f"non-empty '{self.text_column}' or '{self.image_column}'."
                )

        if self.normalize:
            text_half = _normalize_rows(text_half)
            image_half = _normalize_rows(image_half)
        return np.hstack([text_half, image_half]).astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Return the output column names, ``text0..`` then ``image0..``.

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
        names = [f"text{i}" for i in range(dim)] + [f"image{i}" for i in range(dim)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        tags.non_deterministic = self.pretrained is None and not isinstance(
            self.random_state, numbers.Integral
        )
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_loaded_model", None)
        return state

    # -- parameters and input -----------------------------------------------

    def _validate_params(self):
        if self.text_column is None and self.image_column is None:
            raise ValueError(
                "Invalid text_column=None with image_column=None: at least one "
                "of them must name a column of X."
            )
        if not isinstance(self.model_name, str) or not self.model_name:
            raise ValueError(
                f"Invalid model_name={self.model_name!r}: expected an open_clip "
                "architecture name, 'local-dir:<folder>' or 'hf-hub:<repo>'."
            )
        if self.pretrained is not None and not isinstance(
            self.pretrained, (str, os.PathLike)
        ):
            raise ValueError(
                f"Invalid pretrained={self.pretrained!r}: expected a tag, a "
                "weights file path or None."
            )
        if (
            not isinstance(self.batch_size, numbers.Integral)
            or isinstance(self.batch_size, bool)
            or self.batch_size < 1
        ):
            raise ValueError(
                f"Invalid batch_size={self.batch_size!r}: expected an int >= 1."
            )
        if self.on_image_error not in ("raise", "missing"):
            raise ValueError(
                f"Invalid on_image_error={self.on_image_error!r}: expected "
                "'raise' or 'missing'."
            )
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ValueError(
                f"Invalid normalize={self.normalize!r}: expected True or False."
            )

    def _check_columns(self, X):
        if not hasattr(X, "columns") or not hasattr(X, "index"):
            raise TypeError(
                "X must be a pandas DataFrame with the columns "
                f"text_column={self.text_column!r} and "
                f"image_column={self.image_column!r}; got {type(X).__name__}."
            )
        for parameter in ("text_column", "image_column"):
            column = getattr(self, parameter)
            if column is not None and column not in X.columns:
                raise ValueError(
                    f"Column {parameter}={column!r} not found in X, which has "
                    f"the columns {list(X.columns)}."
                )

    @staticmethod
    def _column_values(X, column, n_rows):
        if column is None:
            return [None] * n_rows
        return X[column].tolist()

    # -- model identity and loading ------------------------------------------

    def _model_source(self):
        """Return how the weights are given: schema, tag config and file."""
        import open_clip

        if self.model_name.startswith(_LOCAL_DIR_PREFIX):
            return "local-dir", None, None
        if self.model_name.startswith(_HF_HUB_PREFIX):
            return "hf-hub", None, None
        if self.pretrained is None:
            return "random", None, None

        pretrained = os.fspath(self.pretrained)
        tag_config = open_clip.get_pretrained_cfg(self.model_name, pretrained)
        if tag_config:
            return "tag", tag_config, None
        if os.path.isfile(pretrained):
            return "file", None, pretrained

        tags = open_clip.list_pretrained_tags_by_model(self.model_name)
        raise ValueError(
            f"Invalid pretrained={pretrained!r}: it is neither a pretrained tag "
            f"of model_name={self.model_name!r} (known tags: {tags}) nor an "
            f"existing weights file. {_HOW_TO_PASS_LOCAL_WEIGHTS}"
        )

    def _local_dir(self):
        folder = Path(self.model_name[len(_LOCAL_DIR_PREFIX) :]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise FileNotFoundError(
                f"Invalid model_name={self.model_name!r}: the folder must "
                "contain open_clip_config.json and a weights file "
                f"({', '.join(_WEIGHT_SUFFIXES)})."
            )
        return folder

    def _model_config(self):
        """Return the architecture config without loading weights, or None."""
        import open_clip

        if self.model_name.startswith(_LOCAL_DIR_PREFIX):
            config = json.loads(
                (self._local_dir() / "open_clip_config.json").read_text()
            )
            return config.get("model_cfg", config)
        if self.model_name.startswith(_HF_HUB_PREFIX):
            return None
        return open_clip.get_model_config(self.model_name)

    def _embedding_dim(self):
        config = self._model_config()
        if config is not None and "embed_dim" in config:
            return int(config["embed_dim"])
        return int(self._load_model().model.text_projection.shape[-1])

    def _cache_namespace(self):
        """Return the digest of everything that fixes the embeddings, or None.

        None, when the weights are random without an int seed, turns the cache
        off for this featurizer.
        """
        if self.memory is None:
            return None
        kind, _, weights_file = self._model_source()
        identity = {
            "featurizer": "CLIPFeaturizer",
            "model_name": self.model_name,
            "source": kind,
            "max_side": DEFAULT_MAX_SIDE,
        }
        if kind == "local-dir":
            folder = self._local_dir()
            identity["config"] = _file_digest(folder / "open_clip_config.json")
            identity["weights"] = [
                (path.name, _file_digest(path)) for path in _local_dir_weights(folder)
            ]
        elif kind == "hf-hub":
            # NOTE: the hub revision is not part of the identity, so a repo
            # updated in place keeps serving the old cached vectors.
            pass
        elif kind == "random":
            if not isinstance(self.random_state, numbers.Integral):
                return None
            identity["config"] = self._model_config()
            identity["random_state"] = int(self.random_state)
        elif kind == "tag":
            identity["config"] = self._model_config()
            identity["pretrained"] = os.fspath(self.pretrained)
        else:
            identity["config"] = self._model_config()
            identity["weights"] = _file_digest(weights_file)
        return hash_identity(identity)

    def _load_model(self):
        """Return the model, loading it on first use."""
        loaded = getattr(self, "_loaded_model", None)
        if loaded is not None:
            return loaded

        import open_clip
        import torch
        from open_clip.transform import PreprocessCfg, image_transform_v2

        if self.verbose:
            print(f"[CLIPFeaturizer] loading {self.model_name}", file=sys.stderr)

        kind, tag_config, weights_file = self._model_source()
        if kind == "random":
            warn(
                f"CLIPFeaturizer builds {self.model_name} with random weights "
                "because pretrained=None: its features carry no meaning. Use "
                "it only for tests.",
            )
            if isinstance(self.random_state, numbers.Integral):
                seed = int(self.random_state)
            else:
                random_state = check_random_state(self.random_state)
                seed = int(random_state.randint(np.iinfo(np.int32).max))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = open_clip.create_model(
                    self.model_name,
                    pretrained=None,
                    pretrained_image=False,
                    pretrained_text=False,
                )
        elif kind == "tag":
            checkpoint = _cached_tag_checkpoint(tag_config)
            if checkpoint is None:
                checkpoint = _download_tag_checkpoint(
                    self.model_name, self.pretrained, tag_config
                )
            preprocess_overrides = {
                key: tag_config[key]
                for key in ("mean", "std", "interpolation", "resize_mode")
                if key in tag_config
            }
            model = open_clip.create_model(
                self.model_name,
                pretrained=checkpoint,
                force_quick_gelu=bool(tag_config.get("quick_gelu", False)),
                force_preprocess_cfg=preprocess_overrides,
            )
        elif kind == "local-dir":
            self._local_dir()
            model = open_clip.create_model(self.model_name)
        else:
            model = open_clip.create_model(self.model_name, pretrained=weights_file)

        model = model.to(self.device).eval()
        tokenizer = open_clip.get_tokenizer(self.model_name)
        preprocess = image_transform_v2(
            PreprocessCfg(**model.visual.preprocess_cfg), is_train=False
        )
        self._loaded_model = _LoadedModel(model, tokenizer, preprocess, self.device)
        return self._loaded_model

    # -- embedding ----------------------------------------------------------

    @staticmethod
    def _text_keys(texts):
        keys = []
        for text in texts:
            if is_missing(text) or (isinstance(text, str) and not text.strip()):
                keys.append(None)
            else:
                keys.append(content_key("text", str(text)))
        return keys

    def _image_keys(self, images, rows):
        """Return the cache key of every image, hashed from its bytes.

        With ``on_image_error="missing"``, an unreadable file gets a None key
        and a True entry in the returned mask.
        """
        keys = []
        failed = np.zeros(len(images), dtype=bool)
        for position, cell in enumerate(images):
            try:
                digest = cell_digest(cell, self.image_root, rows[position])
            except ImageReadError as exc:
                if self.on_image_error == "raise":
                    raise ImageReadError(
                        f"{exc} Pass on_image_error='missing' to treat "
                        "unreadable images as missing."
                    ) from exc
                digest = None
                failed[position] = True
            keys.append(None if digest is None else content_key("image", digest))
        return keys, failed

    def _encode_texts(self, texts, positions):
        loaded = self._load_model()
        batches = []
        for start in range(0, len(positions), self.batch_size):
            batch = positions[start : start + self.batch_size]
            batches.append(loaded.encode_texts(str(texts[i]) for i in batch))
            self._report("texts", start + len(batch), len(positions))
        return np.concatenate(batches)

    def _encode_images(self, images, rows, positions, dim):
        loaded = self._load_model()
        vectors = np.full((len(positions), dim), np.nan, dtype=np.float32)
        for start in range(0, len(positions), self.batch_size):
            batch = positions[start : start + self.batch_size]
            decoded = []
            slots = []
            for slot, position in enumerate(batch, start=start):
                try:
                    image = load_image(
                        images[position], self.image_root, rows[position]
                    )
                except ImageReadError as exc:
                    if self.on_image_error == "raise":
                        raise ImageReadError(
                            f"{exc} Pass on_image_error='missing' to treat "
                            "unreadable images as missing."
                        ) from exc
                    # Left as NaN, so the cache does not store it.
                    continue
                decoded.append(image)
                slots.append(slot)
            if decoded:
                vectors[slots] = loaded.encode_images(decoded)
            self._report("images", start + len(batch), len(positions))
        return vectors

    def _report(self, what, done, total):
        if self.verbose:
            print(f"[CLIPFeaturizer] embedded {done}/{total} {what}", file=sys.stderr)


def _normalize_rows(matrix):
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)

"""Per-item embedding cache shared by the featurizers that embed.

A featurizer computes one vector per text or per image. The cache stores each
vector in its own ``.npy`` file named by a key that hashes the model identity
and the content of the item, so that:

- repeated transforms (cross-validation folds, grid-search candidates, the
  next run of a script) embed each distinct text or image once;
- a call in which only some items are new embeds only those items;
- a change of model or of weights starts a separate set of entries.

Layout, under the folder given by ``memory``::

    <memory>/skrouter-embeddings/<namespace>/<key[:2]>/<key>.npy

Files are written to a temporary name and renamed into place, so parallel
processes (``n_jobs`` in a grid search) that share a folder never read a
partial file. Nothing is ever evicted: delete the folder to clear the cache.

Typical use in a featurizer::

    cache = EmbeddingCache.from_memory(self.memory, namespace=model_identity)
    keys = [content_key("text", text) for text in texts]
    vectors = cache.embed(keys, lambda positions: encode(texts[positions]), dim)
"""

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = ["CACHE_FOLDER_NAME", "EmbeddingCache", "content_key", "hash_identity"]

CACHE_FOLDER_NAME = "skrouter-embeddings"

# Bump when the meaning of stored vectors changes (preprocessing, dtype), so
# that old entries are not reused.
_FORMAT_VERSION = 1


def hash_identity(identity):
    """Return a hex digest of a JSON-serializable model identity.

    Parameters
    ----------
    identity : dict
        Everything that determines the vectors a model produces: for example
        the model name, the pretrained tag, the SHA-256 of the weights file and
        the preprocessing settings. Keys are sorted before hashing.

    Returns
    -------
    digest : str
        SHA-256 hex digest, used as the cache namespace.
    """
    payload = json.dumps(
        {"format": _FORMAT_VERSION, **identity}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def content_key(kind, content):
    """Return the cache key of one item from its kind and content.

    Parameters
    ----------
    kind : str
        What the item is, such as ``"text"`` or ``"image"``, so that a text
        and an image with the same bytes get different keys.
    content : str or bytes
        The text itself, or a digest of the image bytes (see
        :func:`skrouter.features._images.image_digest`).

    Returns
    -------
    key : str
        SHA-256 hex digest.
    """
    if isinstance(content, str):
        content = content.encode("utf-8", errors="surrogatepass")
    hasher = hashlib.sha256(kind.encode())
    hasher.update(b"\0")
    hasher.update(content)
    return hasher.hexdigest()


def _memory_location(memory):
    """Return the folder of ``memory`` (path or ``joblib.Memory``), or None."""
    if memory is None:
        return None
    if isinstance(memory, (str, os.PathLike)):
        return Path(memory).expanduser()

    # joblib.Memory; its location is None when caching is disabled.
    location = getattr(memory, "location", None)
    if location is None and hasattr(memory, "cachedir"):
        location = memory.cachedir
    if location is None:
        if hasattr(memory, "cache"):
            return None
        raise TypeError(
            "Invalid memory: expected None, a folder path or a joblib.Memory, "
            f"got {type(memory).__name__}."
        )
    return Path(location).expanduser()


class _RecentVectors:
    """In-process copy of the most recently read or written entries.

    A grid search transforms the same queries once per fit and per scorer,
    in clones of one featurizer. Reading every vector back from its file
    each time cost more than the search itself. Entries never change once
    written, because their key hashes the content and the model, so the
    copies need no invalidation. The least recently used entries go first
    when the copies exceed ``max_bytes``.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self._vectors = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, entry):
        with self._lock:
            vector = self._vectors.get(entry)
            if vector is not None:
                self._vectors.move_to_end(entry)
            return vector

    def put(self, entry, vector):
        vector = np.array(vector, copy=True)
        vector.setflags(write=False)
        with self._lock:
            if entry in self._vectors:
                return
            self._vectors[entry] = vector
            self._bytes += vector.nbytes
            while self._bytes > self.max_bytes and self._vectors:
                _, dropped = self._vectors.popitem(last=False)
                self._bytes -= dropped.nbytes


# 256 MiB fits the embeddings of about 130,000 queries at 512 float32
# dimensions per half.
_RECENT = _RecentVectors(max_bytes=256 * 2**20)


class EmbeddingCache:
    """Store of embedding vectors keyed by item content, one file per vector.

    Parameters
    ----------
    folder : path-like or None
        Folder of this namespace's entries. None disables storage: lookups miss
        and stores do nothing, but :meth:`embed` still embeds each distinct key
        of one call only once.

    See Also
    --------
    EmbeddingCache.from_memory : Build a cache from a featurizer's ``memory``.
    """

    def __init__(self, folder):
        self.folder = None if folder is None else Path(folder)
        self._folder_name = None if folder is None else str(self.folder)

    @classmethod
    def from_memory(cls, memory, namespace):
        """Build the cache for one model from a ``memory`` parameter.

        Parameters
        ----------
        memory : None, str, path-like or joblib.Memory
            As the ``memory`` parameter of scikit-learn's ``Pipeline``: None
            disables caching, and otherwise entries go under the folder (or
            the ``joblib.Memory`` location) in ``skrouter-embeddings/``.
        namespace : str or None
            Digest of the model identity (see :func:`hash_identity`). None
            disables storage, for models whose identity is unknown, such as
            random weights drawn without a seed.
        """
        location = _memory_location(memory)
        if location is None or namespace is None:
            return cls(None)
        return cls(location / CACHE_FOLDER_NAME / namespace)

    @property
    def enabled(self):
        """Whether vectors are stored on disk."""
        return self.folder is not None

    def _path(self, key):
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key):
        """Return the stored vector of ``key``, or None when absent."""
        if self.folder is None:
            return None
        vector = _RECENT.get((self._folder_name, key))
        if vector is not None:
            return vector
        try:
            vector = np.load(self._path(key), allow_pickle=False)
        except (FileNotFoundError, ValueError, EOFError):
            # A missing or truncated entry is recomputed and rewritten.
            return None
        _RECENT.put((self._folder_name, key), vector)
        return vector

    def set(self, key, vector):
        """Store ``vector`` under ``key``, atomically."""
        if self.folder is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, np.asarray(vector), allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        _RECENT.put((self._folder_name, key), np.asarray(vector))

    def embed(self, keys, compute, dim, dtype=np.float32):
        """Return the vectors of ``keys``, computing only the absent ones.

        Parameters
        ----------
        keys : sequence of str or None
            One key per item. A None key is an absent item and gets a zero
            vector without being computed.
        compute : callable
            ``compute(positions)`` returns an array of shape
            ``(len(positions), dim)`` with the vectors of the items at
            ``positions`` (an int array into ``keys``). It is called once, with
            the first position of each distinct key that is not stored. A row
            containing NaN marks an item that could not be embedded: it is
            returned as it is and not stored.
        dim : int
            Vector length.
        dtype : dtype, default=np.float32
            Dtype of the returned array and of stored entries.

        Returns
        -------
        vectors : ndarray of shape (len(keys), dim)
        """
        vectors = np.zeros((len(keys), dim), dtype=dtype)
        first_position = {}
        for position, key in enumerate(keys):
            if key is not None and key not in first_position:
                first_position[key] = position

        missing = []
        found = {}
        for key, position in first_position.items():
            vector = self.get(key)
            if vector is not None and vector.shape == (dim,):
                found[key] = vector
            else:
                missing.append(position)

        if missing:
            positions = np.asarray(missing, dtype=np.intp)
            computed = np.asarray(compute(positions), dtype=dtype)
            if computed.shape != (len(positions), dim):
                raise ValueError(
                    f"compute returned shape {computed.shape}, expected "
                    f"{(len(positions), dim)}."
                )
            for position, vector in zip(positions, computed, strict=True):
                found[keys[position]] = vector
                if not np.isnan(vector).any():
                    self.set(keys[position], vector)

        for position, key in enumerate(keys):
            if key is not None:
                vectors[position] = found[key]
        return vectors

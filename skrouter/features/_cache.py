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
        return _STRING_KEYS.key(kind, content)
    return _hash_content(kind, content)


def _hash_content(kind, content):
    if isinstance(content, str):
        content = content.encode("utf-8", errors="surrogatepass")
    hasher = hashlib.sha256(kind.encode())
    hasher.update(b"\0")
    hasher.update(content)
    return hasher.hexdigest()


class _StringKeys:
    """Keys of recently seen strings, so a repeated text is not hashed again.

    A grid search transforms the same texts once per fit and per score, and
    SHA-256 over each of them was a third of a cached transform. Looking a
    string up in a dict costs a fraction of that. All entries are dropped at
    once when their estimated size would exceed ``max_bytes``, which bounds
    the memory without bookkeeping per entry.
    """

    # Bytes of one entry besides its text: the dict slot, the key tuple and
    # the 64-character hex key, measured with sys.getsizeof on CPython 3.11.
    ENTRY_BYTES = 200

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self._keys = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def key(self, kind, text):
        entry = (kind, text)
        key = self._keys.get(entry)
        if key is not None:
            return key

        key = _hash_content(kind, text)
        # Characters count as bytes: exact for ASCII, low by up to 4x for
        # text that CPython stores with wider code units.
        size = len(text) + self.ENTRY_BYTES
        with self._lock:
            if self._bytes + size > self.max_bytes:
                self._keys.clear()
                self._bytes = 0
            if entry not in self._keys:
                self._keys[entry] = key
                self._bytes += size
        return key


# 64 MiB: the keys of about 90,000 queries of 500 characters.
_STRING_KEYS = _StringKeys(max_bytes=64 * 2**20)


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


class _FolderVectors:
    """Vectors of one cache folder, dimension and dtype, as rows of a matrix.

    A cached transform gathers its rows with one fancy index. A dict lookup
    and a copy per vector took about eight times as long for 240 queries.
    The matrix doubles when full, so it may hold up to twice the rows in use.
    """

    def __init__(self, dim, dtype):
        self.rows = {}
        self.matrix = np.empty((16, dim), dtype=dtype)

    def append(self, key, vector):
        """Add ``vector`` under ``key``; return the bytes newly allocated."""
        n_rows = len(self.rows)
        grown = 0
        if n_rows == self.matrix.shape[0]:
            larger = np.empty((2 * n_rows, self.matrix.shape[1]), self.matrix.dtype)
            larger[:n_rows] = self.matrix
            grown = larger.nbytes - self.matrix.nbytes
            self.matrix = larger
        self.matrix[n_rows] = vector
        self.rows[key] = n_rows
        return grown


class _RecentVectors:
    """In-process copy of the entries recently read or written.

    A grid search transforms the same queries once per fit and per scorer,
    in clones of one featurizer. Reading every vector back from its file
    each time cost more than the search itself. Entries never change once
    written, because their key hashes the content and the model, so the
    copies need no invalidation. When the copies would exceed ``max_bytes``,
    all of them are dropped at once, because bookkeeping per entry would cost
    more than it saves and a pass over more vectors than fit misses anyway.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self._stores = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def lookup(self, folder_name, keys, dim, dtype):
        """Return which of ``keys`` are in memory, and their vectors in order.

        Returns
        -------
        in_memory : ndarray of shape (len(keys),), bool
        vectors : ndarray of shape (in_memory.sum(), dim)
            A copy, so later changes to the store cannot reach it.
        """
        with self._lock:
            store = self._stores.get((folder_name, dim, np.dtype(dtype).str))
            if store is None:
                return np.zeros(len(keys), dtype=bool), np.empty((0, dim), dtype)
            rows = store.rows
            indices = np.fromiter(
                (rows.get(key, -1) for key in keys), dtype=np.intp, count=len(keys)
            )
            in_memory = indices >= 0
            return in_memory, store.matrix[indices[in_memory]]

    def get(self, folder_name, key):
        """Return the vector kept under ``key`` in any store of the folder."""
        with self._lock:
            for (name, _, _), store in self._stores.items():
                row = store.rows.get(key) if name == folder_name else None
                if row is not None:
                    return store.matrix[row].copy()
        return None

    def put(self, folder_name, key, vector):
        """Copy ``vector`` in under ``key``, unless ``key`` is already kept."""
        vector = np.asarray(vector)
        (dim,) = vector.shape
        store_key = (folder_name, dim, vector.dtype.str)
        with self._lock:
            store = self._stores.get(store_key)
            if store is not None and key in store.rows:
                return
            if store is None or len(store.rows) == store.matrix.shape[0]:
                # The next row may double the matrix: make room for that.
                needed = 16 * vector.nbytes if store is None else store.matrix.nbytes
                if self._bytes + needed > self.max_bytes:
                    self._stores.clear()
                    self._bytes = 0
                    store = None
            if store is None:
                store = self._stores[store_key] = _FolderVectors(dim, vector.dtype)
                self._bytes += store.matrix.nbytes
            self._bytes += store.append(key, vector)


# 256 MiB, counted with the room the matrices keep for growth, has room for
# the embeddings of at least 65,000 queries at 512 float32 dimensions per half.
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
        vector = _RECENT.get(self._folder_name, key)
        if vector is not None:
            return vector
        return self._read(key)

    def _read(self, key):
        """Return the vector of ``key`` from its file, or None when absent."""
        try:
            vector = np.load(self._path(key), allow_pickle=False)
        except (FileNotFoundError, ValueError, EOFError):
            # A missing or truncated entry is recomputed and rewritten.
            return None
        if vector.ndim == 1:
            _RECENT.put(self._folder_name, key, vector)
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
        _RECENT.put(self._folder_name, key, vector)

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
        present = np.asarray(
            [position for position, key in enumerate(keys) if key is not None],
            dtype=np.intp,
        )
        if self.folder is None or present.size == 0:
            in_memory = np.zeros(present.size, dtype=bool)
        else:
            in_memory, memory_vectors = _RECENT.lookup(
                self._folder_name, [keys[position] for position in present], dim, dtype
            )
            vectors[present[in_memory]] = memory_vectors
        if in_memory.all():
            return vectors

        # The rest: first the files, then the model, each distinct key once.
        first_position = {}
        for position in present[~in_memory]:
            first_position.setdefault(keys[position], position)
        found = {}
        missing = []
        for key, position in first_position.items():
            vector = None if self.folder is None else self._read(key)
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

        for position in present[~in_memory]:
            vectors[position] = found[keys[position]]
        return vectors

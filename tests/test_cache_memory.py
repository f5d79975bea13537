"""In-process layers of the embedding cache and of image hashing."""

import hashlib
import os

import numpy as np
import pytest

from skrouter.features._cache import EmbeddingCache, _RecentVectors
from skrouter.features._images import ImageReadError, cell_digest


def test_recent_vectors_drop_least_recently_used():
    recent = _RecentVectors(max_bytes=3 * 8 * 4)  # three float64 vectors of 4
    for name in "abc":
        recent.put(name, np.full(4, ord(name), dtype=np.float64))
    assert recent.get("a") is not None  # "a" is now the most recent
    recent.put("d", np.zeros(4))
    assert recent.get("b") is None
    for name in "acd":
        assert recent.get(name) is not None


def test_recent_vectors_are_read_only_copies():
    recent = _RecentVectors(max_bytes=1024)
    vector = np.ones(3)
    recent.put("k", vector)
    vector[0] = 5.0
    stored = recent.get("k")
    np.testing.assert_array_equal(stored, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        stored[0] = 2.0


def test_cache_hit_after_file_deleted(tmp_path):
    cache = EmbeddingCache(tmp_path / "space")
    cache.set("ab" + "0" * 62, np.arange(3, dtype=np.float32))
    for path in (tmp_path / "space").rglob("*.npy"):
        path.unlink()
    # Entries are keyed by content and model, so the copy is still right.
    np.testing.assert_array_equal(cache.get("ab" + "0" * 62), [0, 1, 2])


def test_cell_digest_follows_file_changes(tmp_path):
    path = tmp_path / "image.bin"
    path.write_bytes(b"first")
    assert cell_digest(str(path)) == hashlib.sha256(b"first").hexdigest()

    path.write_bytes(b"second, longer")
    os.utime(path, ns=(1, 1))
    assert cell_digest(str(path)) == hashlib.sha256(b"second, longer").hexdigest()


def test_cell_digest_relative_path_and_missing_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"content")
    expected = hashlib.sha256(b"content").hexdigest()
    assert cell_digest("a.bin", image_root=tmp_path) == expected
    assert cell_digest(None) is None
    with pytest.raises(ImageReadError, match="row 7 at '.*missing.bin'"):
        cell_digest("missing.bin", image_root=tmp_path, row=7)

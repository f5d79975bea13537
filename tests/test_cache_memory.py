"""In-process layers of the embedding cache and of image hashing."""

import hashlib
import os

import numpy as np
import pytest

from skrouter.features import _cache as cache_module
from skrouter.features._cache import (
    EmbeddingCache,
    _RecentVectors,
    _StringKeys,
    content_key,
)
from skrouter.features._images import ImageReadError, cell_digest


def test_recent_vectors_drop_all_when_full():
    # Rows of 4 float64 (32 bytes) in a matrix that starts at 16 rows and
    # doubles: 32 rows fill 1,024 bytes, and the 33rd would double it again.
    recent = _RecentVectors(max_bytes=1024)
    for index in range(32):
        recent.put("folder", index, np.full(4, index, dtype=np.float64))
    in_memory, vectors = recent.lookup("folder", list(range(32)), 4, np.float64)
    assert in_memory.all()
    np.testing.assert_array_equal(vectors[:, 0], np.arange(32))

    recent.put("folder", 32, np.full(4, 32.0))
    in_memory, vectors = recent.lookup("folder", [0, 31, 32], 4, np.float64)
    np.testing.assert_array_equal(in_memory, [False, False, True])
    np.testing.assert_array_equal(vectors, [[32.0] * 4])


def test_recent_vectors_keep_their_own_copies():
    recent = _RecentVectors(max_bytes=1024)
    vector = np.ones(3)
    recent.put("folder", "k", vector)
    vector[0] = 5.0
    _, vectors = recent.lookup("folder", ["k"], 3, np.float64)
    np.testing.assert_array_equal(vectors, [[1.0, 1.0, 1.0]])

    vectors[0, 1] = 7.0
    np.testing.assert_array_equal(recent.get("folder", "k"), [1.0, 1.0, 1.0])


def test_recent_vectors_separate_folders_and_dimensions():
    recent = _RecentVectors(max_bytes=4096)
    recent.put("a", "k", np.zeros(3, dtype=np.float32))
    recent.put("b", "k", np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(recent.get("a", "k"), [0, 0, 0])
    np.testing.assert_array_equal(recent.get("b", "k"), [1, 1])
    in_memory, _ = recent.lookup("a", ["k"], 2, np.float32)
    assert not in_memory[0]


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


def test_content_key_from_memory_equals_fresh_hash():
    expected = hashlib.sha256(b"text\0What is 2 + 2?").hexdigest()
    assert content_key("text", "What is 2 + 2?") == expected
    assert content_key("text", "What is 2 + 2?") == expected
    assert content_key("image", "What is 2 + 2?") != expected

    # Room for one entry of a 6-character text, not two.
    keys = _StringKeys(max_bytes=2 * (6 + _StringKeys.ENTRY_BYTES) - 1)
    assert keys.key("text", "abcdef") == hashlib.sha256(b"text\0abcdef").hexdigest()
    # The second string overflows the budget and empties the memory.
    assert keys.key("text", "ghijkl") == hashlib.sha256(b"text\0ghijkl").hexdigest()
    assert list(keys._keys) == [("text", "ghijkl")]


def test_embed_mixes_memory_files_and_model(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "_RECENT", _RecentVectors(max_bytes=2**20))
    cache = EmbeddingCache(tmp_path / "space")
    vectors = {
        name: np.full(2, index, dtype=np.float32) for index, name in enumerate("abcde")
    }
    cache.set("a", vectors["a"])  # in memory and on disk

    # "b" only on disk, as another process would have left it.
    (tmp_path / "space" / "b").mkdir()
    np.save(tmp_path / "space" / "b" / "b.npy", vectors["b"])

    computed_keys = []

    def compute(positions):
        computed_keys.append([keys[position] for position in positions])
        # "e" cannot be embedded: its row is NaN.
        return [
            np.full(2, np.nan) if keys[position] == "e" else vectors[keys[position]]
            for position in positions
        ]

    keys = ["c", None, "a", "b", "c", "e", "d", "a"]
    result = cache.embed(keys, compute, 2)

    assert computed_keys == [["c", "e", "d"]]
    for position, key in enumerate(keys):
        if key is None:
            np.testing.assert_array_equal(result[position], [0, 0])
        elif key == "e":
            assert np.isnan(result[position]).all()
        else:
            np.testing.assert_array_equal(result[position], vectors[key])

    # Everything but "e" is now stored; a second call computes only "e".
    computed_keys.clear()
    again = cache.embed(keys, compute, 2)
    assert computed_keys == [["e"]]
    np.testing.assert_array_equal(np.isnan(again), np.isnan(result))
    assert not (tmp_path / "space" / "e").exists()

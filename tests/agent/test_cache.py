"""ModelCache: content-addressed files, quota, LRU eviction, atomic index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agent.cache import CacheError, ModelCache
from protocol.errors import ProtocolError


def _blob(tmp_path: Path, size: int, fill: int) -> tuple[Path, str]:
    data = bytes([fill]) * size
    path = tmp_path / f"incoming-{fill}"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_admitted_model_is_named_by_hash_and_survives_reopen(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 10_000)
    src, sha = _blob(tmp_path, 100, 1)
    path = cache.admit(src, sha, "onnx")
    assert path.name == f"{sha}.onnx"
    assert not src.exists()
    reopened = ModelCache(tmp_path / "models", 10_000)
    assert sha in reopened and reopened.path(sha) == path
    assert reopened.used_bytes() == 100


def test_least_recently_used_model_is_evicted_to_fit_quota(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 1000)
    a_src, a = _blob(tmp_path, 400, 1)
    b_src, b = _blob(tmp_path, 400, 2)
    c_src, c = _blob(tmp_path, 400, 3)
    cache.admit(a_src, a, "onnx")
    cache.admit(b_src, b, "tflite")
    assert cache.path(a) is not None  # a used after b: b is now the oldest
    cache.admit(c_src, c, "onnx")
    assert a in cache and c in cache and b not in cache
    assert not (tmp_path / "models" / f"{b}.tflite").exists()
    assert cache.used_bytes() <= 1000


def test_pinned_model_is_not_evicted(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 1000)
    a_src, a = _blob(tmp_path, 600, 1)
    b_src, b = _blob(tmp_path, 600, 2)
    cache.admit(a_src, a, "onnx")
    cache.pin(a)
    with pytest.raises(CacheError, match="no room"):
        cache.admit(b_src, b, "onnx")
    assert a in cache
    cache.unpin(a)
    cache.admit(b_src, b, "onnx")
    assert a not in cache and b in cache


def test_model_larger_than_quota_is_rejected(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 100)
    with pytest.raises(CacheError, match="cache quota"):
        cache.check_fits(101)
    src, sha = _blob(tmp_path, 101, 1)
    with pytest.raises(CacheError):
        cache.admit(src, sha, "onnx")
    assert cache.hashes() == []


def test_no_path_from_sender_names(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 1000)
    src, _ = _blob(tmp_path, 10, 1)
    with pytest.raises(ProtocolError):
        cache.admit(src, "../../etc/passwd", "onnx")
    with pytest.raises(CacheError):
        cache.admit(src, "a" * 64, "../x")
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_index_is_replaced_atomically_and_orphans_are_removed(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 1000)
    src, sha = _blob(tmp_path, 10, 1)
    cache.admit(src, sha, "onnx")
    index = json.loads((tmp_path / "models" / "index.json").read_text())
    assert index["models"][sha]["size"] == 10
    # No temporary files are left behind; a stray file (crash before the index
    # was written) is removed on the next start.
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f"{sha}.onnx", "index.json"]
    (tmp_path / "models" / ("b" * 64 + ".onnx")).write_bytes(b"x")
    reopened = ModelCache(tmp_path / "models", 1000)
    assert reopened.hashes() == [sha]
    assert not (tmp_path / "models" / ("b" * 64 + ".onnx")).exists()


def test_corrupt_index_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "index.json").write_text("{not json")
    assert ModelCache(tmp_path / "models", 1000).hashes() == []


def test_data_files_share_the_cache_with_models(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models", 10_000)
    npz_src, npz = _blob(tmp_path, 100, 1)
    npy_src, npy = _blob(tmp_path, 100, 2)
    assert cache.admit(npz_src, npz, "npz").name == f"{npz}.npz"
    assert cache.admit(npy_src, npy, "npy").name == f"{npy}.npy"
    reopened = ModelCache(tmp_path / "models", 10_000)
    assert npz in reopened and npy in reopened and reopened.used_bytes() == 200

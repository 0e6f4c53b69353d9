"""Content-addressed model cache with a size quota and LRU eviction.

Holds models and the data files jobs attach to them (.npz/.npy), under one
quota. Files are named ``<sha256>.<format>`` — the hash is validated (64 hex
digits) and the format is one of the protocol's blob formats, so a
sender-supplied name never becomes a path. The index (size, format, last use) is a JSON file
replaced atomically; files without an index entry are ignored and removed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError
from protocol.messages import BLOB_FORMATS
from protocol.topics import check_sha256

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"


class CacheError(Exception):
    """A model cannot be admitted (too large for the quota, bad hash or format)."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old or the new file, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass
class _Entry:
    format: str
    size: int
    last_used: float


class ModelCache:
    """Models by SHA-256 under `directory`, at most `quota_bytes` in total."""

    def __init__(self, directory: str | os.PathLike[str], quota_bytes: int) -> None:
        if quota_bytes < 1:
            raise ValueError("quota must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.quota_bytes = quota_bytes
        self._lock = threading.RLock()
        self._pinned: dict[str, int] = {}
        self._entries = self._load()

    # -- index ---------------------------------------------------------------
    def _index_path(self) -> Path:
        return self.directory / INDEX_NAME

    def _load(self) -> dict[str, _Entry]:
        entries: dict[str, _Entry] = {}
        try:
            raw: Any = json.loads(self._index_path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError) as exc:
            log.warning("model cache index unreadable (%s); starting empty", exc)
            raw = {}
        models = raw.get("models", {}) if isinstance(raw, dict) else {}
        for sha, item in models.items() if isinstance(models, dict) else ():
            try:
                check_sha256(sha)
                fmt, size, used = item["format"], int(item["size"]), float(item["last_used"])
            except (ProtocolError, KeyError, TypeError, ValueError):
                continue
            if fmt in BLOB_FORMATS and self._file(sha, fmt).is_file():
                entries[sha] = _Entry(fmt, size, used)
        # Files the index does not know (a crash between rename and index write) go.
        known = {self._file(s, e.format).name for s, e in entries.items()}
        for path in self.directory.iterdir():
            if path.is_file() and path.name != INDEX_NAME and path.name not in known:
                path.unlink(missing_ok=True)
        return entries

    def _save(self) -> None:
        body = {
            "models": {
                sha: {"format": e.format, "size": e.size, "last_used": e.last_used}
                for sha, e in self._entries.items()
            }
        }
        atomic_write(self._index_path(), json.dumps(body, indent=1, sort_keys=True).encode())

    def _file(self, sha256: str, fmt: str) -> Path:
        return self.directory / f"{sha256}.{fmt}"

    # -- queries -------------------------------------------------------------
    def __contains__(self, sha256: object) -> bool:
        with self._lock:
            return sha256 in self._entries

    def hashes(self) -> list[str]:
        """Hashes of cached models, most recently used first."""
        with self._lock:
            return sorted(self._entries, key=lambda s: -self._entries[s].last_used)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def path(self, sha256: str, *, touch: bool = True) -> Path | None:
        """The file of a cached model (marking it used), or None."""
        with self._lock:
            entry = self._entries.get(sha256)
            if entry is None:
                return None
            if touch:
                entry.last_used = time.time()
                self._save()
            return self._file(sha256, entry.format)

    def check_fits(self, size_bytes: int, *, reserved_bytes: int = 0) -> None:
        """Raise CacheError when a model of this size cannot fit the quota beside
        `reserved_bytes` that stay (partial downloads of other files)."""
        if size_bytes > self.quota_bytes:
            raise CacheError(
                f"model of {size_bytes} bytes exceeds the cache quota of {self.quota_bytes} "
                "bytes: raise --cache-quota-mb on the device"
            )
        if size_bytes + reserved_bytes > self.quota_bytes:
            raise CacheError(
                f"model of {size_bytes} bytes does not fit the cache quota of "
                f"{self.quota_bytes} bytes beside {reserved_bytes} bytes of downloads in "
                "progress: retry when they finish, or raise --cache-quota-mb on the device"
            )

    # -- pinning (models waiting to run are not evicted) ----------------------
    def pin(self, sha256: str) -> None:
        with self._lock:
            self._pinned[sha256] = self._pinned.get(sha256, 0) + 1

    def unpin(self, sha256: str) -> None:
        with self._lock:
            count = self._pinned.get(sha256, 0) - 1
            if count <= 0:
                self._pinned.pop(sha256, None)
            else:
                self._pinned[sha256] = count

    # -- changes -------------------------------------------------------------
    def admit(self, source: str | os.PathLike[str], sha256: str, fmt: str) -> Path:
        """Move a verified file into the cache, evicting least recently used
        models to stay within the quota. Returns the cached path."""
        check_sha256(sha256)
        if fmt not in BLOB_FORMATS:
            raise CacheError(f"unknown file format {fmt!r}")
        size = os.path.getsize(source)
        self.check_fits(size)
        with self._lock:
            if sha256 in self._entries:
                os.unlink(source)
                existing = self.path(sha256)
                assert existing is not None
                return existing
            self._make_room(size)
            target = self._file(sha256, fmt)
            os.replace(source, target)
            self._entries[sha256] = _Entry(fmt, size, time.time())
            self._save()
            log.info("cached model %s (%d bytes)", sha256[:12], size)
            return target

    def _make_room(self, size: int) -> None:
        free = self.quota_bytes - self.used_bytes()
        for sha in sorted(self._entries, key=lambda s: self._entries[s].last_used):
            if free >= size:
                break
            if sha in self._pinned:
                continue
            free += self._entries[sha].size
            self._evict(sha)
        if free < size:
            self._save()
            raise CacheError(
                f"no room for a model of {size} bytes: the models in use fill the cache quota"
            )

    def _evict(self, sha256: str) -> None:
        entry = self._entries.pop(sha256)
        self._file(sha256, entry.format).unlink(missing_ok=True)
        log.info("evicted model %s from the cache (least recently used)", sha256[:12])

    def remove(self, hashes: Iterable[str]) -> None:
        with self._lock:
            for sha in hashes:
                if sha in self._entries:
                    self._evict(sha)
            self._save()

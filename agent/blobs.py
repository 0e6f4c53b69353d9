"""Reassembly of a model (or a data file a job attaches) sent in chunks over MQTT.

Chunk `index` is written at offset ``index * chunk_size`` of a partial file,
so chunks may arrive in any order, twice, or after a restart. The set of
received indices is persisted next to the partial file (atomically, every few
chunks and on :meth:`flush`), so a download resumes after a reconnect or an
agent restart: only the missing chunks are requested again. An index that was
written to the file but not yet persisted is simply requested again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from agent.cache import atomic_write
from protocol.messages import BlobRef

log = logging.getLogger(__name__)

_PERSIST_EVERY_CHUNKS = 16
_PERSIST_EVERY_S = 1.0


class ChunkAssembler:
    """Collects the chunks of one model (`ref`) under `directory`."""

    def __init__(self, directory: str | os.PathLike[str], ref: BlobRef) -> None:
        self.ref = ref
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Named by the validated hash only, never by the model's name.
        self.part_path = self.directory / f"{ref.sha256}.part"
        self.state_path = self.directory / f"{ref.sha256}.state.json"
        self.total = ref.chunks
        self._received: set[int] = set()
        self._unsaved = 0
        self._saved_at = time.monotonic()
        self._load()

    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning(
                "download state of %s unreadable (%s): starting over", self.ref.sha256[:12], exc
            )
            return
        same_blob = (
            isinstance(state, dict)
            and state.get("size_bytes") == self.ref.size_bytes
            and state.get("chunk_size") == self.ref.chunk_size
            and self.part_path.is_file()
        )
        if not same_blob:
            return
        received = state.get("received", [])
        if isinstance(received, list):
            self._received = {
                i
                for i in received
                if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < self.total
            }
        if self._received:
            log.info(
                "resuming download of %s: %d/%d chunks already here",
                self.ref.sha256[:12],
                len(self._received),
                self.total,
            )

    def flush(self) -> None:
        """Persist the set of received chunk indices."""
        body = {
            "sha256": self.ref.sha256,
            "size_bytes": self.ref.size_bytes,
            "chunk_size": self.ref.chunk_size,
            "received": sorted(self._received),
        }
        atomic_write(self.state_path, json.dumps(body).encode())
        self._unsaved = 0
        self._saved_at = time.monotonic()

    def expected_size(self, index: int) -> int:
        """Byte length chunk `index` must have (the last one may be shorter)."""
        if index == self.total - 1:
            return self.ref.size_bytes - index * self.ref.chunk_size
        return self.ref.chunk_size

    def add(self, index: int, data: bytes) -> bool:
        """Store one chunk. Returns False (and stores nothing) for an index out of
        range, a chunk of the wrong size, or one already received."""
        if not 0 <= index < self.total:
            log.warning(
                "chunk %d of %s is out of range (0..%d): ignored",
                index,
                self.ref.sha256[:12],
                self.total - 1,
            )
            return False
        if len(data) != self.expected_size(index):
            log.warning(
                "chunk %d of %s has %d bytes, expected %d: ignored",
                index,
                self.ref.sha256[:12],
                len(data),
                self.expected_size(index),
            )
            return False
        if index in self._received:
            return False
        mode = "r+b" if self.part_path.exists() else "wb"
        with open(self.part_path, mode) as handle:
            handle.seek(index * self.ref.chunk_size)
            handle.write(data)
        self._received.add(index)
        self._unsaved += 1
        if (
            self._unsaved >= _PERSIST_EVERY_CHUNKS
            or time.monotonic() - self._saved_at > _PERSIST_EVERY_S
            or self.complete
        ):
            self.flush()
        return True

    @property
    def received(self) -> int:
        return len(self._received)

    @property
    def received_bytes(self) -> int:
        """Bytes of the chunks received so far."""
        last = self.total - 1
        full = len(self._received) - (last in self._received)
        return full * self.ref.chunk_size + (
            self.expected_size(last) if last in self._received else 0
        )

    @property
    def complete(self) -> bool:
        return len(self._received) == self.total

    def missing(self) -> list[int]:
        """Indices not yet received, in order."""
        return [i for i in range(self.total) if i not in self._received]

    def verify(self) -> bool:
        """True when every chunk is here and the file's SHA-256 matches the manifest."""
        if not self.complete:
            return False
        digest = hashlib.sha256()
        with open(self.part_path, "rb") as handle:
            size = 0
            while block := handle.read(1024 * 1024):
                digest.update(block)
                size += len(block)
        return size == self.ref.size_bytes and digest.hexdigest() == self.ref.sha256

    def discard(self) -> None:
        """Delete the partial file and its state (bad hash, or moved into the cache)."""
        self.part_path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)
        self._received.clear()

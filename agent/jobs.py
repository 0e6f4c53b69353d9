"""Job records (the replay guard) and the one-at-a-time FIFO runner.

The replay guard remembers every verified job id with its state and the
manifest's expiry. Finished jobs are persisted, so a manifest replayed after
an agent restart is still refused; records outlive the manifest's expiry by a
margin and are then pruned (an expired manifest is refused anyway). Jobs that
were queued or running when the agent died are not persisted: the host may
re-send them and they run.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from agent.cache import atomic_write
from protocol.messages import TERMINAL_JOB_STATES

log = logging.getLogger(__name__)

# Records are kept this long after their manifest expired (clock skew included).
_KEEP_AFTER_EXPIRY_S = 3600.0


@dataclass
class JobRecord:
    """What the agent knows about one job id."""

    state: str
    expires_at: float


class JobRecords:
    """Job id → state, persisted for finished jobs in `path` (JSON, atomic)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, JobRecord] = {}
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("job records unreadable (%s): starting without them", exc)
            return
        if not isinstance(raw, dict):
            return
        for job_id, item in raw.items():
            try:
                state, expires = str(item["state"]), float(item["expires_at"])
            except (KeyError, TypeError, ValueError):
                continue
            if state in TERMINAL_JOB_STATES:
                self._records[job_id] = JobRecord(state, expires)

    def _save(self) -> None:
        body = {
            job_id: {"state": r.state, "expires_at": r.expires_at}
            for job_id, r in self._records.items()
            if r.state in TERMINAL_JOB_STATES
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(body, sort_keys=True).encode())

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._records.get(job_id)

    def set(self, job_id: str, state: str, expires_at: float) -> None:
        """Record a job's state; finished states are persisted at once."""
        with self._lock:
            self._records[job_id] = JobRecord(state, expires_at)
            if state in TERMINAL_JOB_STATES:
                self._save()

    def is_replay(self, job_id: str) -> bool:
        """True when this job already finished (a manifest seen again)."""
        record = self.get(job_id)
        return record is not None and record.state in TERMINAL_JOB_STATES

    def is_active(self, job_id: str) -> bool:
        record = self.get(job_id)
        return record is not None and record.state not in TERMINAL_JOB_STATES

    def prune(self, now: float | None = None) -> None:
        """Forget finished jobs whose manifests expired long ago."""
        now = time.time() if now is None else now
        with self._lock:
            old = [
                j
                for j, r in self._records.items()
                if r.state in TERMINAL_JOB_STATES and r.expires_at + _KEEP_AFTER_EXPIRY_S < now
            ]
            for job_id in old:
                del self._records[job_id]
            if old:
                self._save()


T = TypeVar("T")


class JobRunner(Generic[T]):
    """A thread running queued jobs one at a time, in arrival order.

    `execute` is called for each job on the runner thread; an exception in it is
    logged and the runner goes on with the next job.
    """

    def __init__(self, execute: Callable[[T], None], name: str = "edgeprof-runner") -> None:
        self._execute = execute
        self._queue: queue.Queue[T | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._busy = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: T) -> None:
        self._queue.put(job)

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current job (queued jobs are dropped)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._busy.set()
            try:
                self._execute(job)
            except Exception:
                log.exception("job failed unexpectedly; going on with the next one")
            finally:
                self._busy.clear()


class ReplayGuard:
    """Digests of the control messages already handled (ack, collect, cancel),
    each kept until its message expires, persisted in `path` (JSON, atomic).

    A signed message replayed — by the broker, or by anyone who recorded it —
    has the digest of one already handled and is ignored, across restarts too.
    Only verified messages are recorded, so the file holds what the host sent.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, path: str | os.PathLike[str], *, skew_s: float = 300.0) -> None:
        self.path = Path(path)
        self.skew_s = skew_s
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(raw, dict):
                self._seen = {
                    str(k): float(v)
                    for k, v in raw.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("control replay records unreadable (%s): starting without them", exc)

    def first_time(self, digest: str, expires_at: float, now: float | None = None) -> bool:
        """True (and remembered) the first time a message is seen; False for a replay."""
        now = time.time() if now is None else now
        with self._lock:
            if digest in self._seen:
                return False
            self._seen = {d: e for d, e in self._seen.items() if e + self.skew_s >= now}
            if len(self._seen) >= self.MAX_ENTRIES:  # never in practice: drop the soonest to go
                for old in sorted(self._seen, key=self._seen.__getitem__)[: len(self._seen) // 10]:
                    del self._seen[old]
            self._seen[digest] = expires_at
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self._seen, sort_keys=True).encode())
            return True

    def __len__(self) -> int:
        return len(self._seen)

"""Worker processes never outlive what started them, and are never left behind.

Parent side (:func:`profiler.runner.run_child`): every running worker is known
by pid (:func:`started` / :func:`ended`), and with :func:`record_in` also on
disk, so a daemon killed with ``kill -9`` finds the workers of its previous
life when it starts again (:func:`kill_leftovers`) instead of measuring beside
them. A :class:`Lifeline` pipe lets the child notice its parent is gone.

Child side (:func:`die_with_parent`, first thing in ``profiler.worker``): on
Linux ``PR_SET_PDEATHSIG`` has the kernel SIGKILL the worker when its parent
dies, even while a runtime hangs in native code; everywhere, a thread blocked
on the lifeline pipe sees end-of-file when the parent is gone and kills the
worker's process group. Workers lead their own sessions (so the runner can kill
a worker and whatever it started), which is why neither Ctrl-C nor the
parent's exit would otherwise reach them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_LIVE: set[int] = set()
_LOCK = threading.Lock()
_record_dir: Path | None = None

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# -- parent side ----------------------------------------------------------------
def kill_group(pid: int) -> None:
    """SIGKILL a worker and everything in its process group (it leads its own)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def record_in(directory: str | os.PathLike[str] | None) -> None:
    """Also keep a file per running worker in `directory` (None: stop doing so)."""
    global _record_dir
    _record_dir = None if directory is None else Path(directory)
    if _record_dir is not None:
        _record_dir.mkdir(parents=True, exist_ok=True)


def _start_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def started(pid: int) -> None:
    """A worker was started: remember it (and record it on disk when asked to)."""
    with _LOCK:
        _LIVE.add(pid)
        directory = _record_dir
    if directory is not None:
        record = {"pid": pid, "started": _start_time(pid), "parent": os.getpid()}
        try:
            (directory / f"{pid}.json").write_text(json.dumps(record), encoding="utf-8")
        except OSError as exc:
            log.warning("cannot record worker %d in %s: %s", pid, directory, exc)


def ended(pid: int) -> None:
    """A worker was reaped."""
    with _LOCK:
        _LIVE.discard(pid)
        directory = _record_dir
    if directory is not None:
        with contextlib.suppress(OSError):
            (directory / f"{pid}.json").unlink()


def kill_running() -> int:
    """Kill every worker of this process that is running now; returns how many."""
    with _LOCK:
        pids = list(_LIVE)
    for pid in pids:
        kill_group(pid)
    return len(pids)


def leftovers(directory: str | os.PathLike[str]) -> list[int]:
    """Pids of recorded workers of another (earlier) process that still run.

    A record whose pid is gone, or now belongs to a process started at another
    time (the pid was reused), is deleted.
    """
    import psutil

    found = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid, when = int(record["pid"]), record.get("started")
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if pid in _LIVE:
            continue  # ours, running now
        try:
            process = psutil.Process(pid)
            same = when is None or abs(float(process.create_time()) - float(when)) < 1.0
            alive = same and process.status() != psutil.STATUS_ZOMBIE
        except (psutil.Error, OSError, ValueError, TypeError):
            alive = False
        if alive:
            found.append(pid)
        else:
            path.unlink(missing_ok=True)
    return found


def kill_leftovers(directory: str | os.PathLike[str], timeout: float = 10.0) -> list[int]:
    """Kill the recorded workers of an earlier process that still run and wait
    (up to `timeout` s) until they are gone; returns the pids still alive."""
    pids = leftovers(directory)
    for pid in pids:
        log.warning("killing profiling worker %d, left running by an earlier agent", pid)
        kill_group(pid)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = leftovers(directory)
    return pids


class Lifeline:
    """A pipe whose write end only the parent holds: the child reads end-of-file
    the moment the parent is gone (however it died)."""

    def __init__(self) -> None:
        self.child_fd, self._parent_fd = os.pipe()

    @property
    def fds(self) -> tuple[int, ...]:
        """The descriptor the child inherits (subprocess ``pass_fds``)."""
        return (self.child_fd,) if self.child_fd >= 0 else ()

    def request_fields(self) -> dict[str, int]:
        """What the child needs to arm itself (goes into the worker request)."""
        return {"lifeline_fd": self.child_fd, "parent_pid": os.getpid()}

    def child_started(self) -> None:
        """After the child was spawned: the parent keeps only the write end."""
        self._close_child_end()

    def close(self) -> None:
        """After the child was reaped (closing earlier would kill it)."""
        self._close_child_end()
        if self._parent_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._parent_fd)
            self._parent_fd = -1

    def _close_child_end(self) -> None:
        if self.child_fd >= 0:  # once: the number may belong to another file later
            with contextlib.suppress(OSError):
                os.close(self.child_fd)
            self.child_fd = -1


# -- child side -----------------------------------------------------------------
def _set_pdeathsig() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError) as exc:  # no prctl: the lifeline thread remains
        log.debug("PR_SET_PDEATHSIG unavailable: %s", exc)


def _kill_self() -> None:
    pid = os.getpid()
    try:
        if os.getpgid(0) == pid:
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    os.kill(pid, signal.SIGKILL)


def _watch_lifeline(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass  # the parent never writes: only end-of-file matters
    except OSError:
        pass
    _kill_self()


def die_with_parent(request: Mapping[str, Any]) -> None:
    """In the worker, at once: make sure it dies when the process that started it does."""
    _set_pdeathsig()
    parent = request.get("parent_pid")
    if isinstance(parent, int) and os.getppid() != parent:
        _kill_self()  # the parent died before PR_SET_PDEATHSIG took effect
    fd = request.get("lifeline_fd")
    if isinstance(fd, int) and not isinstance(fd, bool):
        threading.Thread(
            target=_watch_lifeline, args=(fd,), name="edgeprof-lifeline", daemon=True
        ).start()

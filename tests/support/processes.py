"""The profiling workers below a process, as psutil sees them (fault tests)."""

from __future__ import annotations

import psutil


def workers_of(pid: int) -> list[psutil.Process]:
    """The ``profiler.worker`` processes below `pid` (none when it is gone)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "profiler.worker" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def alive(process: psutil.Process) -> bool:
    """True while `process` runs (a zombie does not)."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False

"""Resident-memory readings of the current process (used inside the worker).

Linux exposes the current (VmRSS) and peak (VmHWM) resident set in
``/proc/self/status``; elsewhere only the peak is available, from
``resource.getrusage`` (whose unit is KiB on Linux but bytes on macOS).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class RssReading:
    """One memory checkpoint, in MiB."""

    rss_mb: float
    """Current resident set (VmRSS); the peak where the current value is not exposed."""
    hwm_mb: float
    """Peak resident set so far (VmHWM / ru_maxrss)."""
    source: str = "proc"
    """'proc' (/proc/self/status) or 'getrusage' (peak only)."""


def _from_proc(text: str) -> RssReading | None:
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            parts = rest.split()
            # The kernel always writes "<n> kB".
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) / 1024.0
    if "VmRSS" not in values:
        return None
    return RssReading(rss_mb=values["VmRSS"], hwm_mb=values.get("VmHWM", values["VmRSS"]))


def maxrss_to_mb(ru_maxrss: int) -> float:
    """Convert ``ru_maxrss`` to MiB: KiB on Linux and the BSDs, bytes on macOS."""
    if sys.platform == "darwin":
        return ru_maxrss / (1024.0 * 1024.0)
    return ru_maxrss / 1024.0


def read_rss() -> RssReading:
    """The current and peak resident set of this process."""
    try:
        reading = _from_proc(_STATUS.read_text())
    except OSError:
        reading = None
    if reading is not None:
        return reading
    import resource

    peak = maxrss_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return RssReading(rss_mb=peak, hwm_mb=peak, source="getrusage")


def _cgroup_limit_bytes() -> int | None:
    """This process's cgroup memory limit (v2 ``memory.max`` or v1), if any."""
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # v1 writes a huge number for "none"
            return int(text)
    return None


def _meminfo_bytes(key: str) -> int | None:
    # /proc/meminfo first: importing psutil would cost the idle agent ~2.5 MB.
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name == key:
                    return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_total_mb() -> float | None:
    """RAM this process may use, in MiB: physical RAM or a lower cgroup limit."""
    total = _meminfo_bytes("MemTotal")
    if total is None:
        import psutil

        try:
            total = int(psutil.virtual_memory().total)
        except (OSError, RuntimeError):
            return None
    limit = _cgroup_limit_bytes()
    return min(total, limit if limit is not None else total) / (1024.0 * 1024.0)


def memory_available_mb() -> float | None:
    """Memory available to new allocations without swapping (MemAvailable), in MiB."""
    available = _meminfo_bytes("MemAvailable")
    if available is not None:
        return available / (1024.0 * 1024.0)
    import psutil

    try:
        return float(psutil.virtual_memory().available) / (1024.0 * 1024.0)
    except (OSError, RuntimeError):
        return None

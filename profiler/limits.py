"""The memory limit of a worker process: chosen by the parent, applied by the child.

Every worker gets one (``--max-memory``; by default a share of the memory
available when it starts), so a hostile or simply too big model or data file
fails with ``out_of_memory`` instead of swapping the device to a halt or
waking the kernel's OOM killer, which may pick the agent itself.

The limit is ``RLIMIT_DATA``: the private writable memory the process may
commit (heap, anonymous mappings, thread stacks), which the kernel enforces at
allocation time — an allocation beyond it fails (NumPy raises MemoryError,
ONNX Runtime "Failed to allocate memory") instead of the process being
killed later. It is larger than the resident set (a ~70 MB-resident ONNX
Runtime worker commits ~120 MB); a model's file mapped read-only (LiteRT
maps the model) does not count against it.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from profiler.settings import MIN_MEMORY_MB, ProfileSettings

log = logging.getLogger(__name__)

DEFAULT_MEMORY_SHARE = 0.8
"""Default limit: this share of the memory available when the worker starts."""

_applied_mb: float | None = None

# How runtimes say an allocation failed (besides Python's MemoryError).
_ALLOCATION_FAILED = re.compile(
    r"failed to allocate|bad_alloc|unable to allocate|out of memory|cannot allocate memory",
    re.IGNORECASE,
)


def default_memory_limit_mb() -> float | None:
    """A share of the memory available now (None where that is unknown)."""
    from profiler.memory import memory_available_mb

    available = memory_available_mb()
    if available is None:
        return None
    return max(MIN_MEMORY_MB, round(available * DEFAULT_MEMORY_SHARE))


def with_memory_limit(
    settings: ProfileSettings, ceiling_mb: float | None = None
) -> ProfileSettings:
    """`settings` with the limit its worker will run under: the one asked for,
    else the default; never above `ceiling_mb` (a device's own setting)."""
    limit = settings.max_memory_mb
    if limit is None:
        limit = ceiling_mb if ceiling_mb is not None else default_memory_limit_mb()
    elif ceiling_mb is not None:
        limit = min(limit, ceiling_mb)
    return dataclasses.replace(settings, max_memory_mb=limit)


def apply_memory_limit(limit_mb: float | None) -> None:
    """In the worker: limit this process's committed memory to `limit_mb` MiB."""
    global _applied_mb
    if limit_mb is None:
        return
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        wanted = int(limit_mb * 1024 * 1024)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))
    except (ImportError, AttributeError, ValueError, OSError) as exc:  # not on this OS
        log.debug("memory limit not applied: %s", exc)
        return
    _applied_mb = limit_mb


def applied_limit_mb() -> float | None:
    """The limit :func:`apply_memory_limit` set in this process, if any."""
    return _applied_mb


def is_allocation_failure(exc: BaseException) -> bool:
    """True when `exc` says memory ran out (MemoryError, or a runtime's own words)."""
    return isinstance(exc, MemoryError) or bool(_ALLOCATION_FAILED.search(str(exc)))


_SIZE = re.compile(r"buffer of size (\d+)")
_NUMPY_SIZE = re.compile(r"allocate ([\d.]+ [KMGT]?i?B)")


def allocation_words(exc: BaseException) -> str:
    """What failed, briefly: 'an allocation of 4.3 GB failed' where the runtime
    says how much, else the first line of its message (cut to 120 characters)."""
    text = str(exc).strip()
    match = _SIZE.search(text)
    if match:
        return f"an allocation of {int(match.group(1)) / 1e9:.1f} GB failed"
    match = _NUMPY_SIZE.search(text)
    if match:
        return f"an allocation of {match.group(1)} failed"
    first = text.splitlines()[0] if text else "allocation failed"
    return first[:120]


def limit_words() -> str:
    """' (limit 512 MiB: raise --max-memory)' when a limit applies, else ''."""
    if _applied_mb is None:
        return ""
    return f" (worker limit {_applied_mb:.0f} MiB: raise --max-memory)"

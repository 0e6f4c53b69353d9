"""What a .npy/.npz file declares, read from its headers before any data is.

An ``.npz`` is a zip of ``.npy`` members, and each member's header says how
big its array is: NumPy allocates that much, then decompresses into it. A few
megabytes of zeros compress into a member that declares gigabytes (an 11.6 MB
file grew to 7.7 GB), so data files from the network are checked here first:
every member must be an array, and together they must fit the worker's memory
limit. Runs in the worker (imports NumPy).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from profiler.errors import OUT_OF_MEMORY, ProfilerError

MAX_MEMBERS = 256
"""An .npz with more arrays than this is not model inputs or a labelled set."""


@dataclass(frozen=True)
class DeclaredArray:
    """One array as its .npy header describes it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


def _read_header(handle: IO[bytes], name: str, file_name: str, code: str) -> DeclaredArray:
    import numpy as np

    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ProfilerError(
            code, f"{file_name}: {name} is not a readable .npy array ({exc})"
        ) from None
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise ProfilerError(
            code, f"{file_name}: {name} holds Python objects (pickled), which edgeprof never loads"
        )
    dims = tuple(int(d) for d in shape)
    return DeclaredArray(name, dims, str(dtype), math.prod(dims) * dtype.itemsize)


def declared_arrays(path: str | Path, *, code: str) -> list[DeclaredArray]:
    """The arrays a .npy or .npz file declares (headers only); ProfilerError with
    `code` when the file is not made of .npy arrays."""
    file = Path(path)
    try:
        if not zipfile.is_zipfile(file):
            with file.open("rb") as handle:
                return [_read_header(handle, "the array", file.name, code)]
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise ProfilerError(
                    code, f"{file.name} holds {len(members)} files (at most {MAX_MEMBERS} arrays)"
                )
            found = []
            for info in members:
                with archive.open(info) as handle:
                    found.append(_read_header(handle, info.filename, file.name, code))
            return found
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
        # RuntimeError/NotImplementedError: encrypted or unknown-compression members.
        raise ProfilerError(code, f"{file.name} is not a readable .npy/.npz file ({exc})") from None


def memory_budget_bytes() -> float | None:
    """What a data file may take in this worker: its memory limit, else the
    memory available now (None when neither is known)."""
    from profiler.limits import applied_limit_mb
    from profiler.memory import memory_available_mb

    limit = applied_limit_mb()
    if limit is None:
        limit = memory_available_mb()
    return None if limit is None else limit * 1024 * 1024


def check_declared_size(
    path: str | Path, *, code: str, budget_bytes: float | None = None
) -> list[DeclaredArray]:
    """The declared arrays of `path`, after checking that together they fit the
    budget (default :func:`memory_budget_bytes`): OUT_OF_MEMORY before any data
    is read when they do not, `code` when the file is not made of arrays."""
    arrays = declared_arrays(path, code=code)
    budget = memory_budget_bytes() if budget_bytes is None else budget_bytes
    total = sum(a.nbytes for a in arrays)
    if budget is not None and total > budget:
        largest = max(arrays, key=lambda a: a.nbytes)
        raise ProfilerError(
            OUT_OF_MEMORY,
            f"{Path(path).name} declares {_gb(total)} of arrays ({largest.name}: "
            f"{list(largest.shape)} {largest.dtype}), more than the worker's memory limit of "
            f"{_gb(budget)}; nothing was read: use a smaller file or raise --max-memory",
        )
    return arrays

"""The names people know a measurement's files by.

The agent runs a content-addressed copy of each file (its cache names files by
their SHA-256), yet every message and result must name the model and the data
files as the host called them. The runner hands the worker a map of path →
display name once (in its request); every message built in this process asks
:func:`display_name` — the name is right where the text is made, never patched
into the finished document.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_NAMES: dict[str, str] = {}


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.fspath(path))


def set_display_names(names: Mapping[str, str]) -> None:
    """Name these paths (``{path: name}``) in every message of this process."""
    _NAMES.clear()
    for path, name in names.items():
        if isinstance(path, str) and isinstance(name, str) and name:
            _NAMES[_key(path)] = name


def display_name(path: str | os.PathLike[str] | None, default: str = "the file") -> str:
    """How to call `path` in a message: its display name, else its file name."""
    if path is None:
        return default
    return _NAMES.get(_key(path)) or Path(path).name or default

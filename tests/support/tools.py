"""Stand-ins for vendor tools (vcgencmd, nvpmodel) on a test's own PATH: real
executables, so the code under test runs them as it would on a board."""

from __future__ import annotations

import stat
from pathlib import Path


def fake_tool(bin_dir: Path, name: str, script: str) -> Path:
    """A ``/bin/sh`` script named ``name`` in ``bin_dir`` that runs ``script``."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path

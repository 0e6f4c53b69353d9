"""Fixtures shared by the profiler tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH with only an empty directory (plus /bin for the shell), so no vcgencmd/nvpmodel;
    tests put their stand-ins there (tests.support.tools.fake_tool)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/bin{os.pathsep}/usr/bin")
    return bin_dir

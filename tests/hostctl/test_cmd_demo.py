"""`hostctl demo` without the packages its study needs: one line naming them and the
extra that brings them, before any broker or agent is started."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hostctl.cli import app


def test_demo_without_its_extra_names_what_to_install_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        # This machine as it is after a plain `pip install edgeprof`.
        return None if name in ("matplotlib", "ai_edge_quantizer") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    started: list[str] = []
    monkeypatch.setattr("hostctl.demo.start_fleet", lambda **_: started.append("fleet"))
    done = CliRunner().invoke(app, ["--db", str(tmp_path / "r.sqlite"), "demo"])
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines() == [
        "error: hostctl demo makes variants and draws a report, which needs "
        "ai-edge-quantizer, matplotlib: pip install 'edgeprof[demo]'"
    ]
    assert started == [] and not (tmp_path / "r.sqlite").exists()

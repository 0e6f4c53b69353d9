"""The shipped systemd unit, checked by systemd's own tools (docs/agent.md says
what it protects against): it parses, and its exposure stays "OK" or better."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "agent" / "edgeprof-agent.service"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _installed_copy(tmp_path: Path) -> Path:
    # verify wants ExecStart's program to exist: point it at this venv's agent.
    agent = Path(sys.executable).with_name("edgeprof-agent")
    text = UNIT.read_text().replace("/opt/edgeprof/venv/bin/edgeprof-agent", str(agent))
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def test_the_unit_verifies(tmp_path: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run([ANALYZE, "verify", str(_installed_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "edgeprof-agent.service" not in done.stderr, done.stderr  # no complaint about it


def test_the_units_exposure_is_ok_or_better(tmp_path: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(_installed_copy(tmp_path))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert found is not None, done.stdout[-2000:] + done.stderr
    exposure, rating = float(found.group(1)), found.group(2)
    assert exposure <= 4.0 and rating in ("OK", "SAFE"), (exposure, rating)
    for setting in ("NoNewPrivileges=", "ProtectSystem=", "CapabilityBoundingSet=~CAP_SYS_ADMIN"):
        line = next(line for line in done.stdout.splitlines() if setting in line)
        assert line.lstrip().startswith("✓"), line

"""Real agent processes (`python -m agent`) for tests: one way to start them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]


def agent_env() -> dict[str, str]:
    """The environment of a test's agent: this checkout first on the path, and none
    of the user's EDGEPROF_* settings."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for var in [v for v in env if v.startswith("EDGEPROF_")]:
        del env[var]
    return env


def spawn_agent(
    args: Sequence[str], log: IO[bytes], *, python: str = sys.executable, module: str = "agent"
) -> subprocess.Popen[bytes]:
    """Start `python -m agent ARGS` with its output in `log` (``python``: which
    interpreter, i.e. which environment and runtimes, the agent runs in; ``module``:
    another entry point of the same agent, e.g. :mod:`tests.support.heartbeat_agent`)."""
    return subprocess.Popen(
        [python, "-m", module, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=agent_env(),
        cwd=REPO,
    )

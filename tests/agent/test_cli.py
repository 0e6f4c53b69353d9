"""`edgeprof-agent`'s command line: real processes, and what the idle daemon keeps out of memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent import __version__


def _agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_version_and_help() -> None:
    done = _agent("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"edgeprof-agent {__version__}"
    done = _agent("--help")
    assert done.returncode == 0
    for flag in ("--broker", "--device-id", "--tag", "--trust", "--cache-dir", "--config"):
        assert flag in done.stdout


def test_a_bad_setting_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = _agent("--broker", "mqtt://127.0.0.1:1", "--device-id", "bad id!", "--trust", "x.pub")
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeprof-agent: error: "), done.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    done = _agent("--brokr", "mqtt://x")
    assert done.returncode == 2 and "--brokr" in done.stderr


def test_the_command_line_loads_no_typer_pydantic_psutil_or_runtime() -> None:
    # The idle agent's footprint (bench/footprint.py, target 30 MB): typer and the
    # pydantic it imports cost ~10 MB, psutil ~2.5 MB, a runtime far more.
    code = (
        "import sys, json\n"
        "from agent import cli\n"
        "from agent.config import load_settings\n"
        "args = vars(cli.build_parser().parse_args(['--broker', 'mqtt://127.0.0.1:1',"
        " '--device-id', 'd1', '--allow-unsigned']))\n"
        "args.pop('config')\n"
        "load_settings(args, env={})\n"
        "import agent.daemon\n"
        "from profiler.memory import memory_available_mb, memory_total_mb\n"
        "memory_available_mb(); memory_total_mb()\n"
        "heavy = ('typer', 'pydantic', 'rich', 'psutil', 'numpy', 'onnxruntime', 'ai_edge_litert')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []

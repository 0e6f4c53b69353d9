"""Start-up of ``hostctl --help``, against ``python -c "import typer, rich"`` measured
in the same run (the least any typer + rich CLI can cost).

Both commands run as fresh processes, interleaved (ABBA), ``--repeats`` times each;
the figure is the ratio of the medians (target <= 1.5). The report also lists the
modules of ours that ``--help`` imported and checks that no runtime, numpy, MQTT,
signing, store or logging code is among them.

Both sides read bytecode from one private cache (``PYTHONPYCACHEPREFIX``, filled by
a warm-up run of each), as an installed CLI does: pip compiles typer's and rich's at
install time, while ours in a checkout would otherwise be compiled from source on
every start wherever ``PYTHONDONTWRITEBYTECODE`` is set. ``--bytecode none`` times
the other extreme: nothing cached, every module of both sides compiled each time.

    python -m bench.startup [--repeats 30] [--bytecode cached|none] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import (
    REPO_ROOT,
    command_line,
    cpu_usage_between,
    emit,
    machine_info,
    machine_line,
    median,
    progress,
    usage_line,
    verdict,
)

TARGET_RATIO = 1.5
HELP = [sys.executable, "-m", "hostctl", "--help"]
REFERENCE = [sys.executable, "-c", "import typer, rich"]
FORBIDDEN = (
    "numpy",
    "onnx",
    "onnxruntime",
    "ai_edge_litert",
    "paho",
    "nacl",
    "cryptography",
    "ssl",
    "sqlite3",
    "matplotlib",
    "modelkit",
    "logging",
)
"""Top-level modules `hostctl --help` must not load."""


def _env(bytecode: str, cache: str) -> dict[str, str]:
    """The children's environment: one bytecode cache for both sides ("cached"), or
    none that is ever written ("none": every start compiles every module)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    if bytecode == "none":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _time(cmd: Sequence[str], env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        list(cmd),
        cwd=REPO_ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-300:]}")
    return elapsed


def _loaded_modules() -> list[str]:
    code = (
        "import sys, runpy; sys.argv = ['hostctl', '--help']\n"
        "try:\n    runpy.run_module('hostctl', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "import json; sys.stderr.write(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def run(repeats: int, bytecode: str = "cached") -> dict[str, Any]:
    before = machine_info()
    helps: list[float] = []
    refs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="edgeprof-startup-") as cache:
        env = _env(bytecode, cache)
        _time(HELP, env), _time(REFERENCE, env)  # warm the file cache (and the bytecode's)
        for i in range(repeats):
            order = (HELP, REFERENCE) if i % 2 == 0 else (REFERENCE, HELP)
            for cmd in order:
                (helps if cmd is HELP else refs).append(_time(cmd, env))
    after = machine_info()
    modules = _loaded_modules()
    ours = sorted(
        m for m in modules if m.split(".")[0] in ("hostctl", "profiler", "protocol", "modelkit")
    )
    forbidden = sorted({m.split(".")[0] for m in modules} & set(FORBIDDEN))
    ratio = median(helps) / median(refs)
    return {
        "benchmark": "startup",
        "machine": before,
        "machine_after": after,
        "cpu_usage": cpu_usage_between(before, after),
        "repeats": repeats,
        "bytecode": bytecode,
        "help_median_s": round(median(helps), 4),
        "reference_median_s": round(median(refs), 4),
        "ratio": round(ratio, 3),
        "target": TARGET_RATIO,
        "verdict": verdict(ratio, TARGET_RATIO) if not forbidden else "MISSED",
        "our_modules": ours,
        "forbidden_loaded": forbidden,
    }


def render(report: Mapping[str, Any]) -> str:
    lines = [
        f"machine: {machine_line(report['machine'])}",
        f"after: {machine_line(report['machine_after'])}; "
        f"{usage_line(report['machine'], report['machine_after'])}",
        f"`hostctl --help` median {report['help_median_s'] * 1000:.0f} ms vs "
        f"`python -c 'import typer, rich'` {report['reference_median_s'] * 1000:.0f} ms "
        f"over {report['repeats']} interleaved runs each (bytecode: {report['bytecode']})",
        f"ratio {report['ratio']:.2f} (target <= {report['target']}): {report['verdict']}",
        f"modules of ours loaded: {', '.join(report['our_modules'])}",
        f"forbidden modules loaded: {', '.join(report['forbidden_loaded']) or 'none'}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--bytecode",
        choices=("cached", "none"),
        default="cached",
        help="cached: both sides read compiled bytecode (an installed CLI); "
        "none: every module of both sides is compiled on every start",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args(argv)
    progress(f"timing {args.repeats} x 2 process starts: {command_line('bench.startup', argv)}")
    emit(run(args.repeats, args.bytecode), args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Start-up of ``hostctl --help``, against ``python -c "import typer, rich"`` measured
in the same run (the least any typer + rich CLI can cost).

Both commands run as fresh processes, interleaved (ABBA), ``--repeats`` times each;
the figure is the ratio of the medians (target <= 1.5). The report also lists the
modules of ours that ``--help`` imported and checks that no runtime, numpy, MQTT or
signing code is among them.

    python -m bench.startup [--repeats 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import (
    REPO_ROOT,
    command_line,
    emit,
    machine_info,
    machine_line,
    median,
    progress,
    verdict,
)

TARGET_RATIO = 1.5
HELP = [sys.executable, "-m", "hostctl", "--help"]
REFERENCE = [sys.executable, "-c", "import typer, rich"]
FORBIDDEN = ("numpy", "onnx", "onnxruntime", "ai_edge_litert", "paho", "nacl", "ssl")
"""Top-level modules `hostctl --help` must not load."""


def _time(cmd: Sequence[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        list(cmd), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
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


def run(repeats: int) -> dict[str, Any]:
    before = machine_info()
    _time(HELP), _time(REFERENCE)  # warm the file cache
    helps: list[float] = []
    refs: list[float] = []
    for i in range(repeats):
        order = (HELP, REFERENCE) if i % 2 == 0 else (REFERENCE, HELP)
        for cmd in order:
            (helps if cmd is HELP else refs).append(_time(cmd))
    modules = _loaded_modules()
    ours = sorted(
        m for m in modules if m.split(".")[0] in ("hostctl", "profiler", "protocol", "modelkit")
    )
    forbidden = sorted({m.split(".")[0] for m in modules} & set(FORBIDDEN))
    ratio = median(helps) / median(refs)
    return {
        "benchmark": "startup",
        "machine": before,
        "repeats": repeats,
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
        f"`hostctl --help` median {report['help_median_s'] * 1000:.0f} ms vs "
        f"`python -c 'import typer, rich'` {report['reference_median_s'] * 1000:.0f} ms "
        f"over {report['repeats']} interleaved runs each",
        f"ratio {report['ratio']:.2f} (target <= {report['target']}): {report['verdict']}",
        f"modules of ours loaded: {', '.join(report['our_modules'])}",
        f"forbidden modules loaded: {', '.join(report['forbidden_loaded']) or 'none'}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args(argv)
    progress(f"timing {args.repeats} x 2 process starts: {command_line('bench.startup', argv)}")
    emit(run(args.repeats), args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

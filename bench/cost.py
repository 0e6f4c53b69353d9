"""Cost: wall time of ``hostctl profile`` with default settings on a tiny model, and
where it goes.

``python -m bench.cost [--model tiny.tflite] [--repeats 1] [--json]``

1. total: ``.venv/bin/hostctl profile MODEL --json`` as a subprocess (the
   interpreter's start, the CLI's imports, the worker, the result on stdout);
2. the interpreter's bare start (``python -c pass``) and the CLI import
   (``python -c "import hostctl.cli"``), medians of a few runs;
3. a second, identical profile through ``profiler.runner.profile`` in this
   process with a phase callback: each phase message's arrival time splits the
   worker's life into start-up (interpreter + profiler imports), runtime import,
   load (incl. inputs and allocation), first inference, warm-up, steady state and
   the tail after the last measuring phase. The worker's ``analyzing`` message
   splits that tail in two: the worker's last memory reading and the encoding of
   the recorded samples, then the static analysis (which the worker runs itself,
   after its last memory reading), the result's transfer, the worker's exit and
   the runner's statistics. Each of those steps is also timed alone: the
   encoding and the runner's steps on samples like the run's, the analysis in a
   fresh process that has imported NumPy and the runtime first, as the worker
   has by then;
4. "rest" = total − the parts: what the CLI adds besides its imports (option
   parsing, JSON printing) plus the run-to-run difference of the two profiles.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    BenchError,
    command_line,
    emit,
    fixture_models,
    machine_info,
    machine_line,
    median,
    progress,
    resolve_model,
    result_samples_ns,
    usage_line,
)


def _wall(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(argv), capture_output=True, env=dict(env) if env else None, cwd=REPO_ROOT, check=False
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-2:]
        raise BenchError(
            f"{' '.join(argv[:3])} failed (exit {proc.returncode}): {' | '.join(tail)}"
        )
    return elapsed, proc.stdout


def _hostctl() -> list[str]:
    exe = Path(sys.executable).with_name("hostctl")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("hostctl")
    if found:
        return [found]
    return [sys.executable, "-m", "hostctl"]


def _median_wall(argv: Sequence[str], times: int) -> float:
    return median([_wall(argv)[0] for _ in range(times)])


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _samples_seconds(result: Mapping[str, Any]) -> dict[str, float]:
    """What the worker and the runner do with the recorded samples, each step timed alone.

    The worker records at most ``MAX_RECORDED_SAMPLES`` (``latency_ms.n``); the
    result keeps a thinned copy of them, which is tiled back to ``n`` (as an
    int64 array, like the worker's buffer), so each step costs what it cost on
    the run's own samples.
    """
    import array

    from profiler.runner import MAX_KEPT_SAMPLES
    from profiler.stats import latency_stats, stability_flags
    from protocol.result import decode_samples, encode_samples

    n = int(result["latency_ms"]["n"])
    kept = result_samples_ns(result) or [1000]
    samples = array.array("q", (kept * (n // len(kept) + 1))[:n])
    t0 = time.perf_counter()
    doc = encode_samples(samples)
    t1 = time.perf_counter()
    decoded = decode_samples(doc)
    t2 = time.perf_counter()
    stats = latency_stats(decoded)
    t3 = time.perf_counter()
    stability_flags(decoded, stats, None, None)
    t4 = time.perf_counter()
    # The runner's thinning of what travels in the result (profiler.runner._kept_samples).
    stride = max(1, -(-len(decoded) // MAX_KEPT_SAMPLES))
    encode_samples(decoded[::stride])
    t5 = time.perf_counter()
    return {
        "encode": t1 - t0,
        "decode": t2 - t1,
        "latency_stats": t3 - t2,
        "stability_flags": t4 - t3,
        "keep": t5 - t4,
    }


_ANALYSIS_ALONE = """
import contextlib, importlib, sys, time
import numpy  # the worker has NumPy and the runtime loaded when it analyses
with contextlib.suppress(ImportError):
    importlib.import_module(sys.argv[2])
t0 = time.perf_counter()
from profiler.analysis import analyze
analyze(sys.argv[1])
print(time.perf_counter() - t0)
"""


def _analysis_seconds(model: Path) -> float | None:
    """The worker's static analysis (incl. importing profiler.analysis), timed alone in
    a fresh process that has imported NumPy and the model's runtime first."""
    runtime_module = "onnxruntime" if model.suffix == ".onnx" else "ai_edge_litert.interpreter"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        _, out = _wall([sys.executable, "-c", _ANALYSIS_ALONE, str(model), runtime_module],
                       env=env)  # fmt: skip
        return float(out.decode().strip().splitlines()[-1])
    except (BenchError, ValueError, IndexError) as exc:
        progress(f"warning: could not time the analysis alone: {exc}")
        return None


def instrumented_profile(model: Path) -> dict[str, Any]:
    """One default profile in this process with phase timestamps; seconds per part."""
    from profiler import runner
    from profiler.device import device_info
    from profiler.environment import snapshot
    from profiler.settings import ProfileSettings

    settings = ProfileSettings()
    marks: list[tuple[str, float]] = []

    def on_phase(phase: str) -> None:
        marks.append((phase, time.perf_counter()))

    t0 = time.perf_counter()
    result = runner.profile(str(model), settings, on_phase=on_phase)
    t_end = time.perf_counter()
    if result.get("status") != "ok":
        raise BenchError(f"profile of {model.name} failed: {result.get('error')}")

    def first(phase: str) -> float:
        for name, t in marks:
            if name == phase:
                return t
        raise BenchError(f"the worker never reported phase {phase!r} (saw {marks})")

    def last(phase: str) -> float:
        for name, t in reversed(marks):
            if name == phase:
                return t
        raise BenchError(f"the worker never reported phase {phase!r}")

    phases = result.get("phases") or {}
    steady = phases.get("steady") or {}
    # Parts measured alone, to attribute the time outside the worker's phases.
    pre_spawn = _timed(device_info) + _timed(snapshot)
    samples_s = _samples_seconds(result)
    analysis_s = _analysis_seconds(model)
    json_s = _timed(lambda: json.dumps(result, indent=2))
    finishing = last("finishing")
    tail = t_end - finishing
    parts = {
        "parent_before_worker (device info + environment)": pre_spawn,
        "worker start (interpreter + profiler imports)": first("importing") - t0 - pre_spawn,
        "runtime import (numpy + runtime)": first("loading") - first("importing"),
        "load (model, inputs, allocation)": first("first_inference") - first("loading"),
        "first inference": first("warmup") - first("first_inference"),
        "warm-up phase": first("steady") - first("warmup"),
        "steady phase": finishing - first("steady"),
        "after the last phase (total)": tail,
    }
    runner_steps = (samples_s["decode"] + samples_s["latency_stats"]
                    + samples_s["stability_flags"] + samples_s["keep"])  # fmt: skip
    analyzing = [t for name, t in marks if name == "analyzing"]
    tail_parts: dict[str, float | None]
    if analyzing:
        before_analysis = analyzing[-1] - finishing
        after_analysis = t_end - analyzing[-1]
        tail_parts = {
            "worker: memory reading + encoding (finishing -> analyzing)": before_analysis,
            "  encode the recorded samples, alone": samples_s["encode"],
            "analysis, transfer, exit, runner (analyzing -> end)": after_analysis,
            "  static analysis in the worker, alone": analysis_s,
            "  runner: decode samples, alone": samples_s["decode"],
            "  runner: latency_stats, alone": samples_s["latency_stats"],
            "  runner: stability_flags, alone": samples_s["stability_flags"],
            "  runner: thin + encode the kept samples, alone": samples_s["keep"],
            "  remainder: transfer, worker exit, environment, assembly": (
                after_analysis - runner_steps - (analysis_s or 0.0)
            ),
        }
    else:  # the worker did not analyse (analysis off or failed early)
        tail_parts = {
            "encode the recorded samples (worker), alone": samples_s["encode"],
            "runner: decode + statistics + kept samples, alone": runner_steps,
            "remainder: transfer, worker exit, environment, assembly": (
                tail - samples_s["encode"] - runner_steps
            ),
        }
    return {
        "profile_wall_s": t_end - t0,
        "parts_s": parts,
        "tail_parts_s": tail_parts,
        "json_dumps_s": json_s,
        "phases_reported": {
            "load_ms": phases.get("load_ms"),
            "allocate_ms": phases.get("allocate_ms"),
            "warmup_s": (phases.get("warmup") or {}).get("seconds"),
            "warmup_runs": (phases.get("warmup") or {}).get("runs"),
            "steady_s": steady.get("seconds"),
            "steady_runs": steady.get("runs"),
            "steady_recorded": steady.get("recorded"),
            "steady_record_stride": steady.get("record_stride"),
        },
        "memory_mb": result.get("memory_mb"),
        "n": result["latency_ms"]["n"],
        "phases_seen": [name for name, _ in marks],
    }


def run(model_name: str, repeats: int, argv: Sequence[str] | None) -> dict[str, Any]:
    """The whole cost benchmark as a report dict."""
    before = machine_info()
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with fixture_models() as fixtures:
        model = resolve_model(model_name, fixtures)
        progress("interpreter start and CLI import")
        start_s = _median_wall([python, "-c", "pass"], 5)
        import_s = _median_wall([python, "-c", "import hostctl.cli"], 5)
        totals = []
        for i in range(repeats):
            progress(f"hostctl profile {model.name} --json ({i + 1}/{repeats})")
            total, out = _wall([*_hostctl(), "profile", str(model), "--json"], env=env)
            totals.append(total)
            cli_result = json.loads(out)
        progress("instrumented profile")
        inst = instrumented_profile(model)
    total = median(totals)
    accounted = start_s + (import_s - start_s) + sum(inst["parts_s"].values())
    return {
        "benchmark": "cost",
        "command": command_line("bench.cost", argv),
        "machine_before": before,
        "machine_after": machine_info(),
        "model": model.name,
        "settings": "hostctl profile defaults (warm-up >= 10 runs and 1 s, steady >= 100 runs and 5 s)",
        "total_s": total,
        "totals_s": totals,
        "cli_steady_runs": (cli_result.get("latency_ms") or {}).get("n"),
        "interpreter_start_s": start_s,
        "cli_import_s": import_s - start_s,
        "instrumented": inst,
        "rest_s": total - accounted,
        "measured_fraction": (inst["phases_reported"]["steady_s"] or 0.0) / total,
    }


def render(report: Mapping[str, Any]) -> str:
    """The breakdown as text for people."""
    inst = report["instrumented"]
    steady = inst["phases_reported"]
    total = report["total_s"]

    def row(name: str, seconds: float | None, indent: int = 2) -> str:
        if seconds is None:
            return f"{' ' * indent}{name:<{68 - indent}} {'n/a':>8}"
        return (
            f"{' ' * indent}{name:<{68 - indent}} {seconds:>7.3f} s {seconds / total * 100:>5.1f} %"
        )

    lines = [
        f"Cost: `hostctl profile {report['model']} --json` with defaults",
        f"  before: {machine_line(report['machine_before'])}",
        f"  after:  {machine_line(report['machine_after'])}",
        f"  {usage_line(report['machine_before'], report['machine_after'])}",
        f"  total wall time: {total:.3f} s (runs: "
        + ", ".join(f"{t:.3f}" for t in report["totals_s"])
        + ")",
        f"  steady-state runs: {steady['steady_runs']}, recorded {inst['n']} "
        f"(stride {steady['steady_record_stride']}); the steady phase is "
        f"{report['measured_fraction'] * 100:.1f} % of the total",
        "",
        row("interpreter start (python -c pass)", report["interpreter_start_s"]),
        row("CLI import (import hostctl.cli, minus the above)", report["cli_import_s"]),
    ]
    for name, seconds in inst["parts_s"].items():
        lines.append(row(name, seconds))
    for name, seconds in inst["tail_parts_s"].items():
        lines.append(row(name, seconds, indent=6))
    lines.append(row("rest (CLI parsing + JSON output + run-to-run)", report["rest_s"]))
    memory = inst["memory_mb"] or {}
    lines.append(f"  (json.dumps of the result alone: {inst['json_dumps_s']:.3f} s)")
    lines.append(
        f"  worker memory, MiB: peak {memory.get('peak_rss')} "
        f"({memory.get('peak_rss_source')}), after the first inference "
        f"{memory.get('rss_after_first_inference')}, at the end {memory.get('rss_end')}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.cost``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    parser.add_argument("--model", default="tiny.tflite", help="fixture name or model path")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of the hostctl command (default 1)"
    )
    args = parser.parse_args(argv)
    try:
        report = run(args.model, args.repeats, argv)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Repeatability: several profiles of the same model in a row; spread of their p50.

``python -m bench.repeatability [--models slow.tflite,slow.onnx] [--repeats 5]
[--seconds 5] [--warmup-seconds 1] [--threads 1] [--json]``

Each profile is a full ``profiler.runner.profile`` (fresh worker) with the
profiler's default phase lengths unless told otherwise. The figure is
(max p50 - min p50) / median p50, in percent; the load average before each run
and each run's own 95 % CI of p50 are reported with it, because on a shared or
throttling machine the spread says more about the machine than the profiler.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    LoopSettings,
    add_common_args,
    command_line,
    emit,
    fixture_models,
    load_avg,
    machine_info,
    machine_line,
    median,
    progress,
    resolve_model,
    run_profiler,
    threads_arg,
    usage_line,
)


def measure_model(model: Path, loop: LoopSettings, repeats: int) -> dict[str, Any]:
    """``repeats`` profiles of one model; the spread of their p50."""
    runs = []
    for i in range(repeats):
        progress(f"{model.name}: profile {i + 1}/{repeats}")
        load = load_avg()
        result = run_profiler(model, loop)
        stats = result["latency_ms"]
        runs.append(
            {
                "p50_ms": stats["p50"],
                "ci95_p50": stats["ci95_p50"],
                "p90_ms": stats["p90"],
                "n": stats["n"],
                "cov_robust": stats.get("cov_robust"),
                "flags": result.get("flags"),
                "load_avg": load,
            }
        )
    p50s = [r["p50_ms"] for r in runs]
    mid = median(p50s)
    return {
        "model": model.name,
        "p50s_ms": p50s,
        "median_p50_ms": mid,
        "spread_ms": max(p50s) - min(p50s),
        "spread_pct": (max(p50s) - min(p50s)) / mid * 100.0,
        "runs": runs,
    }


def run(
    models: Sequence[str], loop: LoopSettings, repeats: int, argv: Sequence[str] | None
) -> dict[str, Any]:
    """The whole repeatability benchmark as a report dict."""
    before = machine_info()
    results = []
    with fixture_models() as fixtures:
        for name in models:
            results.append(measure_model(resolve_model(name, fixtures), loop, repeats))
    return {
        "benchmark": "repeatability",
        "command": command_line("bench.repeatability", argv),
        "machine_before": before,
        "machine_after": machine_info(),
        "settings": {**asdict(loop), "repeats": repeats},
        "models": results,
    }


def render(report: Mapping[str, Any]) -> str:
    """The report as text for people."""
    lines = [
        f"Repeatability: {report['settings']['repeats']} profiles in a row, "
        "spread of p50 = (max - min) / median",
        f"  before: {machine_line(report['machine_before'])}",
        f"  after:  {machine_line(report['machine_after'])}",
        f"  {usage_line(report['machine_before'], report['machine_after'])}",
        f"  settings: {report['settings']}",
        "",
    ]
    for m in report["models"]:
        lines.append(
            f"  {m['model']}: spread {m['spread_pct']:.2f} % of median p50 "
            f"{m['median_p50_ms']:.4f} ms"
        )
        for r in m["runs"]:
            ci = r["ci95_p50"]
            ci_text = f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "n/a"
            load = "/".join(f"{x:.2f}" for x in r["load_avg"]) if r["load_avg"] else "n/a"
            lines.append(
                f"    p50 {r['p50_ms']:.4f} ms  CI95 {ci_text}  n={r['n']}  "
                f"load {load}  flags {r['flags']}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.repeatability``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.repeatability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(parser)
    parser.add_argument(
        "--models",
        default="slow.tflite,slow.onnx",
        help="comma-separated fixture names or model paths",
    )
    parser.add_argument("--repeats", type=int, default=5, help="profiles per model (default 5)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="steady-state seconds per profile (default 5, the profiler's)",
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=1.0,
        help="warm-up seconds per profile (default 1, the profiler's)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2")
    loop = LoopSettings(
        threads=threads_arg(args.threads),
        min_seconds=args.seconds,
        warmup_seconds=args.warmup_seconds,
    )
    try:
        report = run([m for m in args.models.split(",") if m], loop, args.repeats, argv)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

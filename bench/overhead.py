"""Overhead: the profiler's p50 against a bare loop on the same model, same threads.

``python -m bench.overhead [--models slow.tflite,tiny.onnx,...] [--rounds 5]
[--seconds 1] [--threads 1] [--json]``

For each model, rounds of *profiler* and *bare* runs alternate (AB BA ...; for
ONNX a second reference, ``session.run``, joins: ABC CBA ...), each a fresh child
process with the same warm-up and steady-state length. Per round the ratio
profiler p50 / bare p50 and the difference in µs are taken; the report gives
their medians over rounds. Targets (the issue): ratio ≤ 1.03 on a model of
≥ 1 ms, and ≤ 5 µs added per inference on a tiny model.

The bare reference for TFLite is ``interpreter.invoke()``; for ONNX it is
``session.run_with_iobinding`` on pre-bound inputs — the call the profiler
times — so that the ratio isolates what the profiler adds; the plain
``session.run(None, feed)`` loop most users write is reported alongside.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import (
    MODEL_NAMES,
    BenchError,
    LoopSettings,
    add_common_args,
    alternate,
    command_line,
    emit,
    fixture_models,
    load_avg,
    machine_info,
    machine_line,
    median,
    progress,
    quantile_ms,
    resolve_model,
    run_bare,
    run_profiler,
    threads_arg,
    usage_line,
    verdict,
)

log = logging.getLogger(__name__)

RATIO_TARGET = 1.03
"""Profiler p50 / bare p50 on a model of >= 1 ms."""
ADDED_US_TARGET = 5.0
"""Microseconds the profiler may add per inference on a tiny model."""
SLOW_MODEL_MS = 1.0
"""Models at least this slow are judged by the ratio, faster ones by µs added."""

PROFILER = "profiler"
BARE = "bare"
BARE_RUN = "bare_run"


def _labels(model: Path) -> list[str]:
    return [PROFILER, BARE, BARE_RUN] if model.suffix == ".onnx" else [PROFILER, BARE]


def _one_run(label: str, model: Path, loop: LoopSettings) -> dict[str, Any]:
    load = load_avg()
    if label == PROFILER:
        result = run_profiler(model, loop)
        stats = result["latency_ms"]
        return {
            "p50_ms": stats["p50"],
            "n": stats["n"],
            "load_avg": load,
            "runtime": result.get("runtime"),
        }
    ort_mode = "iobinding" if label == BARE else "run"
    samples = run_bare(model, loop, ort_mode=ort_mode)
    return {"p50_ms": quantile_ms(samples, 0.5), "n": len(samples), "load_avg": load}


def measure_model(model: Path, loop: LoopSettings, rounds: int) -> dict[str, Any]:
    """Alternate profiler and bare runs on one model; ratios per round and their medians."""
    labels = _labels(model)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for label in alternate(rounds, labels):
        progress(f"{model.name}: {label} (round {len(runs[label]) + 1}/{rounds})")
        runs[label].append(_one_run(label, model, loop))
    per_round = []
    for i in range(rounds):
        prof = runs[PROFILER][i]["p50_ms"]
        row: dict[str, Any] = {"profiler_p50_ms": prof}
        for ref in labels[1:]:
            bare = runs[ref][i]["p50_ms"]
            row[f"{ref}_p50_ms"] = bare
            row[f"ratio_vs_{ref}"] = prof / bare
            row[f"added_us_vs_{ref}"] = (prof - bare) * 1000.0
        per_round.append(row)
    summary: dict[str, Any] = {
        "model": model.name,
        "format": model.suffix.lstrip("."),
        "runtime": runs[PROFILER][0].get("runtime"),
        "profiler_p50_ms": median([r["p50_ms"] for r in runs[PROFILER]]),
        "rounds": per_round,
        "runs": runs,
    }
    for ref in labels[1:]:
        summary[f"{ref}_p50_ms"] = median([r["p50_ms"] for r in runs[ref]])
        summary[f"ratio_vs_{ref}"] = median([r[f"ratio_vs_{ref}"] for r in per_round])
        summary[f"added_us_vs_{ref}"] = median([r[f"added_us_vs_{ref}"] for r in per_round])
    slow = summary[f"{BARE}_p50_ms"] >= SLOW_MODEL_MS
    summary["judged_by"] = "ratio" if slow else "added_us"
    summary["target"] = RATIO_TARGET if slow else ADDED_US_TARGET
    figure = summary[f"ratio_vs_{BARE}"] if slow else summary[f"added_us_vs_{BARE}"]
    summary["verdict"] = verdict(figure, summary["target"])
    return summary


def run(
    models: Sequence[str], loop: LoopSettings, rounds: int, argv: Sequence[str] | None
) -> dict[str, Any]:
    """The whole overhead benchmark as a report dict."""
    before = machine_info()
    results = []
    with fixture_models() as fixtures:
        for name in models:
            results.append(measure_model(resolve_model(name, fixtures), loop, rounds))
    return {
        "benchmark": "overhead",
        "command": command_line("bench.overhead", argv),
        "machine_before": before,
        "machine_after": machine_info(),
        "settings": {**asdict(loop), "rounds": rounds},
        "targets": {
            "ratio_max": RATIO_TARGET,
            "added_us_max": ADDED_US_TARGET,
            "ratio_applies_from_ms": SLOW_MODEL_MS,
        },
        "models": results,
    }


def render(report: Mapping[str, Any]) -> str:
    """The report as a table for people."""
    lines = [
        "Overhead: profiler p50 vs a bare invoke()/run() loop (median over rounds)",
        f"  before: {machine_line(report['machine_before'])}",
        f"  after:  {machine_line(report['machine_after'])}",
        f"  {usage_line(report['machine_before'], report['machine_after'])}",
        f"  settings: {report['settings']}",
        "",
        f"  {'model':<13} {'profiler p50':>13} {'bare p50':>11} {'ratio':>7} {'added':>10}"
        f"  {'target':<16} verdict",
    ]
    for m in report["models"]:
        target = (
            f"ratio <= {m['target']}" if m["judged_by"] == "ratio" else f"<= {m['target']:g} us"
        )
        lines.append(
            f"  {m['model']:<13} {m['profiler_p50_ms'] * 1000:>10.2f} us "
            f"{m['bare_p50_ms'] * 1000:>8.2f} us {m['ratio_vs_bare']:>7.4f} "
            f"{m['added_us_vs_bare']:>7.3f} us  {target:<16} {m['verdict']}"
        )
        if "ratio_vs_bare_run" in m:
            lines.append(
                f"  {'':<13} vs session.run loop: {m['bare_run_p50_ms'] * 1000:.2f} us, "
                f"ratio {m['ratio_vs_bare_run']:.4f}, added {m['added_us_vs_bare_run']:.3f} us"
            )
        rounds = ", ".join(f"{r['ratio_vs_bare']:.4f}" for r in m["rounds"])
        added = ", ".join(f"{r['added_us_vs_bare']:.3f}" for r in m["rounds"])
        lines.append(f"  {'':<13} per-round ratios: {rounds}")
        lines.append(f"  {'':<13} per-round added us: {added}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.overhead``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(parser)
    parser.add_argument(
        "--models",
        default=",".join(MODEL_NAMES),
        help="comma-separated fixture names or model paths",
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternation rounds (default 5)")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="steady-state seconds of every run (default 1)"
    )
    parser.add_argument("--warmup-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    loop = LoopSettings(
        threads=threads_arg(args.threads),
        min_seconds=args.seconds,
        warmup_seconds=args.warmup_seconds,
    )
    try:
        report = run([m for m in args.models.split(",") if m], loop, args.rounds, argv)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Runtimes: the same models under LiteRT, the classic tflite-runtime and (for the
``.onnx`` twins) ONNX Runtime, interleaved in one run.

``python -m bench.runtimes [--models demo_cnn.tflite,demo_cnn_int8.tflite,slow.tflite]
[--rounds 10] [--seconds 1] [--warmup-seconds 0.5] [--threads 1]
[--tflite-runtime-python .venv-tflite-runtime/bin/python] [--json]``

tflite-runtime 2.14 needs NumPy < 2 and LiteRT is what the main venv has, so the two
cannot share one environment here: the tflite-runtime side runs the profiler's own
worker (``python -m profiler.worker`` of this checkout) with the interpreter of the
second venv scripts/test builds (``.venv-tflite-runtime``: NumPy 1.26,
tflite-runtime 2.14, no LiteRT), through ``profiler.runner.profile(worker_cmd=...)``.
Everything else is the same on every side: the runner, the measuring loop, the
settings (threads, XNNPACK on, warm-up, steady-state length, seeded inputs), the
model file. Each block is a fresh worker process; the blocks of a round run in
order A B C, the next round C B A (ABBA), so a slow drift of the machine cancels.

The figure per model is the median over rounds of the per-round ratio
``p50(side) / p50(LiteRT)`` (adjacent blocks of one round see nearly the same
machine), with a distribution-free 95 % CI of that median (sign test order
statistics, as in bench.agreement). ORT runs the model's ``.onnx`` twin (same
architecture and weights, ``modelkit``/``profiler.models``) when there is one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    BenchError,
    LoopSettings,
    add_common_args,
    alternate,
    command_line,
    cpu_usage_between,
    emit,
    fixture_models,
    machine_info,
    machine_line,
    median,
    progress,
    threads_arg,
    usage_line,
)

LITERT, CLASSIC, ORT = "litert", "tflite-runtime", "onnxruntime"
"""The sides, by their ``--runtime`` names; LiteRT is the reference."""
DEFAULT_MODELS = ("demo_cnn.tflite", "demo_cnn_int8.tflite", "slow.tflite")
DEFAULT_PYTHON = REPO_ROOT / ".venv-tflite-runtime" / "bin" / "python"
BUILD_HINT = (
    "build it with `bash scripts/test` (or: python3 -m venv .venv-tflite-runtime && "
    ".venv-tflite-runtime/bin/pip install -r requirements/tflite-runtime.txt && "
    ".venv-tflite-runtime/bin/pip install --no-deps -e .)"
)


def _models(names: Sequence[str], fixtures: Mapping[str, Path]) -> list[tuple[Path, Path | None]]:
    """(tflite model, its .onnx twin or None) for each name: a shipped demo model,
    a fixture (slow.tflite) or a path."""
    from profiler.models import demo_model

    shipped = demo_model("tflite").parent
    found = []
    for name in names:
        path = next(
            (p for p in (shipped / name, fixtures.get(name), Path(name)) if p and p.is_file()),
            None,
        )
        if path is None or path.suffix != ".tflite":
            raise BenchError(f"{name}: not a .tflite file, a shipped demo model or a fixture")
        twin = fixtures.get(path.with_suffix(".onnx").name) or path.with_suffix(".onnx")
        found.append((path, twin if twin.is_file() else None))
    return found


def _profile(model: Path, side: str, loop: LoopSettings, python: str) -> dict[str, Any]:
    from profiler.runner import profile

    settings = replace(loop.profile_settings(), runtime=side)
    worker = [python, "-m", "profiler.worker"] if side == CLASSIC else None
    doc = profile(str(model), settings, label="bench", worker_cmd=worker, analyze=False)
    if doc.get("status") != "ok":
        raise BenchError(f"{model.name} on {side} failed: {doc.get('error')}")
    if doc["runtime"]["name"] != side.replace("-", "_"):
        raise BenchError(f"{model.name}: asked for {side}, ran on {doc['runtime']['name']}")
    return dict(doc)


def _summary(values: Sequence[float]) -> dict[str, Any]:
    from profiler.compare import median_interval

    ci = median_interval(values)
    return {
        "median": median(values),
        "ci95": [ci.low, ci.high] if ci else None,
        "coverage": round(ci.coverage, 4) if ci else None,
        "rounds": list(values),
    }


def measure_model(
    model: Path, twin: Path | None, loop: LoopSettings, rounds: int, python: str
) -> dict[str, Any]:
    sides = [LITERT, CLASSIC] + ([ORT] if twin else [])
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for i, side in enumerate(alternate(rounds, sides)):
        progress(f"{model.name}: round {i // len(sides) + 1}/{rounds}, {side}")
        runs[side].append(_profile(twin if side == ORT else model, side, loop, python))

    def p50s(side: str) -> list[float]:
        return [float(doc["latency_ms"]["p50"]) for doc in runs[side]]

    report: dict[str, Any] = {"model": model.name, "onnx_twin": twin.name if twin else None}
    report["sides"] = {
        side: {
            "runtime": runs[side][0]["runtime"],
            "p50_ms": median(p50s(side)),
            "p90_ms": median([float(d["latency_ms"]["p90"]) for d in runs[side]]),
            "init_ms": median([float(d["init_ms"]) for d in runs[side]]),
            "peak_rss_mb": median([float(d["memory_mb"]["peak_rss"]) for d in runs[side]]),
            "flags": sorted({f for d in runs[side] for f in d.get("flags") or []}),
        }
        for side in sides
    }
    reference = p50s(LITERT)
    report["ratio_to_litert"] = {
        side: _summary([a / b for a, b in zip(p50s(side), reference, strict=True)])
        for side in sides
        if side != LITERT
    }
    return report


def _numpy_of(python: str) -> str | None:
    done = subprocess.run(
        [python, "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or None


def run(
    names: Sequence[str], loop: LoopSettings, rounds: int, python: str, argv: Sequence[str] | None
) -> dict[str, Any]:
    if not Path(python).is_file():
        raise BenchError(f"{python}: no tflite-runtime environment; {BUILD_HINT}")
    before = machine_info()
    started = time.time()
    with fixture_models() as fixtures:
        models = [
            measure_model(model, twin, loop, rounds, python)
            for model, twin in _models(names, fixtures)
        ]
    after = machine_info()
    return {
        "benchmark": "runtimes",
        "command": command_line("bench.runtimes", argv),
        "settings": {"rounds": rounds, **asdict(loop)},
        "machine_before": before,
        "machine_after": after,
        "usage": cpu_usage_between(before, after),
        "seconds": round(time.time() - started, 1),
        "numpy": {"main": _numpy_of(sys.executable), CLASSIC: _numpy_of(python)},
        "models": models,
    }


def _ratio_text(summary: Mapping[str, Any]) -> str:
    ci = summary["ci95"]
    band = f" (95 % CI {ci[0]:.2f}–{ci[1]:.2f})" if ci else " (too few rounds for a CI)"
    return f"{summary['median']:.2f}×{band}"


def render(report: Mapping[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"runtimes — {report['command']}",
        machine_line(report["machine_before"]),
        usage_line(report["machine_before"], report["machine_after"]),
        f"{s['rounds']} rounds ABBA, {s['min_seconds']} s steady + {s['warmup_seconds']} s "
        f"warm-up per block, threads {s['threads'] or 'default'}, XNNPACK "
        f"{'on' if s['xnnpack'] else 'off'}; NumPy {report['numpy']['main']} (LiteRT, ORT), "
        f"{report['numpy'][CLASSIC]} (tflite-runtime); {report['seconds']} s",
        "",
        "| model | runtime | p50 | p90 | init | peak RSS | p50 / LiteRT p50 (median of rounds) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        for side, info in m["sides"].items():
            rt = info["runtime"]
            name = m["onnx_twin"] if side == ORT else m["model"]
            ratio = "1 (reference)" if side == LITERT else _ratio_text(m["ratio_to_litert"][side])
            flags = f" [{', '.join(info['flags'])}]" if info["flags"] else ""
            lines.append(
                f"| {name} | {rt['name']} {rt['version']}, {rt['delegate_or_provider']}, "
                f"{rt['threads']} thread(s) | {info['p50_ms']:.3f} ms | {info['p90_ms']:.3f} ms "
                f"| {info['init_ms']:.1f} ms | {info['peak_rss_mb']:.1f} MB | {ratio}{flags} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtimes", description=__doc__)
    add_common_args(parser)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.0, help="steady state per block")
    parser.add_argument("--warmup-seconds", type=float, default=0.5)
    parser.add_argument("--tflite-runtime-python", default=str(DEFAULT_PYTHON))
    args = parser.parse_args(argv)
    loop = LoopSettings(
        threads=threads_arg(args.threads),
        warmup_seconds=args.warmup_seconds,
        min_seconds=args.seconds,
    )
    try:
        report = run(
            [m for m in args.models.split(",") if m],
            loop,
            args.rounds,
            args.tflite_runtime_python,
            argv,
        )
    except BenchError as exc:
        sys.stderr.write(f"bench.runtimes: {exc}\n")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())

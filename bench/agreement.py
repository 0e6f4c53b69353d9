"""Agreement: the profiler's p90 against MLPerf LoadGen's SingleStream p90.

``python -m bench.agreement [--models slow.tflite,slow.onnx] [--rounds 40]
[--seconds 2.5] [--min-queries 1000] [--warmup-seconds 0.5] [--threads 1] [--json]``

Needs ``mlcommons-loadgen`` (``pip install -e '.[bench]'``; module ``mlperf_loadgen``).

Both sides run the *same call on the same input*: the profiler times
``backend.invoke()`` in its worker; the LoadGen side is a child process of its
own (``python -m bench.agreement --loadgen-child``) that builds the model with
the profiler's own backend (``profiler.backends.create_backend`` with the same
ProfileSettings: runtime, threads, XNNPACK), binds the profiler's seeded input
once (``profiler.inputs.prepare_inputs``; for ONNX that is one I/O binding, the
call the profiler times is ``run_with_iobinding``), does the first inference and
the same warm-up, then lets LoadGen drive it: every query's ``issue_queries``
callback calls ``backend.invoke()`` and ``QuerySamplesComplete``. LoadGen times
each query from issue to completion; its p90 is read from the detail log
(``result_90.00_percentile_latency_ns``).

A p90 from one run of a few seconds moves by ~10 % between runs on a small
shared VM, so one pair of long runs cannot resolve ±5 %. Instead the benchmark
runs many short blocks, alternated ABBA (profiler, LoadGen; LoadGen, profiler;
...), each a fresh process set up identically, and takes the ratio profiler p90
/ LoadGen p90 *within* each round (two adjacent blocks see nearly the same
machine). The figure is the median of those per-round ratios, with a
distribution-free 95 % confidence interval of that median (order statistics of
the binomial sign test: no assumption about the noise's distribution).

Two checks of the reference itself: the SUT also times each query's model call
with ``perf_counter_ns`` (the profiler's method), so "same queries" = that p90 /
LoadGen's p90 over the very same inferences isolates what LoadGen adds per
query; and one LoadGen run with an empty SUT (no model call) measures LoadGen's
own per-query floor (issue, Python callback, completion) directly.
"""

from __future__ import annotations

import argparse
import array
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
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
    load_avg,
    machine_info,
    machine_line,
    median,
    progress,
    quantile_ms,
    resolve_model,
    run_profiler,
    threads_arg,
    usage_line,
)
from profiler.compare import median_interval

TOLERANCE = 0.05
"""|profiler p90 / LoadGen p90 - 1| must not exceed this."""
CONFIDENCE = 0.95
"""Nominal confidence of the interval around the median of per-round ratios."""
QSL_SAMPLES = 8
"""Samples LoadGen's query sample library declares (all map to the one bound input)."""

INNER_FILE = "inner_ns.bin"
"""perf_counter_ns around each query's model call inside the SUT (int64)."""
CHILD_FILE = "child.json"
"""The LoadGen child's own figures (CPU time during the test, ...)."""

PROFILER = "profiler"
LOADGEN = "loadgen"
NULL_MODEL = "-"
"""Model path that makes the LoadGen child's SUT call nothing (LoadGen's own floor)."""

_DETAIL_RE = re.compile(r'"key": "result_(\d+\.\d+)_percentile_latency_ns", "value": (\d+)')
_SUMMARY_RE = re.compile(r"^(\d+\.\d+) percentile latency \(ns\)\s*:\s*(\d+)", re.MULTILINE)


def parse_loadgen_percentiles(outdir: Path) -> dict[str, float]:
    """{'50.00': ms, '90.00': ms, ...} from LoadGen's detail log, else its summary."""
    found: dict[str, float] = {}
    detail = outdir / "mlperf_log_detail.txt"
    if detail.exists():
        found = {q: int(ns) / 1e6 for q, ns in _DETAIL_RE.findall(detail.read_text())}
    summary = outdir / "mlperf_log_summary.txt"
    if not found and summary.exists():
        found = {q: int(ns) / 1e6 for q, ns in _SUMMARY_RE.findall(summary.read_text())}
    if "90.00" not in found:
        raise BenchError(f"no 90th percentile in LoadGen's logs in {outdir}")
    return found


# --------------------------------------------------------------------------- child side


def _profiler_backend_call(model: str, loop: LoopSettings) -> Callable[[], None]:
    """The profiler's backend for ``model`` loaded, prepared and bound as its worker does;
    returns the very call the worker times (``backend.invoke``)."""
    from profiler.backends import create_backend, detect_format
    from profiler.inputs import prepare_inputs

    settings = loop.profile_settings()
    backend = create_backend(detect_format(model), settings)
    backend.load(model)
    prepared = prepare_inputs(
        backend.input_specs(),
        shapes=settings.shapes,
        inputs_path=settings.inputs_path,
        seed=settings.seed,
    )
    backend.prepare(prepared.shapes)
    backend.bind(prepared.arrays)
    invoke: Callable[[], None] = backend.invoke
    return invoke


def _warm_up(invoke: Callable[[], None], loop: LoopSettings) -> None:
    """First inference, then at least ``warmup`` runs and ``warmup_seconds``, as the worker."""
    invoke()
    deadline = time.perf_counter() + loop.warmup_seconds
    done = 0
    while done < loop.warmup or time.perf_counter() < deadline:
        invoke()
        done += 1


def loadgen_child_main() -> int:
    """``python -m bench.agreement --loadgen-child``: request on stdin, logs to its outdir."""
    import gc

    import mlperf_loadgen as lg

    request = json.loads(sys.stdin.read())
    loop = LoopSettings(**request["loop"])
    if request["model"] == NULL_MODEL:

        def invoke() -> None:
            return None
    else:
        invoke = _profiler_backend_call(request["model"], loop)
        _warm_up(invoke, loop)

    # The profiler's method applied to the very queries LoadGen times: a paired
    # comparison that machine noise cannot separate (both see the same inferences).
    clock = time.perf_counter_ns
    inner = array.array("q")
    append = inner.append
    complete = lg.QuerySamplesComplete
    response = lg.QuerySampleResponse

    def issue_queries(queries: list[Any]) -> None:
        for q in queries:
            t0 = clock()
            invoke()
            append(clock() - t0)
            complete([response(q.id, 0, 0)])

    def flush_queries() -> None:
        return None

    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.SingleStream
    settings.mode = lg.TestMode.PerformanceOnly
    settings.single_stream_expected_latency_ns = int(request["expected_latency_ns"])
    settings.min_query_count = int(request["min_queries"])
    settings.min_duration_ms = int(request["min_duration_ms"])
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = request["outdir"]
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut = lg.ConstructSUT(issue_queries, flush_queries)
    qsl = lg.ConstructQSL(QSL_SAMPLES, QSL_SAMPLES, lambda _s: None, lambda _s: None)
    gc.disable()  # as the profiler's worker during its timed loop
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    finally:
        wall = time.perf_counter() - wall0
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        gc.enable()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    outdir = Path(request["outdir"])
    (outdir / INNER_FILE).write_bytes(inner.tobytes())
    (outdir / CHILD_FILE).write_text(json.dumps({"wall_s": wall, "cpu_s": cpu}))
    return 0


# --------------------------------------------------------------------------- parent side


def run_loadgen(
    model: Path | str, loop: LoopSettings, min_queries: int, expected_ms: float
) -> dict[str, Any]:
    """One LoadGen SingleStream run in a child process: its percentiles (ms) and the SUT's."""
    import os

    with tempfile.TemporaryDirectory(prefix="edgeprof-loadgen-") as outdir:
        request = {
            "model": str(model),
            "loop": asdict(loop),
            "outdir": outdir,
            "min_queries": min_queries,
            "min_duration_ms": int(loop.min_seconds * 1000),
            "expected_latency_ns": max(1, int(expected_ms * 1e6)),
        }
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.agreement", "--loadgen-child"],
            input=json.dumps(request).encode(),
            capture_output=True,
            env=env,
            timeout=120 + 4 * loop.min_seconds,
            check=False,
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            hint = " (pip install -e '.[bench]')" if "mlperf_loadgen" in " ".join(tail) else ""
            raise BenchError(
                f"LoadGen run on {Path(str(model)).name} failed "
                f"(exit {proc.returncode}){hint}: {' | '.join(tail)}"
            )
        pct = parse_loadgen_percentiles(Path(outdir))
        found: dict[str, Any] = {"p50_ms": pct.get("50.00"), "p90_ms": pct["90.00"]}
        inner = array.array("q")
        inner.frombytes((Path(outdir) / INNER_FILE).read_bytes())
        if inner:
            found["inner_p50_ms"] = quantile_ms(inner, 0.5)
            found["inner_p90_ms"] = quantile_ms(inner, 0.9)
            found["n"] = len(inner)
        child = json.loads((Path(outdir) / CHILD_FILE).read_text())
        found["cpu_per_wall"] = round(child["cpu_s"] / child["wall_s"], 3)
        return found


def _spread(values: Sequence[float]) -> dict[str, Any]:
    # The gate's own implementation: the sign-test interval of the median.
    ci = median_interval(values, CONFIDENCE)
    return {
        "median": median(values),
        "ci95": [ci.low, ci.high] if ci else None,
        "ci_coverage": round(ci.coverage, 4) if ci else None,
        "min": min(values),
        "max": max(values),
    }


def judge(ratio: float, ci: Sequence[float] | None) -> tuple[str, str]:
    """(verdict on the median ratio, where its CI lies relative to the ±5 % band)."""
    verdict = "met" if abs(ratio - 1.0) <= TOLERANCE else "MISSED"
    if ci is None:
        return verdict, "no CI (too few rounds)"
    lo, hi = ci[0] - 1.0, ci[1] - 1.0
    if lo >= -TOLERANCE and hi <= TOLERANCE:
        return verdict, "CI inside ±5 %"
    if hi < -TOLERANCE or lo > TOLERANCE:
        return verdict, "CI outside ±5 %"
    return verdict, "CI straddles the ±5 % boundary (not resolved)"


def measure_model(model: Path, loop: LoopSettings, rounds: int, min_queries: int) -> dict[str, Any]:
    """Alternate short profiler and LoadGen blocks on one model; the per-round p90 ratios."""
    prof_runs: list[dict[str, Any]] = []
    lg_runs: list[dict[str, Any]] = []
    expected_ms = 2.0
    started = time.monotonic()
    for label in alternate(rounds, [PROFILER, LOADGEN]):
        load = load_avg()
        if label == PROFILER:
            stats = run_profiler(model, loop)["latency_ms"]
            expected_ms = stats["p50"]
            prof_runs.append(
                {"p50_ms": stats["p50"], "p90_ms": stats["p90"], "n": stats["n"], "load_avg": load}
            )
        else:
            run = run_loadgen(model, loop, min_queries, expected_ms)
            run["load_avg"] = load
            lg_runs.append(run)
        if len(prof_runs) == len(lg_runs):
            p, g = prof_runs[-1], lg_runs[-1]
            progress(
                f"{model.name}: round {len(lg_runs)}/{rounds}: p90 profiler "
                f"{p['p90_ms']:.3f} / LoadGen {g['p90_ms']:.3f} ms = "
                f"{p['p90_ms'] / g['p90_ms']:.4f}"
            )
    ratios = [p["p90_ms"] / g["p90_ms"] for p, g in zip(prof_runs, lg_runs, strict=True)]
    p50_ratios = [
        p["p50_ms"] / g["p50_ms"]
        for p, g in zip(prof_runs, lg_runs, strict=True)
        if g.get("p50_ms")
    ]
    same = [g["inner_p90_ms"] / g["p90_ms"] for g in lg_runs if g.get("inner_p90_ms")]
    # The profiler's p90 against the SUT's own perf_counter_ns p90 of the adjacent
    # LoadGen block: both time backend.invoke() alone, so this is the model call
    # under LoadGen vs under the profiler, without LoadGen's per-query cost.
    call = [
        p["p90_ms"] / g["inner_p90_ms"]
        for p, g in zip(prof_runs, lg_runs, strict=True)
        if g.get("inner_p90_ms")
    ]
    summary = _spread(ratios)
    verdict, resolution = judge(summary["median"], summary["ci95"])
    return {
        "model": model.name,
        "profiler_p90_ms": median([r["p90_ms"] for r in prof_runs]),
        "loadgen_p90_ms": median([r["p90_ms"] for r in lg_runs]),
        "profiler_p50_ms": median([r["p50_ms"] for r in prof_runs]),
        "loadgen_p50_ms": median(
            [r["p50_ms"] for r in lg_runs if r["p50_ms"] is not None] or [float("nan")]
        ),
        "ratios": ratios,
        "ratio": summary["median"],
        "ratio_ci95": summary["ci95"],
        "ratio_ci_coverage": summary["ci_coverage"],
        "deviation_pct": (summary["median"] - 1.0) * 100.0,
        "verdict": verdict,
        "resolution": resolution,
        "p50_ratio": _spread(p50_ratios),
        "same_queries_ratios": same,
        "same_queries_ratio": _spread(same) if same else None,
        "model_call_ratio": _spread(call) if call else None,
        "loadgen_cpu_per_wall": median([g["cpu_per_wall"] for g in lg_runs]),
        "seconds": round(time.monotonic() - started, 1),
        "profiler_runs": prof_runs,
        "loadgen_runs": lg_runs,
    }


def loadgen_floor(loop: LoopSettings, min_queries: int) -> dict[str, Any]:
    """LoadGen with an SUT that calls nothing: its own per-query latency (µs)."""
    progress("LoadGen with an empty SUT (its own per-query cost)")
    run = run_loadgen(NULL_MODEL, replace(loop, min_seconds=1.0), min_queries, 0.001)
    return {
        "p50_us": run["p50_ms"] * 1e3 if run["p50_ms"] is not None else None,
        "p90_us": run["p90_ms"] * 1e3,
        "n": run.get("n"),
        "cpu_per_wall": run["cpu_per_wall"],
    }


def run(
    models: Sequence[str],
    loop: LoopSettings,
    rounds: int,
    min_queries: int,
    argv: Sequence[str] | None,
) -> dict[str, Any]:
    """The whole agreement benchmark as a report dict."""
    before = machine_info()
    results = []
    floor = loadgen_floor(loop, min_queries)
    with fixture_models() as fixtures:
        for name in models:
            results.append(measure_model(resolve_model(name, fixtures), loop, rounds, min_queries))
    after = machine_info()
    return {
        "benchmark": "agreement",
        "command": command_line("bench.agreement", argv),
        "machine_before": before,
        "machine_after": after,
        "cpu_usage": cpu_usage_between(before, after),
        "settings": {
            **asdict(loop),
            "rounds": rounds,
            "loadgen_min_queries": min_queries,
            "loadgen_min_duration_s": loop.min_seconds,
            "loadgen_scenario": "SingleStream",
            "confidence": CONFIDENCE,
        },
        "target": {"tolerance_pct": TOLERANCE * 100},
        "loadgen_floor": floor,
        "models": results,
    }


def _ci_text(s: Mapping[str, Any]) -> str:
    ci = s.get("ci95")
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "n/a"


def render(report: Mapping[str, Any]) -> str:
    """The report as a table for people."""
    floor = report["loadgen_floor"]
    lines = [
        "Agreement: profiler p90 vs MLPerf LoadGen SingleStream p90 "
        "(median of per-round ratios, ABBA, distribution-free 95 % CI)",
        f"  before: {machine_line(report['machine_before'])}",
        f"  after:  {machine_line(report['machine_after'])}",
        f"  {usage_line(report['machine_before'], report['machine_after'])}",
        f"  settings: {report['settings']}",
        f"  LoadGen's own per-query latency (empty SUT): p50 {floor['p50_us']:.1f} µs, "
        f"p90 {floor['p90_us']:.1f} µs over {floor['n']} queries",
        "",
        f"  {'model':<13} {'profiler p90':>13} {'LoadGen p90':>12} {'ratio':>7} "
        f"{'95 % CI':>18}  target  verdict",
    ]
    for m in report["models"]:
        lines.append(
            f"  {m['model']:<13} {m['profiler_p90_ms']:>10.3f} ms {m['loadgen_p90_ms']:>9.3f} ms "
            f"{m['ratio']:>7.4f} {_ci_text({'ci95': m['ratio_ci95']}):>18}  "
            f"±{report['target']['tolerance_pct']:g} %   {m['verdict']} ({m['resolution']})"
        )
        lines.append(
            f"  {'':<13} per-round p90 ratios: " + ", ".join(f"{r:.3f}" for r in m["ratios"])
        )
        lines.append(
            f"  {'':<13} p50 ratio {m['p50_ratio']['median']:.4f} "
            f"CI {_ci_text(m['p50_ratio'])}; p50s {m['profiler_p50_ms']:.3f} / "
            f"{m['loadgen_p50_ms']:.3f} ms"
        )
        if m.get("same_queries_ratio"):
            s, c = m["same_queries_ratio"], m["model_call_ratio"]
            lines.append(
                f"  {'':<13} same queries (SUT's perf_counter_ns p90 / LoadGen p90): "
                f"{s['median']:.4f} CI {_ci_text(s)}"
            )
            lines.append(
                f"  {'':<13} model call (profiler p90 / SUT's perf_counter_ns p90): "
                f"{c['median']:.4f} CI {_ci_text(c)}"
            )
        lines.append(
            f"  {'':<13} LoadGen child CPU/wall {m['loadgen_cpu_per_wall']:.3f}, "
            f"{m['seconds']:.0f} s"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.agreement``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--loadgen-child"]:
        return loadgen_child_main()
    parser = argparse.ArgumentParser(
        prog="python -m bench.agreement",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(parser)
    parser.add_argument(
        "--models",
        default="slow.tflite,slow.onnx",
        help="comma-separated fixture names or model paths (>= 1 ms models)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=40,
        help="ABBA rounds, each one profiler and one LoadGen block (default 40: "
        "20 could not resolve ±5 %% on a 2-vCPU VM)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.5,
        help="minimum duration of each block, both sides (default 2.5)",
    )
    parser.add_argument(
        "--min-queries",
        type=int,
        default=1000,
        help="LoadGen min_query_count and the profiler's --runs per block (default 1000)",
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=0.5,
        help="warm-up before each block, both sides (default 0.5)",
    )
    args = parser.parse_args(args_list)
    loop = LoopSettings(
        threads=threads_arg(args.threads),
        runs=args.min_queries,
        min_seconds=args.seconds,
        warmup_seconds=args.warmup_seconds,
    )
    try:
        report = run(
            [m for m in args.models.split(",") if m], loop, args.rounds, args.min_queries, argv
        )
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Agreement: the profiler's p90 against MLPerf LoadGen's SingleStream p90.

``python -m bench.agreement [--models slow.tflite,slow.onnx] [--rounds 3]
[--seconds 10] [--min-queries 1000] [--threads 1] [--json]``

Needs ``mlcommons-loadgen`` (``pip install -e '.[bench]'``; module ``mlperf_loadgen``).

LoadGen runs in a child process of its own (as the profiler's worker does): a
SUT that runs the model with the same runtime, threads and XNNPACK setting,
and a QSL of a few pre-generated seeded samples. The model is warmed up for as
long as the profiler warms up before LoadGen starts (SingleStream has no
warm-up of its own). LoadGen issues one query at a time and measures each
from issue to ``QuerySamplesComplete``; its p90 is read from the detail log
(``result_90.00_percentile_latency_ns``) in a temporary directory. Profiler and
LoadGen runs alternate (AB BA ...); the figure is the median over rounds of
profiler p90 / LoadGen p90, target within ±5 %.

Separate runs see different machine noise, and a p90 is where noise shows. So
the SUT also times each query's model call with ``perf_counter_ns`` (the
profiler's method) and the report adds that p90 / LoadGen's p90 *over the same
queries*: a paired figure that isolates the methods (LoadGen's own per-query
cost and what it counts) from the machine.
"""

from __future__ import annotations

import argparse
import array
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
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
    run_profiler,
    threads_arg,
    usage_line,
)

TOLERANCE = 0.05
"""|profiler p90 / LoadGen p90 - 1| must not exceed this."""
QSL_SAMPLES = 8
"""Pre-generated samples in the query sample library."""

INNER_FILE = "inner_ns.bin"
"""perf_counter_ns around each query's model call inside the SUT (int64)."""

PROFILER = "profiler"
LOADGEN = "loadgen"

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


def _make_sut_call(model: str, loop: LoopSettings) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(run sample i, run the bound sample) for the model, as the profiler's backends do."""
    import numpy as np

    rng = np.random.default_rng(loop.seed)
    if model.endswith(".tflite"):
        from ai_edge_litert import interpreter as litert

        resolver = litert.OpResolverType
        interp = litert.Interpreter(
            model_path=model,
            num_threads=loop.threads,
            experimental_op_resolver_type=(
                resolver.AUTO if loop.xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
        interp.allocate_tensors()
        detail = interp.get_input_details()[0]
        samples = [rng.standard_normal(size=tuple(detail["shape"]), dtype=np.float32)
                   .astype(detail["dtype"]) for _ in range(QSL_SAMPLES)]
        index = detail["index"]

        def run_tflite(i: int) -> None:
            interp.set_tensor(index, samples[i])
            interp.invoke()

        interp.set_tensor(index, samples[0])
        return run_tflite, interp.invoke
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if loop.threads is not None:
        options.intra_op_num_threads = loop.threads
    session = ort.InferenceSession(model, sess_options=options,
                                   providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    samples = [rng.standard_normal(size=tuple(inp.shape), dtype=np.float32)
               for _ in range(QSL_SAMPLES)]
    binding = session.io_binding()
    for out in session.get_outputs():
        binding.bind_output(out.name)

    def run_onnx(i: int) -> None:
        # The same call the profiler times (run_with_iobinding), on this query's sample.
        binding.bind_cpu_input(inp.name, samples[i])
        session.run_with_iobinding(binding)

    binding.bind_cpu_input(inp.name, samples[0])
    return run_onnx, lambda: session.run_with_iobinding(binding)


def loadgen_child_main() -> int:
    """``python -m bench.agreement --loadgen-child``: request on stdin, logs to its outdir."""
    import mlperf_loadgen as lg

    request = json.loads(sys.stdin.read())
    loop = LoopSettings(**request["loop"])
    run_sample, invoke = _make_sut_call(request["model"], loop)
    invoke()
    deadline = time.perf_counter() + loop.warmup_seconds
    done = 0
    while done < loop.warmup or time.perf_counter() < deadline:
        invoke()
        done += 1

    # The profiler's method applied to the very queries LoadGen times: a paired
    # comparison that machine noise cannot separate (both see the same inferences).
    clock = time.perf_counter_ns
    inner = array.array("q")

    def issue_queries(queries: list[Any]) -> None:
        for q in queries:
            t0 = clock()
            run_sample(q.index)
            inner.append(clock() - t0)
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0)])

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
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    (Path(request["outdir"]) / INNER_FILE).write_bytes(inner.tobytes())
    return 0


# --------------------------------------------------------------------------- parent side


def run_loadgen(model: Path, loop: LoopSettings, min_queries: int, expected_ms: float
                ) -> dict[str, float]:
    """One LoadGen SingleStream run in a child process; its percentiles in ms."""
    import os

    with tempfile.TemporaryDirectory(prefix="edgeprof-loadgen-") as outdir:
        request = {
            "model": str(model), "loop": asdict(loop), "outdir": outdir,
            "min_queries": min_queries, "min_duration_ms": int(loop.min_seconds * 1000),
            "expected_latency_ns": int(expected_ms * 1e6),
        }
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p
        )
        proc = subprocess.run(
            [sys.executable, "-m", "bench.agreement", "--loadgen-child"],
            input=json.dumps(request).encode(), capture_output=True, env=env,
            timeout=120 + 4 * loop.min_seconds, check=False,
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            hint = " (pip install -e '.[bench]')" if "mlperf_loadgen" in " ".join(tail) else ""
            raise BenchError(f"LoadGen run on {model.name} failed (exit {proc.returncode})"
                             f"{hint}: {' | '.join(tail)}")
        found: dict[str, float] = parse_loadgen_percentiles(Path(outdir))
        inner_path = Path(outdir) / INNER_FILE
        if inner_path.exists():
            inner = array.array("q")
            inner.frombytes(inner_path.read_bytes())
            if inner:
                found["inner_50"] = quantile_ms(inner, 0.5)
                found["inner_90"] = quantile_ms(inner, 0.9)
                found["inner_n"] = float(len(inner))
        return found


def measure_model(model: Path, loop: LoopSettings, rounds: int, min_queries: int
                  ) -> dict[str, Any]:
    """Alternate profiler and LoadGen runs on one model; p90 ratios and their median."""
    prof_runs: list[dict[str, Any]] = []
    lg_runs: list[dict[str, Any]] = []
    expected_ms = 1.0
    for label in alternate(rounds, [PROFILER, LOADGEN]):
        load = load_avg()
        if label == PROFILER:
            progress(f"{model.name}: profiler (round {len(prof_runs) + 1}/{rounds})")
            stats = run_profiler(model, loop)["latency_ms"]
            expected_ms = stats["p50"]
            prof_runs.append({"p50_ms": stats["p50"], "p90_ms": stats["p90"],
                              "n": stats["n"], "ci95_p90": stats["ci95_p90"], "load_avg": load})
        else:
            progress(f"{model.name}: LoadGen (round {len(lg_runs) + 1}/{rounds})")
            pct = run_loadgen(model, loop, min_queries, expected_ms)
            lg_runs.append({"p50_ms": pct.get("50.00"), "p90_ms": pct["90.00"],
                            "inner_p50_ms": pct.get("inner_50"),
                            "inner_p90_ms": pct.get("inner_90"),
                            "inner_n": pct.get("inner_n"), "load_avg": load})
    ratios = [p["p90_ms"] / g["p90_ms"] for p, g in zip(prof_runs, lg_runs, strict=True)]
    ratio = median(ratios)
    inner = [g["inner_p90_ms"] / g["p90_ms"] for g in lg_runs if g.get("inner_p90_ms")]
    return {
        "model": model.name,
        "profiler_p90_ms": median([r["p90_ms"] for r in prof_runs]),
        "loadgen_p90_ms": median([r["p90_ms"] for r in lg_runs]),
        "profiler_p50_ms": median([r["p50_ms"] for r in prof_runs]),
        "loadgen_p50_ms": median([r["p50_ms"] for r in lg_runs if r["p50_ms"] is not None]
                                 or [float("nan")]),
        "ratios": ratios,
        "same_queries_ratios": inner,
        "same_queries_ratio": median(inner) if inner else None,
        "ratio": ratio,
        "deviation_pct": (ratio - 1.0) * 100.0,
        "verdict": "met" if abs(ratio - 1.0) <= TOLERANCE else "MISSED",
        "profiler_runs": prof_runs,
        "loadgen_runs": lg_runs,
    }


def run(models: Sequence[str], loop: LoopSettings, rounds: int, min_queries: int,
        argv: Sequence[str] | None) -> dict[str, Any]:
    """The whole agreement benchmark as a report dict."""
    before = machine_info()
    results = []
    with fixture_models() as fixtures:
        for name in models:
            results.append(measure_model(resolve_model(name, fixtures), loop, rounds,
                                         min_queries))
    return {
        "benchmark": "agreement",
        "command": command_line("bench.agreement", argv),
        "machine_before": before,
        "machine_after": machine_info(),
        "settings": {**asdict(loop), "rounds": rounds, "loadgen_min_queries": min_queries,
                     "loadgen_min_duration_s": loop.min_seconds,
                     "loadgen_scenario": "SingleStream"},
        "target": {"tolerance_pct": TOLERANCE * 100},
        "models": results,
    }


def render(report: Mapping[str, Any]) -> str:
    """The report as a table for people."""
    lines = [
        "Agreement: profiler p90 vs MLPerf LoadGen SingleStream p90 (median over rounds)",
        f"  before: {machine_line(report['machine_before'])}",
        f"  after:  {machine_line(report['machine_after'])}",
        f"  {usage_line(report['machine_before'], report['machine_after'])}",
        f"  settings: {report['settings']}",
        "",
        f"  {'model':<13} {'profiler p90':>13} {'LoadGen p90':>12} {'ratio':>7} "
        f"{'(p50s)':>20}  target    verdict",
    ]
    for m in report["models"]:
        lines.append(
            f"  {m['model']:<13} {m['profiler_p90_ms']:>10.3f} ms {m['loadgen_p90_ms']:>9.3f} ms "
            f"{m['ratio']:>7.4f} {m['profiler_p50_ms']:>8.3f}/{m['loadgen_p50_ms']:.3f} ms  "
            f"±{report['target']['tolerance_pct']:g} %     {m['verdict']}"
        )
        lines.append(f"  {'':<13} per-round ratios: "
                     + ", ".join(f"{r:.4f}" for r in m["ratios"]))
        if m.get("same_queries_ratio") is not None:
            lines.append(
                f"  {'':<13} same queries, perf_counter_ns around the model call / LoadGen p90: "
                f"{m['same_queries_ratio']:.4f} (rounds: "
                + ", ".join(f"{r:.4f}" for r in m["same_queries_ratios"]) + ")"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.agreement``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--loadgen-child"]:
        return loadgen_child_main()
    parser = argparse.ArgumentParser(prog="python -m bench.agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--models", default="slow.tflite,slow.onnx",
                        help="comma-separated fixture names or model paths (>= 1 ms models)")
    parser.add_argument("--rounds", type=int, default=3, help="alternation rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="minimum duration of each profiler and LoadGen run (default 10)")
    parser.add_argument("--min-queries", type=int, default=1000,
                        help="LoadGen min_query_count and the profiler's --runs (default 1000)")
    parser.add_argument("--warmup-seconds", type=float, default=1.0)
    args = parser.parse_args(args_list)
    loop = LoopSettings(threads=threads_arg(args.threads), runs=args.min_queries,
                        min_seconds=args.seconds, warmup_seconds=args.warmup_seconds)
    try:
        report = run([m for m in args.models.split(",") if m], loop, args.rounds,
                     args.min_queries, argv)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The measuring child process: ``python -m profiler.worker``.

Protocol (the runner's side is :func:`profiler.runner.run_child`): the request
is one JSON object on stdin, ``{"mode": "measure"|"analyze"|"probe"|"external_data",
"model_path": ..., "settings": {...}, "reply_fd": N, "lifeline_fd": L,
"parent_pid": P}``; the worker dies with its parent (profiler.workers) and
runs under ``settings.max_memory_mb`` (profiler.limits). Replies are JSON lines
on file descriptor N (never stdout: runtimes print there):
``{"type": "phase", "phase": P}`` as the work goes on, ``{"type": "inputs", "data":
{...}}`` once the inputs are prepared (how they were made and their shapes: the
result's ``settings.inputs``, sent early so that a failure later still reports
them), then exactly one ``{"type": "result", "data": {...}}`` or ``{"type": "error",
"code": C, "message": M}``.
"""

from __future__ import annotations

import array
import gc
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from profiler import limits
from profiler.errors import INTERNAL, OUT_OF_MEMORY, RUNTIME_ERROR, ProfilerError
from profiler.memory import read_rss
from profiler.names import display_name, set_display_names
from profiler.phases import phase_words
from profiler.settings import ProfileSettings
from protocol.result import encode_samples

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]


class Reporter:
    """Writes protocol messages to the reply channel, flushing each one."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.phase = "starting"
        self.runtime: dict[str, Any] | None = None
        """What runs the model, once known: sent along with an error too."""
        self.inputs: dict[str, Any] | None = None
        """How the inputs were made, once they are (``settings.inputs``)."""

    def send(self, message: dict[str, Any]) -> None:
        self._stream.write(json.dumps(message, allow_nan=False) + "\n")
        self._stream.flush()

    def prepared(self, inputs: dict[str, Any]) -> None:
        """Report the prepared inputs (their description) to the runner."""
        self.inputs = inputs
        self.send({"type": "inputs", "data": inputs})

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.send({"type": "phase", "phase": phase})


RANDOM_INPUT_PHASES = ("first_inference", "warmup", "steady")
"""Phases whose runtime failure may come from the values of generated inputs."""

MAX_RECORDED_SAMPLES = 100_000
"""The steady state keeps at most this many per-run samples (see :func:`_timed_loop`)."""


@dataclass
class LoopOutcome:
    """What a timed loop did: every run counted, a bounded sample of them kept."""

    samples: array.array[int]
    """Per-run latencies (ns) of every ``stride``-th run, in time order."""
    runs: int
    """Runs performed (timed), recorded or not."""
    elapsed_ns: int
    capped: bool
    """True when ``max_ns`` stopped the loop before the minima were met."""
    stride: int


def _timed_loop(
    invoke: Callable[[], None],
    min_runs: int,
    min_ns: int,
    max_ns: int,
    max_samples: int = MAX_RECORDED_SAMPLES,
) -> LoopOutcome:
    """Run until both minima are met or ``max_ns`` passed; only ``invoke`` is timed.

    Every run is timed the same way, but at most ``max_samples`` are kept: when
    the buffer fills, every other kept sample is dropped and from then on only
    every ``stride``-th run (stride doubling each time) is recorded. The kept
    samples stay evenly spread over the whole run, in time order, so
    percentiles and the drift test see all of it; memory stays bounded
    (8 bytes a sample) and a microsecond model, which runs millions of times
    in the default 5 s, neither inflates the worker's peak RSS (reported as
    the model's) nor costs seconds of statistics afterwards.
    """
    clock = time.perf_counter_ns
    samples: array.array[int] = array.array("q")
    append = samples.append
    stride = 1
    runs = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed call would show up as an outlier
    try:
        start = clock()
        while True:
            t0 = clock()
            invoke()
            t1 = clock()
            runs += 1
            if runs % stride == 0:
                append(t1 - t0)
                if len(samples) >= max_samples:
                    del samples[1::2]
                    stride *= 2
            elapsed = t1 - start
            if runs >= min_runs and elapsed >= min_ns:
                return LoopOutcome(samples, runs, elapsed, False, stride)
            if elapsed >= max_ns:
                return LoopOutcome(samples, runs, elapsed, True, stride)
    finally:
        if gc_was_enabled:
            gc.enable()


def _mb(value: float) -> float:
    return round(value, 3)


def measure_and_analyze(
    model_path: str,
    settings: ProfileSettings,
    reporter: Reporter,
    *,
    with_analysis: bool,
    env: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`measure`, then (optionally) the static analysis in the same process.

    The analysis runs after the last memory reading, so parsing the model never
    counts towards the peak reported as the model's; doing it here rather than
    in a second child saves a process start and the imports (noticeable on a
    Raspberry Pi, and on a host running many agents). A failed analysis never
    fails the measurement: ``analysis`` then holds only ``model.analysis_error``.
    """
    data = measure(model_path, settings, reporter, env)
    if with_analysis:
        try:
            data["analysis"] = analyze(model_path, settings, reporter)
        except Exception as exc:  # the measurement stands without it
            log.debug("analysis failed: %s", exc)
            # One line in model.analysis_error says why params/MACs are missing
            # (e.g. tflite-runtime alone ships no TFLite schema to read the file with).
            err = _error_for(exc, "analyzing", model_path)
            data["analysis"] = {"model": {"analysis_error": err.message}}
    return data


def measure(
    model_path: str,
    settings: ProfileSettings,
    reporter: Reporter,
    env: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load, warm up and time the model; the worker's part of the result document.

    ``env`` is what the parent measured before starting this worker:
    ``{"root": sysfs root, "idle_c": idle temperature}`` (for ``--cool-down``).
    """
    from profiler.backends import create_backend, detect_format

    reporter.enter("importing")
    fmt = detect_format(model_path)
    import numpy  # noqa: F401  (counted in rss_after_imports like the runtime itself)

    backend = create_backend(fmt, settings)
    reporter.runtime = backend.runtime_info()
    rss_imports = read_rss().rss_mb

    reporter.enter("loading")
    t0 = time.perf_counter_ns()
    backend.load(model_path)
    load_ns = time.perf_counter_ns() - t0

    reporter.enter("inputs")
    from profiler.inputs import prepare_inputs

    specs = backend.input_specs()
    prepared = prepare_inputs(
        specs,
        shapes=settings.shapes,
        inputs_path=settings.inputs_path,
        seed=settings.seed,
        values=settings.input_values,
        ranges=settings.input_ranges,
    )
    reporter.prepared(prepared.description)
    if settings.eval_path:
        # A bad --eval file must fail now, not after the whole measurement. Only
        # headers and labels are read: the data set must not count as the model's memory.
        from profiler.accuracy import check_eval_file

        check_eval_file(settings.eval_path, specs, backend.output_specs())
    reporter.enter("loading")
    t0 = time.perf_counter_ns()
    backend.prepare(prepared.shapes)
    allocate_ns = time.perf_counter_ns() - t0
    reporter.runtime = backend.runtime_info()
    backend.bind(prepared.arrays)
    rss_load = read_rss().rss_mb

    reporter.enter("first_inference")
    t0 = time.perf_counter_ns()
    backend.invoke()
    first_ns = time.perf_counter_ns() - t0
    rss_first = read_rss().rss_mb

    max_ns = int(settings.max_seconds * 1e9)
    reporter.enter("warmup")
    warm_runs = 0
    warm_ns = 0
    if settings.warmup > 0 or settings.warmup_seconds > 0:
        warm = _timed_loop(
            backend.invoke, settings.warmup, int(settings.warmup_seconds * 1e9), max_ns, 1024
        )
        warm_runs, warm_ns = warm.runs, warm.elapsed_ns
        del warm

    cool_down = _cool_down(settings, reporter, env or {}) if settings.cool_down else None

    reporter.enter("steady")
    blocks = None
    # CLOCK_MONOTONIC, the parent's sampling clock: its power and thermal
    # samples are cut to exactly this window.
    steady_start_ns = time.monotonic_ns()
    if settings.sustained_s is not None:
        steady, blocks = _sustained_loop(backend.invoke, settings.sustained_s)
    else:
        steady = _timed_loop(backend.invoke, settings.runs, int(settings.min_seconds * 1e9), max_ns)
    steady_end_ns = time.monotonic_ns()
    runtime = backend.runtime_info()

    # The model's memory is read here, before the accuracy phase: evaluation
    # loads the whole labelled set, whose size says nothing about the model.
    end = read_rss()
    accuracy = None
    accuracy_error = None
    with_eval = None
    if settings.eval_path:
        reporter.enter("accuracy")
        from profiler.accuracy import evaluate_top1

        try:
            accuracy = evaluate_top1(backend, settings.eval_path)
        except Exception as exc:  # the latency already measured stands without it
            accuracy_error = _error_for(exc, "accuracy", model_path).to_dict()
        with_eval = read_rss()

    per_op = per_op_info = None
    if settings.per_op:
        per_op, per_op_info = _per_op_pass(fmt, model_path, settings, reporter, prepared.arrays)

    reporter.enter("finishing")
    return {
        "format": fmt,
        "runtime": runtime,
        "inputs": prepared.description,
        "outputs": [
            {"name": s.name, "shape": list(s.shape), "dtype": s.dtype}
            for s in backend.output_specs()
        ],
        "init_ms": (load_ns + allocate_ns) / 1e6,
        "first_inference_ms": first_ns / 1e6,
        "samples": encode_samples(steady.samples),
        "phases": {
            "load_ms": load_ns / 1e6,
            "allocate_ms": allocate_ns / 1e6,
            "warmup": {
                "runs": warm_runs,
                "seconds": warm_ns / 1e9,
                "min_runs": settings.warmup,
                "min_seconds": settings.warmup_seconds,
            },
            "steady": {
                "runs": steady.runs,
                "recorded": len(steady.samples),
                "record_stride": steady.stride,
                "seconds": steady.elapsed_ns / 1e9,
                "min_runs": settings.runs,
                "min_seconds": settings.min_seconds,
                "max_seconds": settings.max_seconds,
                "capped": steady.capped,
                "start_ns": steady_start_ns,
                "end_ns": steady_end_ns,
                "clock": "CLOCK_MONOTONIC",
            },
            "cool_down": cool_down,
            "gc_disabled": True,
            "timer": "time.perf_counter_ns",
        },
        "accuracy": accuracy,
        "accuracy_error": accuracy_error,
        "blocks": blocks,
        "per_op": per_op,
        "per_op_info": per_op_info,
        "memory_mb": {
            "rss_after_imports": _mb(rss_imports),
            "rss_after_load": _mb(rss_load),
            "rss_after_first_inference": _mb(rss_first),
            "rss_end": _mb(end.rss_mb),
            "load_delta": _mb(rss_load - rss_imports),
            # This process's own peak (its address space is new since exec), or
            # None where /proc is absent; the runner prefers it to wait4's ru_maxrss.
            "vm_hwm": _mb(end.hwm_mb) if end.source == "proc" else None,
            # The worker's peak including the --eval data set (null without --eval).
            "peak_rss_with_eval": (
                _mb(with_eval.hwm_mb)
                if with_eval is not None and with_eval.source == "proc"
                else None
            ),
        },
    }


def _sustained_loop(
    invoke: Callable[[], None], duration_s: float
) -> tuple[LoopOutcome, list[dict[str, Any]]]:
    """The sustained steady state: back-to-back timed blocks (profiler.sustained)."""
    from profiler.sustained import run_blocks

    def block(min_runs: int, min_ns: int, max_ns: int) -> LoopOutcome:
        return _timed_loop(invoke, min_runs, min_ns, max_ns)

    kept, blocks, runs, elapsed = run_blocks(block, duration_s)
    samples: array.array[int] = array.array("q", kept)
    stride = max(1, runs // max(1, len(kept)))
    return LoopOutcome(samples, runs, elapsed, False, stride), blocks


def _cool_down(
    settings: ProfileSettings, reporter: Reporter, env: dict[str, Any]
) -> dict[str, Any]:
    """Wait (bounded) until the CPU is back within the margin of the parent's idle reading."""
    from profiler.environment import cpu_temperature
    from profiler.sustained import wait_until_cool

    reporter.enter("cooling")
    root = str(env.get("root") or "/")
    idle = env.get("idle_c")
    limit = max(0.0, settings.cool_down_max_s - float(env.get("waited_s") or 0.0))
    result = wait_until_cool(
        lambda: cpu_temperature(root)[0],
        float(idle) if isinstance(idle, (int, float)) else None,
        settings.cool_down_margin_c,
        limit,
    )
    result["idle_c"] = idle
    result["parent"] = env.get("settle")
    return result


def _per_op_pass(
    fmt: str, model_path: str, settings: ProfileSettings, reporter: Reporter, feed: Any
) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """The separate per-op profiling pass (never the timed loop); see profiler.per_op."""
    from profiler import per_op

    if fmt != "onnx":
        return None, per_op.unavailable(per_op.LITERT_NOTE)
    reporter.enter("profiling_ops")
    try:
        return per_op.onnx_op_profile(
            model_path, feed, threads=settings.threads, provider=settings.provider
        )
    except Exception as exc:  # the measurement stands without the table
        log.debug("per-op pass failed: %s", exc)
        return None, per_op.unavailable(f"the per-op profiling pass failed: {exc}")


def analyze(model_path: str, settings: ProfileSettings, reporter: Reporter) -> dict[str, Any]:
    """Static analysis (params, MACs, sparsity) in its own process, apart from measuring."""
    reporter.enter("analyzing")
    from profiler.analysis import analyze as analyze_model

    result: dict[str, Any] = analyze_model(model_path, shapes=settings.shapes or None)
    return result


def probe(reporter: Reporter) -> dict[str, Any]:
    """Which runtimes import here, their versions and ONNX Runtime's providers."""
    reporter.enter("probing")
    from profiler.runtimes import probe_in_process

    return probe_in_process()


def _error_for(exc: BaseException, phase: str, model_path: str | None) -> ProfilerError:
    if isinstance(exc, ProfilerError):
        return exc
    name = display_name(model_path, "the model")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # MemoryError (NumPy's _ArrayMemoryError too), or a runtime's "failed to allocate".
    if limits.is_allocation_failure(exc):
        return ProfilerError(
            OUT_OF_MEMORY,
            f"out of memory while {phase_words(phase)} {name}{limits.limit_words()}: "
            f"{limits.allocation_words(exc)}; lower --shape (batch) or free memory",
        )
    if phase in ("loading", "first_inference", "warmup", "steady", "accuracy"):
        return ProfilerError(
            RUNTIME_ERROR, f"the runtime failed while {phase_words(phase)} {name}: {first}"
        )
    log.error("worker failure in phase %s:\n%s", phase, traceback.format_exc())
    return ProfilerError(
        INTERNAL, f"edgeprof worker failed while {phase_words(phase)} {name}: {first}"
    )


def serve(request: dict[str, Any], reporter: Reporter) -> None:
    """Do what the request asks and send its result or error."""
    mode = request.get("mode", "measure")
    model_path = request.get("model_path")
    names = request.get("display_names")
    set_display_names(names if isinstance(names, dict) else {})
    try:
        settings = ProfileSettings.from_dict(request.get("settings") or {})
        limits.apply_memory_limit(settings.max_memory_mb)
        if mode == "probe":
            data = probe(reporter)
        elif mode == "analyze":
            data = analyze(str(model_path), settings, reporter)
        elif mode == "external_data":
            from profiler.external_data import external_data_locations

            reporter.enter("checking")
            data = {"locations": external_data_locations(str(model_path))}
        elif mode == "measure":
            env = request.get("env")
            data = measure_and_analyze(
                str(model_path),
                settings,
                reporter,
                with_analysis=bool(request.get("analyze")),
                env=dict(env) if isinstance(env, dict) else None,
            )
        else:
            raise ProfilerError(INTERNAL, f"unknown worker mode {mode!r}")
    except Exception as exc:  # every failure goes back as a message, never a traceback
        err = _error_for(exc, reporter.phase, model_path)
        if err.code == RUNTIME_ERROR and reporter.phase in RANDOM_INPUT_PHASES:
            from profiler.inputs import random_inputs_hint

            err = ProfilerError(err.code, err.message + random_inputs_hint(reporter.inputs))
        reporter.send(
            {"type": "error", "code": err.code, "message": err.message, "runtime": reporter.runtime}
        )
        return
    reporter.send({"type": "result", "data": data})


def main() -> int:
    """Entry point of the child process."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="worker %(levelname)s %(name)s: %(message)s",
    )
    request = json.loads(sys.stdin.read() or "{}")
    from profiler.workers import die_with_parent

    die_with_parent(request)
    fd = int(request["reply_fd"])
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        serve(request, Reporter(stream))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Profile one model: spawn a fresh worker, enforce its time limit, assemble the result.

This module is imported by the agent and hostctl, so it imports no runtime, no
NumPy and no ONNX: all of that happens in the child (``python -m profiler.worker``).
The reply comes over a dedicated pipe (runtimes print on stdout); the child's
stdout/stderr go to a temporary log whose tail is quoted when it fails.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiler import workers
from profiler.errors import (
    BAD_MODEL,
    CANCELED,
    CRASHED,
    INTERNAL,
    OUT_OF_MEMORY,
    TIMEOUT,
    ProfilerError,
)
from profiler.memory import maxrss_to_mb
from profiler.phases import phase_words
from profiler.settings import ProfileSettings

log = logging.getLogger(__name__)

ANALYSIS_TIMEOUT_S = 120.0
_LOG_TAIL_CHARS = 300
MAX_REPLY_LINE = 64 * 1024 * 1024
"""A worker's reply line longer than this is dropped (it would only grow the parent)."""


def _worker_argv() -> list[str]:
    """The command that starts a worker: this interpreter running profiler.worker."""
    return [sys.executable, "-m", "profiler.worker"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this very profiler package, wherever the caller runs from.
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ChildOutcome:
    """How a worker process ended and what it said."""

    result: dict[str, Any] | None = None
    error: ProfilerError | None = None
    phase: str = "starting"
    phases_seen: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    exit_status: int | None = None
    """Exit code (>= 0) or minus the signal number, as subprocess reports it."""
    timed_out: bool = False
    log_tail: str = ""
    runtime: dict[str, Any] | None = None
    """The runtime the worker had chosen when it reported an error, if any."""
    inputs: dict[str, Any] | None = None
    """How the worker made the inputs (``settings.inputs``), once it had."""
    available_mb_at_start: float | None = None
    """Memory available (MemAvailable) when the worker started."""
    canceled: bool = False
    """Killed because the caller's cancel event was set."""


def _log_tail(log_file: Any) -> str:
    try:
        log_file.seek(0, os.SEEK_END)
        size = log_file.tell()
        log_file.seek(max(0, size - 4096))
        text = log_file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # Runtimes' INFO chatter ("Created TensorFlow Lite XNNPACK delegate") explains nothing.
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("INFO:")]
    return lines[-1][-_LOG_TAIL_CHARS:] if lines else ""


def _handle_message(
    line: bytes, outcome: ChildOutcome, on_phase: Callable[[str], None] | None
) -> None:
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):
        log.warning("worker sent a malformed line: %r", line[:200])
        return
    kind = message.get("type")
    if kind == "phase":
        outcome.phase = str(message.get("phase"))
        outcome.phases_seen.append(outcome.phase)
        if on_phase is not None:
            on_phase(outcome.phase)
    elif kind == "inputs":
        data = message.get("data")
        outcome.inputs = dict(data) if isinstance(data, dict) else None
    elif kind == "result":
        outcome.result = dict(message.get("data") or {})
    elif kind == "error":
        outcome.error = ProfilerError(
            str(message.get("code") or INTERNAL), str(message.get("message") or "worker error")
        )
        runtime = message.get("runtime")
        outcome.runtime = dict(runtime) if isinstance(runtime, dict) else None


# The child leads its own session: kill it and anything it started.
_kill = workers.kill_group


def kill_running_workers() -> int:
    """Kill every worker (and what it started) that is running now; returns how many.

    For a daemon that is stopping: its workers lead their own sessions, so
    neither Ctrl-C nor the daemon's exit reaches them (a worker whose parent is
    killed outright dies by itself: see profiler.workers).
    """
    return workers.kill_running()


def _watch_cancel(
    cancel: threading.Event, pid: int, done: threading.Event, outcome: ChildOutcome
) -> None:
    while not done.wait(0.1):
        if cancel.is_set():
            outcome.canceled = True
            _kill(pid)  # its reply pipe closes: the runner reaps it as usual
            return


def run_child(
    request: Mapping[str, Any],
    *,
    timeout_s: float,
    argv: Sequence[str] | None = None,
    on_phase: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> ChildOutcome:
    """Run one worker process to completion (or kill it at ``timeout_s``, or
    when `cancel` is set).

    Never raises for what the child does; the outcome says how it ended. Peak
    RSS comes from the kernel's rusage of the reaped child (``os.wait4``).
    The child dies with this process (profiler.workers).
    """
    from profiler.memory import memory_available_mb

    outcome = ChildOutcome(available_mb_at_start=memory_available_mb())
    if cancel is not None and cancel.is_set():
        outcome.canceled = True
        return outcome
    with tempfile.TemporaryFile(prefix="edgeprof-worker-") as log_file:
        read_fd, write_fd = os.pipe()
        lifeline = workers.Lifeline()
        try:
            proc = subprocess.Popen(
                list(argv or _worker_argv()),
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd, *lifeline.fds),
                env=_child_env(),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            lifeline.close()
            outcome.error = ProfilerError(INTERNAL, f"cannot start the worker process: {exc}")
            return outcome
        os.close(write_fd)  # the child holds the only write end: EOF when it exits
        request = {**request, "reply_fd": write_fd, **lifeline.request_fields()}
        lifeline.child_started()
        workers.started(proc.pid)
        done = threading.Event()
        if cancel is not None:
            threading.Thread(
                target=_watch_cancel, args=(cancel, proc.pid, done, outcome), daemon=True
            ).start()
        try:
            _talk(proc, request, read_fd, timeout_s, outcome, on_phase)
        finally:
            done.set()
            workers.ended(proc.pid)
            lifeline.close()  # only now: the child is reaped
            os.close(read_fd)
        outcome.log_tail = _log_tail(log_file)
    return outcome


def _talk(
    proc: subprocess.Popen[bytes],
    request: Mapping[str, Any],
    read_fd: int,
    timeout_s: float,
    outcome: ChildOutcome,
    on_phase: Callable[[str], None] | None,
) -> None:
    """Send the request, collect replies until EOF or the deadline, reap the child."""
    deadline = time.monotonic() + timeout_s
    reaped = False
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(request).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the child died before reading; its exit status tells why
        _read_replies(read_fd, deadline, outcome, on_phase)
        status, usage = _reap(proc.pid, deadline, outcome)
        reaped = True
        proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from reaping again
        outcome.exit_status = proc.returncode
        outcome.peak_rss_mb = maxrss_to_mb(usage.ru_maxrss)
    finally:
        if not reaped:  # interrupted (e.g. KeyboardInterrupt): leave no orphan behind
            _kill(proc.pid)
            proc.wait()


def _read_replies(
    read_fd: int,
    deadline: float,
    outcome: ChildOutcome,
    on_phase: Callable[[str], None] | None,
) -> None:
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(read_fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                return
            if not selector.select(timeout=remaining):
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            buffer += chunk
            if len(buffer) > MAX_REPLY_LINE and b"\n" not in chunk:
                log.warning("worker sent a line of more than %d bytes: dropped", MAX_REPLY_LINE)
                buffer = b""
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    _handle_message(line, outcome, on_phase)
    if buffer.strip():
        _handle_message(buffer, outcome, on_phase)


def _reap(pid: int, deadline: float, outcome: ChildOutcome) -> tuple[int, Any]:
    if outcome.timed_out:
        _kill(pid)
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        if time.monotonic() >= deadline and not outcome.timed_out:
            # Closed its reply channel but did not exit: count it as a hang.
            outcome.timed_out = True
            _kill(pid)
        time.sleep(0.005)


OOM_PEAK_FRACTION = 0.8
"""A SIGKILLed worker whose peak RSS reached this fraction of the machine's RAM
(or of the memory available when it started) was most likely killed by the
kernel's OOM killer."""


def _likely_out_of_memory(outcome: ChildOutcome, memory_limit_mb: float | None) -> str | None:
    """'peak X GB of Y GB' when a SIGKILL looks like the OOM killer's, else None."""
    if outcome.exit_status != -signal.SIGKILL or outcome.peak_rss_mb is None:
        return None
    if memory_limit_mb is None:
        from profiler.memory import memory_total_mb

        memory_limit_mb = memory_total_mb()
    peak = outcome.peak_rss_mb
    for limit in (memory_limit_mb, outcome.available_mb_at_start):
        if limit and peak >= OOM_PEAK_FRACTION * limit:
            return f"peak {peak / 1024:.1f} GB of {limit / 1024:.1f} GB"
    return None


def outcome_error(
    outcome: ChildOutcome,
    model_name: str,
    timeout_s: float,
    *,
    fmt: str | None = None,
    memory_limit_mb: float | None = None,
) -> ProfilerError | None:
    """The ProfilerError a finished child stands for, or None if it succeeded.

    ``fmt`` ('tflite'/'onnx') selects the hint for a native crash;
    ``memory_limit_mb`` is the RAM the worker could use (default: this
    machine's, or its cgroup limit), against which a SIGKILL is judged an
    out-of-memory kill.
    """
    where = f"{phase_words(outcome.phase)} {model_name}"
    tail = f" (last output: {outcome.log_tail})" if outcome.log_tail else ""
    if outcome.canceled:
        return ProfilerError(CANCELED, f"canceled while {where}; the worker was stopped")
    if outcome.timed_out:
        return ProfilerError(
            TIMEOUT,
            f"worker exceeded its {timeout_s:g} s limit while {where} and was killed; "
            "raise --timeout or lower --runs/--min-seconds",
        )
    if outcome.error is not None:
        return outcome.error
    status = outcome.exit_status
    if status is not None and status < 0:
        try:
            sig = signal.Signals(-status).name
        except ValueError:
            sig = f"signal {-status}"
        oom = _likely_out_of_memory(outcome, memory_limit_mb)
        if oom is not None:
            return ProfilerError(
                OUT_OF_MEMORY,
                f"worker was killed while {where}, most likely out of memory ({oom}); "
                "lower --shape (batch), free memory or raise --max-memory",
            )
        # Only the TFLite runtimes have an XNNPACK delegate to switch off.
        hint = (
            "try another --runtime or --no-xnnpack"
            if fmt == "tflite"
            else "try another --runtime or --provider"
            if fmt == "onnx"
            else "try another --runtime"
        )
        if outcome.phase in ("first_inference", "warmup", "steady"):
            from profiler.inputs import random_inputs_hint

            tail += random_inputs_hint(outcome.inputs)
        return ProfilerError(
            CRASHED,
            f"worker crashed with {sig} while {where}; the runtime died in native code — "
            f"{hint}{tail}",
        )
    if outcome.result is None:
        return ProfilerError(
            CRASHED, f"worker exited with code {status} without a result while {where}{tail}"
        )
    return None


def _device(device_id: str | None, tags: Sequence[str]) -> dict[str, Any]:
    from profiler.device import device_info

    try:
        return device_info(device_id, tags)
    except Exception:  # the device description must never sink a measurement
        log.exception("could not describe this device")
        return {"id": device_id, "tags": list(tags)}


def _snapshot(root: str = "/") -> dict[str, Any] | None:
    from profiler.environment import snapshot

    try:
        return snapshot(root)
    except Exception:  # environment readings are best effort
        log.exception("could not read the environment")
        return None


def _env(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    from profiler.environment import env_section
    from profiler.result import env_placeholder

    if before is None or after is None:
        return env_placeholder()
    return env_section(before, after)


def _analysis(
    model_path: str, settings: ProfileSettings, *, quiet: bool = False
) -> dict[str, Any] | None:
    """params/MACs/sparsity from profiler.analysis, in a child of its own.

    Used when the measuring worker failed before it could analyse the model
    itself (e.g. a custom op): the figures are still worth reporting.
    """
    outcome = run_child(
        {"mode": "analyze", "model_path": model_path, "settings": settings.to_dict()},
        timeout_s=ANALYSIS_TIMEOUT_S,
    )
    err = outcome_error(outcome, Path(model_path).name, ANALYSIS_TIMEOUT_S)
    if err is not None or outcome.result is None:
        # After a failed measurement the error result already says what is wrong;
        # a second line would break the one-line error rule.
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "model analysis unavailable: %s",
            err.message if err else "no result",
        )
        return None
    model = outcome.result.get("model")
    return dict(model) if isinstance(model, Mapping) else None


def _memory(worker: Mapping[str, Any] | None, ru_maxrss_mb: float | None) -> dict[str, Any]:
    """memory_mb{...}: the worker's checkpoints and its peak from the kernel.

    The worker's VmHWM is preferred: after fork+exec, Linux carries the
    spawning process's high-water mark into the child's ru_maxrss, so wait4
    over-reports when the caller itself is large. ru_maxrss is the fallback
    (no /proc, or the worker died before reporting) and is kept alongside.
    """
    from profiler.result import memory_section

    vm_hwm = worker.get("vm_hwm") if worker else None
    if isinstance(vm_hwm, (int, float)):
        peak: float | None = float(vm_hwm)
        source: str | None = "VmHWM"
    else:
        peak = ru_maxrss_mb
        source = "wait4" if peak is not None else None
    section = memory_section(worker, peak)
    section["ru_maxrss"] = round(ru_maxrss_mb, 3) if ru_maxrss_mb is not None else None
    section["peak_rss_source"] = source
    return section


MAX_KEPT_SAMPLES = 20_000
"""At most this many raw samples travel in a result (statistics use all of them)."""


def _kept_samples(samples: list[int]) -> dict[str, Any]:
    """Raw samples for later comparisons, thinned to :data:`MAX_KEPT_SAMPLES`.

    A microsecond model runs ~10^6 times in the default 5 s; shipping all of
    them would make the result megabytes (AWS IoT caps a message at 128 KiB).
    Thinning keeps every k-th sample, so time order (drift) survives, and says
    so: ``stride`` k and ``total`` runs.
    """
    from protocol.result import encode_samples

    stride = max(1, -(-len(samples) // MAX_KEPT_SAMPLES))
    doc = encode_samples(samples[::stride])
    doc.update({"stride": stride, "total": len(samples)})
    return doc


def profile(
    model_path: str | os.PathLike[str],
    settings: ProfileSettings | None = None,
    *,
    label: str | None = None,
    job_id: str | None = None,
    device_id: str | None = None,
    tags: Sequence[str] = (),
    on_phase: Callable[[str], None] | None = None,
    worker_cmd: Sequence[str] | None = None,
    analyze: bool = True,
    model_name: str | None = None,
    names: Mapping[str, str] | None = None,
    root: str = "/",
    cancel: threading.Event | None = None,
    allow_external_data: bool = True,
) -> dict[str, Any]:
    """Measure one model in a fresh worker process and return its result document.

    Never raises for model, runtime or user problems: those come back as a
    result with ``status: "error"`` and ``error{code, message}``. ``worker_cmd``
    replaces ``python -m profiler.worker`` (tests); ``analyze=False`` skips the
    params/MACs/sparsity analysis child. ``model_name`` is the name to report
    (in ``model.name`` and every message) when the file's own name means
    nothing to the user, e.g. the agent's content-addressed cache file;
    ``names`` does the same for any path ({path: name}, e.g. the data files of
    ``settings.eval_path`` / ``inputs_path``). The names are used where each
    message is made, in this process and in the worker.
    ``root`` points the parent's sysfs/procfs readers (environment, power,
    temperature) at another tree: tests run real profiles on recorded boards.
    Setting `cancel` kills the worker (error code ``canceled``). The worker
    runs under ``settings.max_memory_mb`` (default: a share of the memory
    available, see profiler.limits). An ONNX model's external data must stay
    in the model's directory; ``allow_external_data=False`` (the agent, whose
    jobs carry no such files) refuses any.
    """
    shown = {os.path.normpath(str(p)): n for p, n in (names or {}).items() if n}
    if model_name:
        shown[os.path.normpath(str(model_path))] = model_name
    return _profile(
        model_path,
        settings,
        label=label,
        job_id=job_id,
        device_id=device_id,
        tags=tags,
        on_phase=on_phase,
        worker_cmd=worker_cmd,
        analyze=analyze,
        names=shown,
        root=root,
        cancel=cancel,
        allow_external_data=allow_external_data,
    )


def _profile(
    model_path: str | os.PathLike[str],
    settings: ProfileSettings | None,
    *,
    label: str | None,
    job_id: str | None,
    device_id: str | None,
    tags: Sequence[str],
    on_phase: Callable[[str], None] | None,
    worker_cmd: Sequence[str] | None,
    analyze: bool,
    names: Mapping[str, str],
    root: str = "/",
    cancel: threading.Event | None = None,
    allow_external_data: bool = True,
) -> dict[str, Any]:
    from profiler.backends import detect_format
    from profiler.limits import with_memory_limit
    from profiler.observe import Observation
    from profiler.result import build_result, model_section, settings_section
    from profiler.stats import detect_drift, latency_stats, stability_flags
    from protocol.result import decode_samples

    settings = with_memory_limit(settings or ProfileSettings())
    path = str(model_path)
    name = names.get(os.path.normpath(path)) or Path(path).name
    # The worker names files the same way (profiler.names), by absolute path too.
    worker_names = {**names, **{str(Path(p).resolve()): n for p, n in names.items()}}
    device = _device(device_id, tags)
    timeout_s = settings.effective_timeout()

    try:
        fmt = detect_format(path, name)
        if fmt == "onnx":
            from profiler.external_data import check_external_data

            check_external_data(path, settings, allow=allow_external_data, name=name)
    except ProfilerError as exc:
        return build_result(
            status="error",
            job_id=job_id,
            label=label,
            device=device,
            model=model_section(path, name=name),
            settings=settings_section(settings, names=names),
            error=exc.to_dict(),
        )

    observation = Observation(settings, root)
    worker_env = observation.before_worker()  # cool-down settle, idle power baseline
    env_before = _snapshot(root)
    with observation:  # power (and, sustained, thermal) samples while the worker runs
        outcome = run_child(
            {
                "mode": "measure",
                "model_path": str(Path(path).resolve()),
                "settings": settings.to_dict(),
                "analyze": analyze,
                "env": worker_env,
                "display_names": worker_names,
            },
            timeout_s=timeout_s,
            argv=worker_cmd,
            on_phase=on_phase,
            cancel=cancel,
        )
    env_after = _snapshot(root)
    err = outcome_error(outcome, name, timeout_s, fmt=fmt, memory_limit_mb=settings.max_memory_mb)
    data = outcome.result or {}
    if "analysis" in data:  # done by the worker after its last memory reading
        report = data["analysis"]
        model_report = report.get("model") if isinstance(report, Mapping) else None
        analysis = dict(model_report) if isinstance(model_report, Mapping) else None
    elif analyze and (err is None or err.code not in (CRASHED, TIMEOUT, BAD_MODEL, CANCELED)):
        # the measurement failed before the worker got to it: still worth knowing
        analysis = _analysis(path, settings, quiet=err is not None)
    else:
        analysis = None
    model = model_section(path, analysis, name=name)
    model["format"] = model.get("format") or fmt  # from the content, whatever the extension
    memory = _memory(data.get("memory_mb"), outcome.peak_rss_mb)
    common: dict[str, Any] = {
        "job_id": job_id,
        "label": label,
        "device": device,
        "model": model,
        "settings": settings_section(settings, data.get("inputs") or outcome.inputs, names),
        "memory_mb": memory,
        "env": _env(env_before, env_after),
        "runtime": data.get("runtime") or outcome.runtime,
    }
    if err is not None:
        phases = {"failed_in": outcome.phase, "seen": outcome.phases_seen}
        return build_result(status="error", error=err.to_dict(), phases=phases, **common)

    samples: list[int] = decode_samples(data["samples"]) if data.get("samples") else []
    if not samples:
        return build_result(
            status="error",
            error={"code": INTERNAL, "message": "the worker recorded no runs"},
            **common,
        )
    stats = latency_stats(samples)
    accuracy_error = data.get("accuracy_error")
    # The drift test's figures go into the result (an extra key of latency_ms);
    # computed once, the flags use the same outcome.
    drift = detect_drift(samples)
    stats["drift"] = drift
    flags = stability_flags(samples, stats, env_before, env_after, drift=drift)
    steady = (data.get("phases") or {}).get("steady")
    if isinstance(steady, Mapping) and steady.get("capped"):
        flags.append("capped")  # --max-seconds ended the steady state before its minima
    if accuracy_error:
        flags.append("accuracy_error")
    observed = observation.sections(data)
    cool_down = (data.get("phases") or {}).get("cool_down")
    if isinstance(cool_down, Mapping) and cool_down.get("reached") is False:
        flags.append("not_cooled")
    return build_result(
        status="ok",
        latency_ms=stats,
        init_ms=data.get("init_ms"),
        first_inference_ms=data.get("first_inference_ms"),
        accuracy=data.get("accuracy"),
        accuracy_error=accuracy_error,
        flags=flags,
        phases=data.get("phases"),
        samples=_kept_samples(samples) if settings.keep_samples else None,
        energy=observed["energy"],
        timeline=observed["timeline"],
        sustained=observed["sustained"],
        per_op=data.get("per_op"),
        per_op_info=data.get("per_op_info"),
        **common,
    )

"""Shared pieces of the benchmarks: the machine's description, the fixture models,
the profiler call, the *bare* reference loop, alternating schedules and output.

The bare loop is the fairest reference for the profiler's own cost: a fresh child
process (like the profiler's worker) that loads the model with the same runtime,
threads and XNNPACK setting, binds the same seeded inputs once, warms up, and then
does nothing but ``t0 = perf_counter_ns(); interpreter.invoke(); t1 = ...`` (or
``session.run``) in a loop. Run it as ``python -m bench.common --bare`` with a
JSON request on stdin (that is what :func:`run_bare` does).
"""

from __future__ import annotations

import argparse
import array
import contextlib
import datetime
import gc
import inspect
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this bench runs from (the child processes import from it)."""

ORT_MODES = ("run", "iobinding")
"""How the bare loop calls ONNX Runtime: ``session.run(None, feed)`` (what most
user code does) or ``run_with_iobinding`` on pre-bound inputs (what the profiler does)."""


class BenchError(Exception):
    """A benchmark could not produce its figure (a run failed); the message says why."""


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def _hypervisor() -> str | None:
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        if " hypervisor" in text:
            return "yes"
    return None


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_avg() -> list[float] | None:
    """1, 5 and 15-minute load averages, rounded; None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_times() -> list[int] | None:
    """The aggregate ``cpu`` line of /proc/stat (jiffies: user nice system idle iowait
    irq softirq steal ...), or None off Linux."""
    with contextlib.suppress(OSError, ValueError):
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        if first[0] == "cpu":
            return [int(x) for x in first[1:9]]
    return None


def cpu_usage_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Busy and steal shares of all CPUs between two :func:`machine_info` readings.

    Busy includes the benchmark itself (about one core); steal is time the
    hypervisor gave to other guests — both explain noisy figures.
    """
    a, b = before.get("cpu_times"), after.get("cpu_times")
    if not a or not b:
        return {"busy_pct": None, "steal_pct": None}
    delta = [y - x for x, y in zip(a, b, strict=False)]
    total = sum(delta)
    if total <= 0:
        return {"busy_pct": None, "steal_pct": None}
    idle = delta[3] + delta[4]
    return {
        "busy_pct": round((total - idle) / total * 100, 1),
        "steal_pct": round(delta[7] / total * 100, 1) if len(delta) > 7 else None,
    }


def machine_info() -> dict[str, Any]:
    """What a figure depends on: date, CPU, core count, load, OS, Python, runtime versions."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "virtualized": _hypervisor() is not None,
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg": load_avg(),
        "cpu_times": cpu_times(),
        "versions": {
            dist: _version(dist)
            for dist in ("ai-edge-litert", "onnxruntime", "numpy", "mlcommons-loadgen")
        },
    }


def usage_line(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """'CPU busy 74.0 % (steal 0.3 %) of 2 CPUs during the run' for people."""
    usage = cpu_usage_between(before, after)
    if usage["busy_pct"] is None:
        return "CPU usage during the run: n/a"
    return (
        f"CPU busy {usage['busy_pct']} % (steal {usage['steal_pct']} %) of "
        f"{after.get('nproc')} CPUs during the run, this benchmark included"
    )


def machine_line(info: Mapping[str, Any]) -> str:
    """One line of :func:`machine_info` for people."""
    load = info.get("load_avg")
    load_text = "/".join(f"{x:.2f}" for x in load) if load else "n/a"
    vm = ", VM" if info.get("virtualized") else ""
    return (
        f"{info.get('nproc')} CPUs ({info.get('cpu_model')}{vm}), load {load_text}, "
        f"{info.get('os')}, Python {info.get('python')}, {info.get('date')}"
    )


# --------------------------------------------------------------------------- models

MODEL_NAMES = ("tiny.tflite", "tiny.onnx", "slow.tflite", "slow.onnx")
"""Fixture models every benchmark can use (from modelkit.fixtures)."""


def build_models(out_dir: str | Path) -> dict[str, Path]:
    """Write the tiny (one Add) and slow (~100 M MAC CNN) models in both formats."""
    from modelkit import fixtures as tm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "tiny.tflite": tm.build_tflite_tiny(),
        "tiny.onnx": tm.build_onnx_tiny(),
        "slow.tflite": tm.build_tflite_cnn(tm.SLOW_SPEC),
        "slow.onnx": tm.build_onnx_cnn(tm.SLOW_SPEC),
    }
    paths: dict[str, Path] = {}
    for name, content in data.items():
        paths[name] = out / name
        paths[name].write_bytes(content)
    return paths


@contextlib.contextmanager
def fixture_models() -> Iterator[dict[str, Path]]:
    """The fixture models in a temporary directory that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="edgeprof-bench-") as tmp:
        yield build_models(tmp)


def resolve_model(name_or_path: str, fixtures: Mapping[str, Path]) -> Path:
    """A fixture name (``slow.tflite``) or a path to a model of the user's."""
    if name_or_path in fixtures:
        return fixtures[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise BenchError(f"{name_or_path}: neither a fixture ({', '.join(MODEL_NAMES)}) nor a file")
    return path


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class LoopSettings:
    """How long and with what runtime options both the profiler and a reference run."""

    threads: int | None = 1
    """Intra-op threads (None: the runtime's default)."""
    xnnpack: bool = True
    """XNNPACK delegate for TFLite."""
    warmup: int = 10
    warmup_seconds: float = 0.5
    runs: int = 100
    min_seconds: float = 2.0
    max_seconds: float = 60.0
    seed: int = 0

    def profile_settings(self) -> Any:
        """The equivalent profiler.settings.ProfileSettings."""
        from profiler.settings import ProfileSettings

        return ProfileSettings(
            runs=self.runs,
            warmup=self.warmup,
            warmup_seconds=self.warmup_seconds,
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
            threads=self.threads,
            xnnpack=self.xnnpack,
            seed=self.seed,
        )


def run_profiler(model: str | Path, loop: LoopSettings) -> dict[str, Any]:
    """One profile of ``model`` through profiler.runner.profile (a fresh worker).

    The static analysis child is skipped when the runner allows it: it runs
    after the measurement and only costs time here. Raises BenchError when the
    profile is not ``ok``.
    """
    from profiler.runner import profile

    kwargs: dict[str, Any] = {}
    if "analyze" in inspect.signature(profile).parameters:
        kwargs["analyze"] = False
    result = profile(str(model), loop.profile_settings(), label="bench", **kwargs)
    if result.get("status") != "ok":
        raise BenchError(f"profiling {Path(model).name} failed: {result.get('error')}")
    return dict(result)


def result_samples_ns(result: Mapping[str, Any]) -> list[int]:
    """The raw steady-state samples of a result document (empty if it kept none)."""
    from protocol.result import decode_samples

    doc = result.get("samples")
    return decode_samples(doc) if isinstance(doc, Mapping) else []


def quantile_ms(samples_ns: Sequence[int], q: float) -> float:
    """Quantile ``q`` of samples in ms, with the profiler's own definition (HF7)."""
    from profiler.stats import percentile

    return percentile(sorted(s / 1e6 for s in samples_ns), q)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_bare(
    model: str | Path, loop: LoopSettings, *, ort_mode: str = "run", timeout_s: float = 300.0
) -> list[int]:
    """Time ``model`` in a bare child-process loop; returns the steady-state samples (ns)."""
    with tempfile.TemporaryDirectory(prefix="edgeprof-bare-") as tmp:
        out = Path(tmp) / "samples.bin"
        request = {"model": str(model), "loop": asdict(loop), "ort_mode": ort_mode, "out": str(out)}
        proc = subprocess.run(
            [sys.executable, "-m", "bench.common", "--bare"],
            input=json.dumps(request).encode(),
            capture_output=True,
            env=_child_env(),
            timeout=timeout_s,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise BenchError(
                f"bare loop on {Path(model).name} failed "
                f"(exit {proc.returncode}): {' | '.join(tail)}"
            )
        samples = array.array("q")
        samples.frombytes(out.read_bytes())
        return samples.tolist()


def _timed(call: Callable[[], Any], runs: int, min_seconds: float, max_seconds: float) -> list[int]:
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    min_ns, max_ns = int(min_seconds * 1e9), int(max_seconds * 1e9)
    gc.disable()  # as the profiler does: no collection inside a timed call
    try:
        start = clock()
        while True:
            t0 = clock()
            call()
            t1 = clock()
            append(t1 - t0)
            if (len(samples) >= runs and t1 - start >= min_ns) or t1 - start >= max_ns:
                return samples
    finally:
        gc.enable()


def _bare_call(model: str, loop: LoopSettings, ort_mode: str) -> Callable[[], Any]:
    """Load the model as plain user code would and return the call to time."""
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
        for d in interp.get_input_details():
            data = rng.standard_normal(size=tuple(d["shape"]), dtype=np.float32)
            interp.set_tensor(d["index"], data.astype(d["dtype"]))
        invoke: Callable[[], Any] = interp.invoke
        return invoke
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if loop.threads is not None:
        options.intra_op_num_threads = loop.threads
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    feed = {
        i.name: rng.standard_normal(size=tuple(i.shape), dtype=np.float32)
        for i in session.get_inputs()
    }
    if ort_mode == "iobinding":
        binding = session.io_binding()
        for name, arr in feed.items():
            binding.bind_cpu_input(name, arr)
        for out in session.get_outputs():
            binding.bind_output(out.name)
        return lambda: session.run_with_iobinding(binding)
    run = session.run
    return lambda: run(None, feed)


def bare_child_main() -> int:
    """Child side of :func:`run_bare`: request on stdin, samples (int64) to a file."""
    request = json.loads(sys.stdin.read())
    loop = LoopSettings(**request["loop"])
    call = _bare_call(request["model"], loop, request.get("ort_mode", "run"))
    call()  # first (cold) inference, untimed as in the profiler
    if loop.warmup > 0 or loop.warmup_seconds > 0:
        _timed(call, loop.warmup, loop.warmup_seconds, loop.max_seconds)
    samples = _timed(call, loop.runs, loop.min_seconds, loop.max_seconds)
    Path(request["out"]).write_bytes(array.array("q", samples).tobytes())
    return 0


# --------------------------------------------------------------------------- schedules


def alternate(rounds: int, labels: Sequence[str]) -> list[str]:
    """``rounds`` rounds of ``labels``, forward then reversed (ABBA, ABCCBA, ...).

    Every label's mean position is the same over each pair of rounds, so a
    linear drift of the machine cancels out of the comparisons between them.
    """
    order: list[str] = []
    for i in range(rounds):
        order.extend(labels if i % 2 == 0 else list(reversed(labels)))
    return order


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of nothing")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --------------------------------------------------------------------------- output


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--json and --threads, shared by every benchmark."""
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads for profiler and reference alike (0: runtime default; default 1)",
    )


def threads_arg(value: int) -> int | None:
    """--threads 0 means the runtime's own default."""
    return None if value == 0 else value


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join([".venv/bin/python", "-m", module, *args])


def emit(
    report: Mapping[str, Any], as_json: bool, render: Callable[[Mapping[str, Any]], str]
) -> None:
    """Write the report to stdout: JSON, or the human rendering."""
    text = json.dumps(report, indent=2) if as_json else render(report)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    """Progress for people on stderr (stdout stays clean for --json)."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def verdict(value: float | None, target: float, *, at_most: bool = True) -> str:
    """'met' / 'MISSED' / 'n/a' for a figure against its target."""
    if value is None:
        return "n/a"
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    if sys.argv[1:] == ["--bare"]:
        sys.exit(bare_child_main())
    sys.stderr.write("usage: python -m bench.common --bare  (request as JSON on stdin)\n")
    sys.exit(2)

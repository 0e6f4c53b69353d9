"""Profile options shared by `hostctl profile`, `push` (and the study and gate
commands): declared once, so the commands cannot drift apart (defaults live in
ProfileSettings), and turned into ProfileSettings by :func:`build_settings`."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

import typer


class RuntimeChoice(str, Enum):
    """Runtimes `--runtime` accepts (ProfileSettings.runtime)."""

    auto = "auto"
    litert = "litert"
    tflite_runtime = "tflite-runtime"
    tensorflow = "tensorflow"
    onnxruntime = "onnxruntime"


Runs = Annotated[
    int | None,
    typer.Option("--runs", "-n", min=1, help="Minimum steady-state runs (default: 100)."),
]
Warmup = Annotated[
    int | None, typer.Option("--warmup", min=0, help="Minimum warm-up runs (default: 10).")
]
WarmupSeconds = Annotated[
    float | None,
    typer.Option("--warmup-seconds", min=0.0, help="Minimum warm-up duration (default: 1)."),
]
MinSeconds = Annotated[
    float | None,
    typer.Option("--min-seconds", min=0.0, help="Minimum steady-state duration (default: 5)."),
]
MaxSeconds = Annotated[
    float | None, typer.Option("--max-seconds", help="Cap on the steady state (default: 60).")
]
Threads = Annotated[
    int | None,
    typer.Option("--threads", "-t", min=1, help="Intra-op threads (default: runtime's choice)."),
]
ThreadsSweep = Annotated[
    str | None,
    typer.Option(
        "--threads",
        "-t",
        metavar="N[,N...]",
        help="Intra-op threads (default: one per physical core). A list (1,2,4) is a sweep: "
        "one result per value, each in a fresh worker.",
    ),
]
Runtime = Annotated[RuntimeChoice, typer.Option("--runtime", help="Runtime to use.")]
Provider = Annotated[
    str | None,
    typer.Option(
        "--provider", help="ONNX Runtime execution provider (default: CPUExecutionProvider)."
    ),
]
Xnnpack = Annotated[
    bool,
    typer.Option("--xnnpack/--no-xnnpack", help="XNNPACK delegate for TFLite models.", metavar=""),
]
Shape = Annotated[
    list[str] | None,
    typer.Option(
        "--shape",
        metavar="NAME=D1,D2,...",
        help="Shape of an input with dynamic dims (repeatable). Several shapes for the same "
        "input are a sweep; sweeps of threads and shapes combine as a cross product.",
        show_default=False,
    ),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of generated inputs (default: 0).")]
InputValue = Annotated[
    list[str] | None,
    typer.Option(
        "--input-value",
        metavar="NAME=V",
        help="Fill a generated input with one value instead of random data (a sample rate, "
        "a flag: sr=16000, use_cache=false); repeatable.",
        show_default=False,
    ),
]
InputRange = Annotated[
    list[str] | None,
    typer.Option(
        "--input-range",
        metavar="NAME=LO,HI",
        help="Draw a generated input uniformly from LO..HI (integers: HI included), e.g. "
        "token_ids=0,30521; repeatable.",
        show_default=False,
    ),
]
Label = Annotated[
    str | None, typer.Option("--label", help="Free-form label stored with the result.")
]
Sustained = Annotated[
    str | None,
    typer.Option(
        "--sustained",
        help="Run continuously this long (e.g. 10m, 90s) and record a timeline: per-block "
        "p50, temperature, frequency, throttling.",
        show_default=False,
    ),
]
CoolDown = Annotated[
    bool,
    typer.Option(
        "--cool-down/--no-cool-down",
        help="Before measuring, wait (at most 5 min) until the CPU is back near idle temperature.",
        metavar="",
    ),
]
PerOp = Annotated[
    bool,
    typer.Option(
        "--per-op",
        help="After measuring, a separate profiling pass: share of time per op type "
        "(ONNX Runtime; LiteRT exposes none).",
        metavar="",
    ),
]

MaxMemory = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="Memory limit of the worker process, e.g. 512M or 2G (default: 80% of the "
        "memory available when it starts; a device's own limit caps it).",
        show_default=False,
    ),
]


# -- the variant makers' options (`hostctl variants` and `hostctl study`) -------------

Calibration = Annotated[
    str | None,
    typer.Option(
        "--calibration",
        metavar="CAL.npz|random",
        help="Typical inputs for FIQ (x, or one array per input); 'random' for a smoke "
        "test only (flagged). Without it FIQ is not made.",
    ),
]
Sparsity = Annotated[
    str | None,
    typer.Option(
        "--sparsity",
        metavar="S[,S...]",
        help="Fractions of zero weights for prn/prq, e.g. 0.5,0.75 (default 0.5).",
    ),
]


Across = Annotated[
    list[str] | None,
    typer.Option(
        "--across",
        metavar="DIM",
        help="A dimension the two sides differ in on purpose (device, model, runtime, "
        "provider, threads, shape): compared across, not paired on. Selections naming "
        "different values (runtime=litert vs runtime=tflite-runtime) imply it.",
    ),
]


def only_option(default: str) -> Any:
    """``--only LIST``: which variant kinds to make, with the command's default."""
    return typer.Option(
        "--only",
        metavar="LIST",
        help=f"Comma-separated kinds: fp32,f16,blq,wo8,fiq,prn,prq (default: {default}).",
    )


def option_names(message: str) -> str:
    """A ProfileSettings message in the option names the user typed (runs -> --runs)."""
    for name in ("runs", "warmup_seconds", "warmup", "min_seconds", "max_seconds", "threads"):
        message = re.sub(rf"(?<![-\w]){name}\b", "--" + name.replace("_", "-"), message)
    return message


def build_settings(
    *,
    runs: int | None = None,
    warmup: int | None = None,
    warmup_seconds: float | None = None,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    threads: int | None = None,
    runtime: str | None = None,
    provider: str | None = None,
    xnnpack: bool = True,
    shapes: list[str] | None = None,
    inputs_path: str | None = None,
    eval_path: str | None = None,
    seed: int | None = None,
    timeout_s: float | None = None,
    input_values: list[str] | None = None,
    input_ranges: list[str] | None = None,
    inputs_attached: bool = False,
    sustained: str | None = None,
    cool_down: bool = False,
    per_op: bool = False,
    max_memory: str | None = None,
) -> Any:
    """ProfileSettings from CLI values; options left as None keep the defaults.

    ``inputs_attached``: an --inputs file travels with the job (push), so options for
    generated inputs contradict it as they do ``inputs_path``. Raises ValueError with
    a one-line message on invalid values.
    """
    from profiler.settings import (
        ProfileSettings,
        check_no_fills_with_inputs_file,
        parse_duration,
        parse_input_range_option,
        parse_input_value_option,
        parse_memory_size,
        parse_shape_option,
    )

    given: dict[str, Any] = {
        "runs": runs,
        "warmup": warmup,
        "warmup_seconds": warmup_seconds,
        "min_seconds": min_seconds,
        "max_seconds": max_seconds,
        "threads": threads,
        "runtime": runtime,
        "provider": provider,
        "inputs_path": inputs_path,
        "eval_path": eval_path,
        "seed": seed,
        "timeout_s": timeout_s,
    }
    kwargs = {k: v for k, v in given.items() if v is not None}
    if not xnnpack:
        kwargs["xnnpack"] = False
    if shapes:
        kwargs["shapes"] = parse_shape_option(shapes)
    if input_values:
        kwargs["input_values"] = parse_input_value_option(input_values)
    if input_ranges:
        kwargs["input_ranges"] = parse_input_range_option(input_ranges)
    if inputs_attached:
        check_no_fills_with_inputs_file(input_values, input_ranges)
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError("--timeout must be positive")
    if sustained is not None:
        try:
            kwargs["sustained_s"] = parse_duration(sustained)
        except ValueError as exc:
            raise ValueError(f"--sustained {exc}") from None
    if cool_down:
        kwargs["cool_down"] = True
    if per_op:
        kwargs["per_op"] = True
    if max_memory is not None:
        try:
            kwargs["max_memory_mb"] = parse_memory_size(max_memory)
        except ValueError as exc:
            raise ValueError(f"--max-memory: {exc}") from None
    return ProfileSettings(**kwargs)


_TFLITE_RUNTIMES = ("litert", "tflite-runtime", "tensorflow")


def check_for_model(settings: Any, fmt: str, model_name: str) -> list[str]:
    """Options that contradict the model they are used on: ValueError (one line) for
    what cannot apply, and the warnings (sentences) for what is merely doubtful."""
    if fmt == "tflite" and settings.provider:
        raise ValueError(
            f"--provider applies to ONNX Runtime, but {model_name} is a .tflite model "
            "(it runs on LiteRT): drop --provider"
        )
    if fmt == "tflite" and settings.runtime == "onnxruntime":
        raise ValueError(
            f"--runtime onnxruntime cannot run {model_name}, a .tflite model: "
            f"use --runtime {'|'.join(_TFLITE_RUNTIMES)} or auto"
        )
    if fmt == "onnx" and settings.runtime in _TFLITE_RUNTIMES:
        raise ValueError(
            f"--runtime {settings.runtime} cannot run {model_name}, an .onnx model: "
            "use --runtime onnxruntime or auto"
        )
    warnings = []
    if fmt == "onnx" and not settings.xnnpack:
        warnings.append(f"--no-xnnpack has no effect on {model_name}: it runs on ONNX Runtime")
    return warnings


def threads_warning(threads: int | None, cores: int | None, where: str) -> str | None:
    """A sentence when ``--threads`` asks for more threads than `where` has cores."""
    if threads is None or not cores or threads <= cores:
        return None
    return (
        f"--threads {threads} is more than the {cores} cores of {where}: the threads "
        "will share cores and the latency will not show the model's speed"
    )


def parse_threads_list(text: str | None) -> list[int | None]:
    """``--threads 1,2,4`` as [1, 2, 4]; None (not given) as [None]. ValueError (one
    line) for anything but positive integers."""
    if text is None:
        return [None]
    values: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError(
                f"--threads {text}: give positive whole numbers, e.g. --threads 4 or --threads 1,2,4"
            )
        if int(part) not in values:
            values.append(int(part))
    return values


def shape_sweep(shapes: list[str] | None) -> list[list[str]]:
    """Repeated ``--shape`` options as the settings of a sweep: values for different
    inputs go together; several values for the same input are alternatives (the
    cross product of all inputs' alternatives). [[]] when none are given."""
    import itertools

    by_name: dict[str, list[str]] = {}
    for value in shapes or []:
        name = value.partition("=")[0]
        if value not in by_name.setdefault(name, []):
            by_name[name].append(value)
    if not by_name:
        return [[]]
    return [list(combo) for combo in itertools.product(*by_name.values())]


def build_sweep(
    *, threads: str | None = None, shapes: list[str] | None = None, **kwargs: Any
) -> list[Any]:
    """One ProfileSettings per point of the sweep (threads × shapes), in that order;
    the other options as :func:`build_settings` takes them. ValueError (one line)."""
    return [
        build_settings(threads=t, shapes=shape, **kwargs)
        for t in parse_threads_list(threads)
        for shape in shape_sweep(shapes)
    ]

"""How a model is to be measured: one frozen value object shared by the CLI,
the agent and the worker process (it travels to the worker as JSON)."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

Number = int | float
"""A value of ``--input-value`` / a bound of ``--input-range`` (bool counts as 0/1)."""


@dataclass(frozen=True)
class ProfileSettings:
    """Options of one profiling run. Defaults follow DESIGN.md."""

    runs: int = 100
    """Minimum number of timed steady-state runs."""
    warmup: int = 10
    """Minimum number of warm-up runs (not timed into the statistics)."""
    min_seconds: float = 5.0
    """Minimum duration of the steady state; runs continue until both minima are met."""
    warmup_seconds: float = 1.0
    """Minimum duration of the warm-up phase."""
    max_seconds: float = 60.0
    """Cap on the steady state: stop after this long even if `runs` is not reached."""
    threads: int | None = None
    """Intra-op threads; None lets the runtime choose (the result records what was used)."""
    runtime: str = "auto"
    """'auto', 'litert', 'tflite-runtime', 'tensorflow' or 'onnxruntime'."""
    provider: str | None = None
    """ONNX Runtime execution provider (default: CPUExecutionProvider)."""
    xnnpack: bool = True
    """Use the XNNPACK delegate for TFLite models."""
    shapes: dict[str, list[int]] = field(default_factory=dict)
    """Concrete shapes for inputs with dynamic dimensions, by input name."""
    inputs_path: str | None = None
    """A .npy (single input) or .npz (by input name) file of inputs; else generated."""
    eval_path: str | None = None
    """A labelled .npz (x, y) for top-1 accuracy."""
    seed: int = 0
    """Seed of generated inputs."""
    input_values: dict[str, Number] = field(default_factory=dict)
    """Generated inputs filled with one value, by input name (``--input-value NAME=V``):
    a sample rate, a flag, a step count that random data would send down an error branch."""
    input_ranges: dict[str, list[Number]] = field(default_factory=dict)
    """Generated inputs drawn uniformly from ``[LO, HI]`` by input name
    (``--input-range NAME=LO,HI``; integers inclusive of HI)."""
    timeout_s: float | None = None
    """Wall-clock limit of the worker process; None derives one from the settings."""
    keep_samples: bool = True
    """Keep raw per-run latency samples in the result."""
    sustained_s: float | None = None
    """Sustained mode: run the model continuously this long (replaces the steady-state
    minima and cap) and record ``timeline[]`` (per-block p50, temperature, frequency,
    throttle state)."""
    cool_down: bool = False
    """Before measuring, wait until the CPU temperature is back near idle (bounded)."""
    cool_down_margin_c: float = 2.0
    """How close to the idle temperature (°C) the cool-down waits for."""
    cool_down_max_s: float = 300.0
    """Upper bound of all cool-down waiting together."""
    per_op: bool = False
    """After the measurement, a separate profiling pass: time per op type (ONNX Runtime)."""
    energy: bool = True
    """Sample the board's power during the steady state where it can be measured."""
    max_memory_mb: float | None = None
    """Memory limit of the worker process (MiB); None: a share of the memory
    available when it starts (see profiler.limits)."""

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ValueError("runs must be at least 1")
        if self.warmup < 0:
            raise ValueError("warmup must be 0 or more")
        if self.min_seconds < 0 or self.warmup_seconds < 0:
            raise ValueError("durations must be 0 or more")
        if self.max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be at least 1")
        if self.max_seconds < self.min_seconds:
            raise ValueError(
                f"max_seconds ({self.max_seconds:g}) is below min_seconds "
                f"({self.min_seconds:g}): the steady state could never last its minimum; "
                "raise max_seconds or lower min_seconds"
            )
        _check_fills(self.input_values, self.input_ranges)
        if self.inputs_path:
            check_no_fills_with_inputs_file(self.input_values, self.input_ranges)
        if self.sustained_s is not None and self.sustained_s <= 0:
            raise ValueError("sustained must be a positive duration")
        if self.cool_down_margin_c < 0 or self.cool_down_max_s < 0:
            raise ValueError("cool-down margin and limit must be 0 or more")
        if self.max_memory_mb is not None and not self.max_memory_mb >= MIN_MEMORY_MB:
            raise ValueError(f"max_memory_mb must be at least {MIN_MEMORY_MB:.0f}")

    def effective_timeout(self) -> float:
        """The worker's wall-clock limit: explicit, or generous enough for the phases."""
        if self.timeout_s is not None:
            return self.timeout_s
        steady = self.sustained_s * 1.1 if self.sustained_s is not None else self.max_seconds * 2
        cool = self.cool_down_max_s if self.cool_down else 0.0
        per_op = 60.0 if self.per_op else 0.0
        return 120.0 + steady + self.warmup_seconds * 2 + cool + per_op

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def check_no_fills_with_inputs_file(values: Any, ranges: Any) -> None:
    """ValueError when input fills are given although an --inputs file supplies every
    input (contradictory options)."""
    if values or ranges:
        option = "--input-value" if values else "--input-range"
        raise ValueError(
            f"{option} sets generated inputs but --inputs supplies every input; "
            "use one or the other"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_fills(values: Any, ranges: Any) -> None:
    """input_values / input_ranges are well-formed (they also arrive from the network)."""
    if not isinstance(values, dict) or not isinstance(ranges, dict):
        raise ValueError("input_values and input_ranges must map input names to numbers")
    for name, value in values.items():
        if not isinstance(name, str) or not _is_number(value):
            raise ValueError(f"--input-value {name}={value!r}: the value must be a finite number")
    for name, bounds in ranges.items():
        if (
            not isinstance(name, str)
            or not isinstance(bounds, (list, tuple))
            or len(bounds) != 2
            or not all(_is_number(b) for b in bounds)
        ):
            raise ValueError(f"--input-range {name}={bounds!r}: expected two finite numbers LO,HI")
        if bounds[0] > bounds[1]:
            raise ValueError(
                f"--input-range {name}={bounds[0]},{bounds[1]}: LO is above HI; give LO,HI"
            )
        if name in values:
            raise ValueError(f"input {name!r} has both --input-value and --input-range; keep one")


def _parse_number(text: str) -> Number:
    """``16000`` → 16000, ``0.5`` → 0.5, ``true``/``false`` → 1/0; ValueError otherwise."""
    word = text.strip().lower()
    if word in ("true", "false"):
        return int(word == "true")
    try:
        return int(word)
    except ValueError:
        value = float(word)  # raises ValueError for what is no number
    if not math.isfinite(value):
        raise ValueError(word)
    return value


def parse_input_value_option(values: list[str]) -> dict[str, Number]:
    """Parse repeated ``--input-value NAME=V`` (V a number, or true/false for a flag).

    Raises ValueError with a one-line message showing the expected form. Whether V
    fits the input's dtype is checked where the model is loaded.
    """
    parsed: dict[str, Number] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise ValueError(f"--input-value {value!r}: expected NAME=V, e.g. sr=16000")
        try:
            parsed[name] = _parse_number(text)
        except ValueError:
            raise ValueError(
                f"--input-value {value!r}: V must be a finite number (or true/false), "
                f"e.g. {name}=16000"
            ) from None
    return parsed


def parse_input_range_option(values: list[str]) -> dict[str, list[Number]]:
    """Parse repeated ``--input-range NAME=LO,HI`` (LO <= HI; integers inclusive).

    Raises ValueError with a one-line message showing the expected form.
    """
    parsed: dict[str, list[Number]] = {}
    for value in values:
        name, sep, text = value.partition("=")
        bounds = text.split(",")
        if not sep or not name or len(bounds) != 2:
            raise ValueError(f"--input-range {value!r}: expected NAME=LO,HI, e.g. x=0,255")
        try:
            lo, hi = (_parse_number(b) for b in bounds)
        except ValueError:
            raise ValueError(
                f"--input-range {value!r}: LO and HI must be finite numbers, e.g. {name}=0,255"
            ) from None
        if lo > hi:
            raise ValueError(f"--input-range {value!r}: LO is above HI; give LO,HI")
        parsed[name] = [lo, hi]
    return parsed


def parse_shape_option(values: list[str]) -> dict[str, list[int]]:
    """Parse repeated ``--shape name=1,3,224,224`` options.

    Raises ValueError with a message that shows the expected form.
    """
    shapes: dict[str, list[int]] = {}
    for value in values:
        name, sep, dims = value.partition("=")
        if not sep or not name:
            raise ValueError(f"--shape {value!r}: expected NAME=D1,D2,... e.g. input=1,3,224,224")
        try:
            parsed = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise ValueError(
                f"--shape {value!r}: dimensions must be integers, e.g. {name}=1,3,224,224"
            ) from None
        if not parsed or any(d < 1 for d in parsed):
            raise ValueError(f"--shape {value!r}: dimensions must be positive integers")
        shapes[name] = parsed
    return shapes


_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m``, ``1.5h`` or ``1h30m``.

    Raises ValueError with the accepted forms when ``text`` is none of them.
    """
    value = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(min|h|m|s|)", value)
    if not value or not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise ValueError(f"{text!r} is not a duration: use e.g. 90s, 10m, 1h or 1h30m")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be positive")
    return seconds


MIN_MEMORY_MB = 64.0
"""Below this no worker starts at all (the interpreter and NumPy alone take ~30 MiB)."""
_SIZE_UNITS = {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 * 1024}


def parse_memory_size(text: str) -> float:
    """``--max-memory`` values: ``512M``, ``2G``, ``1.5GiB``, ``800`` (MiB) → MiB.

    Raises ValueError with a message that shows the expected form.
    """
    value = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in "KMGT" else ""
    number = value[: len(value) - len(unit)].strip()
    try:
        size = float(number) * _SIZE_UNITS[unit]
    except ValueError:
        raise ValueError(f"memory size {text!r}: expected e.g. 512M or 2G") from None
    if not size >= MIN_MEMORY_MB or size == float("inf"):
        raise ValueError(f"memory size {text!r}: a worker needs at least {MIN_MEMORY_MB:.0f} MiB")
    return size

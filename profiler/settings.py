"""How a model is to be measured: one frozen value object shared by the CLI,
the agent and the worker process (it travels to the worker as JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


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
    timeout_s: float | None = None
    """Wall-clock limit of the worker process; None derives one from the settings."""
    keep_samples: bool = True
    """Keep raw per-run latency samples in the result."""

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

    def effective_timeout(self) -> float:
        """The worker's wall-clock limit: explicit, or generous enough for the phases."""
        if self.timeout_s is not None:
            return self.timeout_s
        return 120.0 + self.max_seconds * 2 + self.warmup_seconds * 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProfileSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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

"""Profile options shared by `hostctl profile` and `hostctl push`: declared once,
so the two commands cannot drift apart (defaults live in ProfileSettings)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

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
Runtime = Annotated[RuntimeChoice, typer.Option("--runtime", help="Runtime to use.")]
Provider = Annotated[
    str | None,
    typer.Option(
        "--provider", help="ONNX Runtime execution provider (default: CPUExecutionProvider)."
    ),
]
Xnnpack = Annotated[
    bool, typer.Option("--xnnpack/--no-xnnpack", help="XNNPACK delegate for TFLite models.")
]
Shape = Annotated[
    list[str] | None,
    typer.Option(
        "--shape",
        help="Shape of an input with dynamic dims: NAME=D1,D2,... (repeatable).",
        show_default=False,
    ),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of generated inputs (default: 0).")]
Label = Annotated[
    str | None, typer.Option("--label", help="Free-form label stored with the result.")
]

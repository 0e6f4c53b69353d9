"""Runtime backends and the choice among them.

Importing this package imports no runtime and no NumPy; :func:`create_backend`
does, in the worker process.
"""

from __future__ import annotations

import os
from pathlib import Path

from profiler.backends.base import Backend, TensorSpec
from profiler.errors import BAD_INPUT, BAD_MODEL, NOT_FOUND, UNSUPPORTED_FORMAT, ProfilerError
from profiler.settings import ProfileSettings

__all__ = ["RUNTIME_CHOICES", "Backend", "TensorSpec", "create_backend", "detect_format"]

RUNTIME_CHOICES = ("auto", "litert", "tflite-runtime", "tensorflow", "onnxruntime")
"""Values of ``ProfileSettings.runtime``."""

_TFLITE_RUNTIMES = {
    "litert": "litert",
    "tflite-runtime": "tflite_runtime",
    "tflite_runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
}


def _has_tflite_identifier(head: bytes) -> bool:
    # A TFLite flatbuffer carries the file identifier "TFL3" at bytes 4..8.
    return len(head) >= 8 and head[4:8] == b"TFL3"


def detect_format(model_path: str | os.PathLike[str]) -> str:
    """'tflite' or 'onnx' from the extension, checked against the file's first bytes.

    Raises NOT_FOUND, UNSUPPORTED_FORMAT or BAD_MODEL with a one-line reason.
    Uses only the standard library (the runner calls it in the parent process).
    """
    path = Path(model_path)
    if not path.is_file():
        what = "is a directory, not a model file" if path.is_dir() else "does not exist"
        raise ProfilerError(NOT_FOUND, f"model file {path} {what}")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ProfilerError(NOT_FOUND, f"cannot read model file {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if not head:
        raise ProfilerError(BAD_MODEL, f"{path.name} is empty (0 bytes); copy the model again")
    if suffix == ".tflite":
        if not _has_tflite_identifier(head):
            raise ProfilerError(
                BAD_MODEL,
                f"{path.name} is not a TFLite flatbuffer (no TFL3 identifier); "
                "check that the file is a .tflite model and was copied completely",
            )
        return "tflite"
    if suffix == ".onnx":
        if _has_tflite_identifier(head):
            raise ProfilerError(
                BAD_MODEL, f"{path.name} is a TFLite model with an .onnx extension; rename it"
            )
        return "onnx"
    hint = (
        " (it looks like a TFLite model: rename it to .tflite)"
        if _has_tflite_identifier(head)
        else ""
    )
    raise ProfilerError(
        UNSUPPORTED_FORMAT,
        f"{path.name}: unsupported model extension {suffix or '(none)'!r}; "
        f"expected .tflite or .onnx{hint}",
    )


def create_backend(fmt: str, settings: ProfileSettings) -> Backend:
    """Import the runtime chosen by ``settings.runtime`` for a model of format ``fmt``."""
    runtime = settings.runtime
    if runtime not in RUNTIME_CHOICES and runtime != "tflite_runtime":
        raise ProfilerError(
            BAD_INPUT, f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIME_CHOICES)}"
        )
    if fmt == "tflite":
        if runtime == "onnxruntime":
            raise ProfilerError(
                BAD_INPUT,
                "runtime onnxruntime cannot run .tflite models; use --runtime auto or litert",
            )
        from profiler.backends.tflite import TFLiteBackend

        return TFLiteBackend(
            runtime=_TFLITE_RUNTIMES.get(runtime, "auto"),
            threads=settings.threads,
            xnnpack=settings.xnnpack,
        )
    if runtime not in ("auto", "onnxruntime"):
        raise ProfilerError(
            BAD_INPUT,
            f"runtime {runtime} cannot run .onnx models; use --runtime auto or onnxruntime",
        )
    from profiler.backends.onnxrt import OnnxRuntimeBackend

    return OnnxRuntimeBackend(threads=settings.threads, provider=settings.provider)

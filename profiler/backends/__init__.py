"""Runtime backends and the choice among them.

Importing this package imports no runtime and no NumPy; :func:`create_backend`
does, in the worker process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from profiler.backends.base import Backend, TensorSpec
from profiler.errors import BAD_INPUT, BAD_MODEL, NOT_FOUND, UNSUPPORTED_FORMAT, ProfilerError
from profiler.settings import ProfileSettings

__all__ = [
    "RUNTIME_CHOICES",
    "Backend",
    "TensorSpec",
    "create_backend",
    "detect_format",
    "format_from_content",
]

RUNTIME_CHOICES = ("auto", "litert", "tflite-runtime", "tensorflow", "onnxruntime")
"""Values of ``ProfileSettings.runtime``."""

_TFLITE_RUNTIMES = {
    "litert": "litert",
    "tflite-runtime": "tflite_runtime",
    "tflite_runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
}


TFLITE_EXTENSIONS = (".tflite", ".lite")
ONNX_EXTENSIONS = (".onnx",)


def _has_tflite_identifier(head: bytes) -> bool:
    # A TFLite flatbuffer carries the file identifier "TFL3" at bytes 4..8.
    return len(head) >= 8 and head[4:8] == b"TFL3"


def _read_varint(fh: BinaryIO) -> int | None:
    value = 0
    for shift in range(0, 70, 7):
        byte = fh.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    return None  # more than 10 bytes: not a varint


def _looks_like_onnx(fh: BinaryIO, size: int) -> bool:
    """Whether the file is a well-formed protobuf with an ONNX ModelProto's
    ir_version (field 1) and graph (field 7).

    Walks only the top-level fields, seeking over their contents, so a large
    model costs a handful of reads and no ONNX import (this runs in the parent
    process). Random bytes almost never parse to the end of the file.
    """
    fh.seek(0)
    ir_version = 0
    has_graph = False
    for _ in range(100_000):
        pos = fh.tell()
        if pos == size:
            return ir_version >= 1 and has_graph
        key = _read_varint(fh)
        if key is None or key >> 3 == 0:
            return False
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = _read_varint(fh)
            if value is None:
                return False
            if field == 1:
                ir_version = value
        elif wire in (1, 5):
            fh.seek(8 if wire == 1 else 4, 1)
        elif wire == 2:
            length = _read_varint(fh)
            if length is None or fh.tell() + length > size:
                return False
            has_graph = has_graph or (field == 7 and length > 0)
            fh.seek(length, 1)
        else:  # groups (3, 4) do not occur in ONNX; 6 and 7 are invalid
            return False
        if fh.tell() > size:
            return False
    return False


def format_from_content(path: Path, *, tflite: bool, onnx: bool) -> str:
    """'tflite' or 'onnx' from what the file holds; the extension only for messages.

    Content decides: a file named ``model.txt`` holding ONNX is an ONNX model.
    A model behind the other format's extension is refused with the name to
    rename it to. Shared by :func:`detect_format` and
    :func:`profiler.analysis.detect_format` so that ``profile`` and
    ``inspect`` say the same thing about a file.
    """
    ext = path.suffix.lower()
    if tflite:
        if ext in ONNX_EXTENSIONS:
            raise ProfilerError(
                UNSUPPORTED_FORMAT,
                f"{path.name} has an .onnx extension but holds a TFLite model (TFL3 "
                f"identifier); rename it to {path.stem}.tflite",
            )
        return "tflite"
    if onnx:
        if ext in TFLITE_EXTENSIONS:
            raise ProfilerError(
                UNSUPPORTED_FORMAT,
                f"{path.name} has a {ext} extension but holds an ONNX model; "
                f"rename it to {path.stem}.onnx",
            )
        return "onnx"
    if ext in TFLITE_EXTENSIONS:
        raise ProfilerError(
            BAD_MODEL,
            f"{path.name} is not a valid TFLite model: no TFL3 identifier at offset 4 "
            "(truncated or corrupt file?); re-export or re-copy it",
        )
    if ext in ONNX_EXTENSIONS:
        raise ProfilerError(
            BAD_MODEL,
            f"{path.name} could not be parsed as an ONNX model (truncated or corrupt file?); "
            "re-export or re-copy it",
        )
    raise ProfilerError(
        UNSUPPORTED_FORMAT,
        f"{path.name} is neither a .tflite nor an .onnx model (no TFL3 identifier, not an "
        "ONNX protobuf); give a TensorFlow Lite or ONNX model file",
    )


def detect_format(model_path: str | os.PathLike[str], name: str | None = None) -> str:
    """'tflite' or 'onnx' from the file's content (see :func:`format_from_content`).

    ``name`` is the file's display name (its messages and extension check use it:
    the agent's cached copy has none of its own). Raises NOT_FOUND,
    UNSUPPORTED_FORMAT or BAD_MODEL with a one-line reason. Uses only the
    standard library (the runner calls it in the parent process).
    """
    path = Path(model_path)
    shown = Path(name) if name else path
    if not path.is_file():
        what = "is a directory, not a model file" if path.is_dir() else "does not exist"
        raise ProfilerError(NOT_FOUND, f"model file {path} {what}")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(16)
            if not head:
                raise ProfilerError(
                    BAD_MODEL, f"{shown.name} is empty (0 bytes); copy the model again"
                )
            tflite = _has_tflite_identifier(head)
            onnx = not tflite and _looks_like_onnx(fh, size)
    except OSError as exc:
        raise ProfilerError(NOT_FOUND, f"cannot read model file {path}: {exc.strerror}") from None
    return format_from_content(shown, tflite=tflite, onnx=onnx)


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

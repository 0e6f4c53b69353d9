"""What the host can tell about a model before any byte leaves it: its format, the
options that contradict it, and whether it can run with the inputs given.

A push (and a live check or study) calls :func:`preflight` first, so a model that
no device could run — a text file, dynamic dims without ``--shape``, ``--provider``
on a .tflite — is one red line on the host instead of N failures on the fleet.
Pure code (no typer, no rich); raises HostctlError with one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostctl.errors import HostctlError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checked:
    """A model that passed the host's checks."""

    path: Path
    format: str
    """'tflite' or 'onnx', from the file's content."""
    warnings: tuple[str, ...] = ()


def _specs(inputs: list[dict[str, Any]]) -> list[Any]:
    from profiler.backends.base import TensorSpec

    specs = []
    for entry in inputs:
        shape = entry.get("shape")
        dims = entry.get("dims") or []
        if shape is None:
            continue  # unknown rank: only the runtime can tell
        named = tuple(
            d if d is not None else (dims[i] if i < len(dims) and dims[i] != "?" else None)
            for i, d in enumerate(shape)
        )
        specs.append(TensorSpec(str(entry.get("name")), named, str(entry.get("dtype"))))
    return specs


def check_inputs(path: Path, shapes: dict[str, list[int]]) -> None:
    """HostctlError when the model has dynamic input dims that `shapes` (``--shape``)
    does not give, or `shapes` contradicts the model (same words as the profiler)."""
    from profiler.analysis import analyze
    from profiler.errors import ProfilerError
    from profiler.inputs import resolve_shapes

    try:
        report = analyze(path)
    except ProfilerError as exc:
        # The host's reader is not the runtime (no TFLite schema here, a newer op set):
        # what it cannot read, the device's runtime judges, and reports.
        logger.info("cannot check the inputs of %s here: %s", path.name, exc.message)
        return
    try:
        resolve_shapes(_specs(report.get("inputs") or []), shapes)
    except ProfilerError as exc:
        raise HostctlError(f"{path.name}: {exc.message} (nothing was sent)") from None


def preflight(path: Path, settings: Any) -> Checked:
    """Check one model against the profile settings before it is sent anywhere."""
    from hostctl.options import check_for_model
    from profiler.backends import detect_format
    from profiler.errors import ProfilerError

    if not path.is_file():
        raise HostctlError(f"{path}: no such file")
    try:
        fmt = detect_format(path)
    except ProfilerError as exc:
        raise HostctlError(exc.message) from None
    try:
        warnings = check_for_model(settings, fmt, path.name)
    except ValueError as exc:
        raise HostctlError(str(exc)) from None
    check_inputs(path, dict(settings.shapes))
    return Checked(path, fmt, tuple(warnings))

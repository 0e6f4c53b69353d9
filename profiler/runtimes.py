"""Which inference runtimes work on this machine (for the agent's info message).

:func:`probe_runtimes` asks a short-lived child process, so the caller never
imports a runtime (or NumPy) itself.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def probe_in_process() -> dict[str, Any]:
    """Import each installed runtime here and report versions / providers / problems.

    Runtimes that are not installed are left out; installed ones that fail to
    import carry ``{"version": ..., "error": "..."}``.
    """
    from profiler.backends.base import package_version
    from profiler.backends.tflite import import_interpreter_module
    from profiler.errors import ProfilerError

    found: dict[str, Any] = {}
    dists = {
        "litert": ("ai-edge-litert", "ai-edge-litert-nightly"),
        "tflite_runtime": ("tflite-runtime",),
        "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"),
    }
    for runtime, names in dists.items():
        version = package_version(*names)
        if version is None:
            continue
        try:
            _, version = import_interpreter_module(runtime)
            found[runtime] = {"version": version}
        except ProfilerError as exc:
            found[runtime] = {"version": version, "error": exc.message}
    ort_version = package_version(
        "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"
    )
    if ort_version is not None:
        try:
            import onnxruntime as ort

            found["onnxruntime"] = {
                "version": ort_version,
                "providers": list(ort.get_available_providers()),
            }
        except Exception as exc:  # a broken install: report it, do not fail the probe
            found["onnxruntime"] = {"version": ort_version, "error": _first_line(exc)}
    return found


def probe_runtimes(timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """``{"litert": {"version"}, "onnxruntime": {"version", "providers"}, ...}`` from a child.

    Returns ``{"error": "..."}`` if the probe itself failed (crash, timeout).
    """
    from profiler.runner import outcome_error, run_child

    outcome = run_child({"mode": "probe"}, timeout_s=timeout_s)
    err = outcome_error(outcome, "this machine", timeout_s)
    if err is not None or outcome.result is None:
        message = err.message if err else "no result"
        log.warning("runtime probe failed: %s", message)
        return {"error": message}
    return outcome.result

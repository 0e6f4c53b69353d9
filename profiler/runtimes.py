"""Which inference runtimes work on this machine, and whether a job can run here.

:func:`probe_runtimes` asks a short-lived child process, so the caller never
imports a runtime (or NumPy) itself; the agent publishes what it finds in its
info message. :func:`job_refusal` turns that probe into the one-line reason a
device gives when it lacks the runtime a job asks for — before it downloads
anything. Both the probe keys and result ``runtime.name`` use the backend names
(``litert``, ``tflite_runtime``, ``tensorflow``, ``onnxruntime``); messages for
people use the ``--runtime`` spelling (``tflite-runtime``).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0

FORMAT_RUNTIMES: dict[str, tuple[str, ...]] = {
    "tflite": ("litert", "tflite_runtime", "tensorflow"),
    "onnx": ("onnxruntime",),
}
"""Backend names that can run each model format, in the order 'auto' tries them."""

_BACKEND_NAME = {
    "litert": "litert",
    "tflite-runtime": "tflite_runtime",
    "tflite_runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
    "onnxruntime": "onnxruntime",
}
"""``--runtime`` value (ProfileSettings.runtime) -> backend name."""

_OPTION_NAME = {"tflite_runtime": "tflite-runtime"}

ONNXRUNTIME_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-qnn",
)

_MODULES = {
    "litert": "ai_edge_litert",
    "tflite_runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
    "onnxruntime": "onnxruntime",
}


def option_name(backend: str) -> str:
    """The ``--runtime`` spelling of a backend name (tflite_runtime -> tflite-runtime)."""
    return _OPTION_NAME.get(backend, backend)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _installed(runtime: str) -> bool:
    """Whether the runtime is installed: by its distribution's metadata, or its module.

    Some images install a runtime without pip metadata (a Debian package, a wheel
    unpacked by hand); finding the module still counts.
    """
    from profiler.backends.base import package_version
    from profiler.backends.tflite import DISTRIBUTIONS

    names = ONNXRUNTIME_DISTRIBUTIONS if runtime == "onnxruntime" else DISTRIBUTIONS[runtime]
    if package_version(*names) is not None:
        return True
    try:
        return importlib.util.find_spec(_MODULES[runtime]) is not None
    except (ImportError, ValueError):
        return False


def _probe_onnxruntime() -> dict[str, Any]:
    from profiler.backends.base import package_version

    version = package_version(*ONNXRUNTIME_DISTRIBUTIONS)
    try:
        import onnxruntime as ort

        return {
            "version": version or str(getattr(ort, "__version__", "")) or None,
            "providers": list(ort.get_available_providers()),
        }
    except Exception as exc:  # a broken install: report it, do not fail the probe
        return {"version": version, "error": _first_line(exc)}


def probe_in_process() -> dict[str, Any]:
    """Import each installed runtime here and report versions / providers / problems.

    ``{"litert": {"version"}, "tflite_runtime": {"version"}, "onnxruntime":
    {"version", "providers"}, ...}``: every runtime found, side by side (LiteRT
    and tflite-runtime load in one process). Runtimes that are not installed are
    left out; installed ones that fail to import carry ``{"version", "error"}``.
    """
    from profiler.backends.base import package_version
    from profiler.backends.tflite import DISTRIBUTIONS, import_interpreter_module
    from profiler.errors import ProfilerError

    found: dict[str, Any] = {}
    for runtime in FORMAT_RUNTIMES["tflite"]:
        if not _installed(runtime):
            continue
        try:
            _, version = import_interpreter_module(runtime)
            found[runtime] = {"version": version}
        except ProfilerError as exc:
            found[runtime] = {
                "version": package_version(*DISTRIBUTIONS[runtime]),
                "error": exc.message,
            }
    if _installed("onnxruntime"):
        found["onnxruntime"] = _probe_onnxruntime()
    return found


def probe_runtimes(timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """What :func:`probe_in_process` finds, asked of a child process.

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


def _usable(runtimes: Mapping[str, Any], backend: str) -> bool:
    entry = runtimes.get(backend)
    return isinstance(entry, Mapping) and not entry.get("error")


def describe_runtimes(runtimes: Mapping[str, Any], *, unusable: bool = False) -> str:
    """``litert 2.3.0, onnxruntime 1.32.0 (CPU, Azure)``: the usable runtimes of a probe.

    With ``unusable``, installed runtimes that cannot load are listed too, marked
    ``(cannot load)``, and a failed probe reads ``probe failed: ...``.
    """
    if "error" in runtimes:
        return f"probe failed: {runtimes['error']}" if unusable else "unknown runtimes"
    parts = []
    for backend, entry in runtimes.items():
        if not isinstance(entry, Mapping) or (entry.get("error") and not unusable):
            continue
        text = option_name(backend)
        version = entry.get("version")
        # A device's info is read from the network: only a plain version is shown.
        if isinstance(version, (str, int, float)) and not isinstance(version, bool) and version:
            text += f" {str(version)[:40]}"
        providers = entry.get("providers")
        if entry.get("error"):
            text += " (cannot load)"
        elif isinstance(providers, list) and providers:
            short = [str(p).removesuffix("ExecutionProvider") for p in providers]
            text += " (" + ", ".join(short) + ")"
        parts.append(text)
    return ", ".join(parts) or "no runtime"


def job_refusal(
    runtimes: Mapping[str, Any], fmt: str, runtime: object, provider: object = None
) -> tuple[str, str] | None:
    """``(code, reason)`` when a job for a ``fmt`` model with ``--runtime runtime``
    (and ONNX ``provider``) cannot run on a device whose probe found ``runtimes``.

    None when it can, or when the probe failed (``{"error": ...}``, nothing
    known): the worker then tries and reports what happens. Codes:
    ``runtime_missing`` (not installed or not loadable here), ``provider_missing``
    and ``bad_manifest`` (a runtime that cannot run that format, an unknown name).
    """
    if "error" in runtimes or fmt not in FORMAT_RUNTIMES:
        return None
    have = f"this device has {describe_runtimes(runtimes)}"
    install = {
        "tflite": "install ai-edge-litert (or tflite-runtime with numpy<2) there",
        "onnx": "install onnxruntime there",
    }
    if not isinstance(runtime, str) or (runtime != "auto" and runtime not in _BACKEND_NAME):
        choices = ", ".join(["auto", *sorted({option_name(b) for b in _BACKEND_NAME.values()})])
        return "bad_manifest", f"unknown runtime {runtime!r}; choose one of {choices}"
    if runtime == "auto":
        if not any(_usable(runtimes, b) for b in FORMAT_RUNTIMES[fmt]):
            return "runtime_missing", f"no runtime for .{fmt} models: {have}; {install[fmt]}"
        backend = next(b for b in FORMAT_RUNTIMES[fmt] if _usable(runtimes, b))
    else:
        backend = _BACKEND_NAME[runtime]
        name = option_name(backend)
        if backend not in FORMAT_RUNTIMES[fmt]:
            fits = " or ".join(option_name(b) for b in FORMAT_RUNTIMES[fmt])
            return "bad_manifest", f"runtime {name} cannot run .{fmt} models; use {fits} or auto"
        entry = runtimes.get(backend)
        if not isinstance(entry, Mapping):
            return "runtime_missing", f"runtime {name} is not installed; {have}"
        if entry.get("error"):
            return (
                "runtime_missing",
                f"runtime {name} is installed but cannot load: {entry['error']}",
            )
    if backend == "onnxruntime" and isinstance(provider, str) and provider:
        providers = runtimes["onnxruntime"].get("providers")
        if isinstance(providers, list) and provider not in providers:
            return "provider_missing", f"provider {provider} is not available; {have}"
    return None

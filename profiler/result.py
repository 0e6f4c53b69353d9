"""Builders of the result document (DESIGN.md "Result document").

Every document carries every key; what does not apply is null. Keys are never
renamed within a schema version.

The schema constant, its history and the one reader of these documents live in
``protocol.result`` (shared with the agent and hostctl).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from profiler import __version__
from profiler.settings import ProfileSettings
from protocol.result import RESULT_SCHEMA

RESULT_KEYS = (
    "schema",
    "status",
    "job_id",
    "label",
    "created_at",
    "device",
    "model",
    "runtime",
    "settings",
    "latency_ms",
    "init_ms",
    "first_inference_ms",
    "memory_mb",
    "accuracy",
    "env",
    "flags",
    "error",
    "phases",
    "samples",
    "energy",
    "timeline",
    "per_op",
    "edgeprof_version",
)
"""Top-level keys of every result document, in order."""

MEMORY_KEYS = (
    "peak_rss",
    "rss_after_imports",
    "rss_after_load",
    "rss_after_first_inference",
    "rss_end",
    "load_delta",
)
RUNTIME_KEYS = ("name", "version", "delegate_or_provider", "threads")
MODEL_KEYS = ("name", "sha256", "size_bytes", "format", "params", "macs", "sparsity")
ENV_KEYS = ("temp_c_start", "temp_c_end", "throttled", "cpu_freq_mhz", "governor", "load_avg")

_FORMATS = {".tflite": "tflite", ".onnx": "onnx"}


def utc_now_iso() -> str:
    """The current time as ISO 8601 UTC with a 'Z' suffix, second precision."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_section(
    path: str | os.PathLike[str],
    analysis: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """``model{...}``: what the file says about itself, plus analysis figures if known.

    ``name`` is the model's display name (default: the file's name). Tolerates a
    missing or unreadable file (an error result still names the model).
    """
    p = Path(path)
    section: dict[str, Any] = dict.fromkeys(MODEL_KEYS)
    section["name"] = name or p.name
    section["format"] = _FORMATS.get(Path(section["name"]).suffix.lower())
    try:
        section["size_bytes"] = p.stat().st_size if p.is_file() else None
        section["sha256"] = file_sha256(p) if p.is_file() else None
    except OSError:
        pass
    # Whether ``macs`` covers every op; false means it is a lower bound (see
    # profiler.analysis), null when the model was not analysed.
    section["macs_complete"] = None
    if analysis:
        section["macs_complete"] = analysis.get("macs_complete")
        for key in ("params", "macs", "sparsity", "format"):
            if analysis.get(key) is not None:
                section[key] = analysis[key]
        for key, value in analysis.items():
            section.setdefault(key, value)  # extras (weight dtypes, ...) are welcome
    return section


def runtime_section(info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``runtime{name, version, delegate_or_provider, threads}`` (nulls when unknown)."""
    section: dict[str, Any] = dict.fromkeys(RUNTIME_KEYS)
    if info:
        section.update(info)
    return section


def memory_section(
    worker: Mapping[str, Any] | None = None, peak_rss: float | None = None
) -> dict[str, Any]:
    """``memory_mb{...}`` from the worker's checkpoints and the kernel's peak RSS."""
    section: dict[str, Any] = dict.fromkeys(MEMORY_KEYS)
    if worker:
        section.update(worker)
    section["peak_rss"] = round(peak_rss, 3) if peak_rss is not None else None
    return section


def settings_section(
    settings: ProfileSettings,
    inputs: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``settings{runs, warmup, min_seconds, inputs, input_shapes, ...}``: every option used.

    ``inputs`` is the worker's description of the inputs it made (source, seed or
    file, and each tensor's name, shape, dtype and fill); ``input_shapes`` ({name:
    dims}) the shapes it used, null when the run ended before they were known.
    ``names`` maps file paths to their display names: a result names the data
    files as the user knows them, never by a path on the device.
    """

    def shown(path: str | None) -> str | None:
        if not path:
            return None
        return (names or {}).get(os.path.normpath(path)) or Path(path).name

    section = settings.to_dict()
    section["inputs_path"] = shown(settings.inputs_path)
    section["eval_path"] = shown(settings.eval_path)
    if inputs is None:
        inputs = (
            {"source": "file", "file": shown(settings.inputs_path), "seed": None}
            if settings.inputs_path
            else {"source": "generated", "file": None, "seed": settings.seed}
        )
    section["inputs"] = dict(inputs)
    tensors = inputs.get("tensors")
    section["input_shapes"] = (
        {str(t["name"]): list(t["shape"]) for t in tensors} if isinstance(tensors, list) else None
    )
    if settings.eval_path:
        section["eval"] = shown(settings.eval_path)
    section["timeout_s"] = settings.effective_timeout()
    return section


def env_placeholder() -> dict[str, Any]:
    """``env{...}`` with every key null (environment not captured)."""
    return dict.fromkeys(ENV_KEYS)


def build_result(
    *,
    status: str,
    device: Mapping[str, Any],
    model: Mapping[str, Any],
    settings: Mapping[str, Any],
    job_id: str | None = None,
    label: str | None = None,
    runtime: Mapping[str, Any] | None = None,
    latency_ms: Mapping[str, Any] | None = None,
    init_ms: float | None = None,
    first_inference_ms: float | None = None,
    memory_mb: Mapping[str, Any] | None = None,
    accuracy: Mapping[str, Any] | None = None,
    accuracy_error: Mapping[str, str] | None = None,
    env: Mapping[str, Any] | None = None,
    flags: Sequence[str] = (),
    error: Mapping[str, str] | None = None,
    phases: Mapping[str, Any] | None = None,
    samples: Mapping[str, Any] | None = None,
    energy: Mapping[str, Any] | None = None,
    timeline: Sequence[Mapping[str, Any]] | None = None,
    per_op: Sequence[Mapping[str, Any]] | None = None,
    sustained: Mapping[str, Any] | None = None,
    per_op_info: Mapping[str, Any] | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """A complete result document with every key of :data:`RESULT_KEYS`.

    Plus ``accuracy_error`` (an extra key, always present): ``{code, message}``
    when the ``--eval`` accuracy phase failed after the latency was measured
    (``accuracy`` is then null and ``flags`` has ``accuracy_error``), else null.

    DESIGN's optional keys, null when absent: ``energy{mj_per_inference, ci95,
    avg_power_w, idle_power_w, rail, source, samples, ...}`` (profiler.energy),
    ``timeline[]`` (``--sustained``: per block ``{t_s, seconds, runs, p50_ms,
    p90_ms, temp_c, cpu_freq_mhz, cpu_freq_cap_mhz, throttle_bits, throttled}``,
    profiler.sustained), ``per_op[]`` (``--per-op``: per op type ``{op_type,
    share, total_ms, ms_per_run, calls_per_run, nodes, providers[]}``,
    profiler.per_op). Extra keys beside them, also always present:
    ``sustained{duration_s, blocks, throttle_began_s, latency_before_ms,
    latency_after_ms, slowdown, temp_c_first, temp_c_max}`` and
    ``per_op_info{source, runs, kernel_ms_per_run, run_ms_per_run,
    top_nodes[], note}`` (with ``--per-op``; for LiteRT only the note).
    """
    if status not in ("ok", "error"):
        raise ValueError(f"status must be 'ok' or 'error', not {status!r}")
    if (status == "error") != (error is not None):
        raise ValueError("an error result needs error{code, message}; an ok one must not")
    return {
        "schema": RESULT_SCHEMA,
        "status": status,
        "job_id": job_id,
        "label": label,
        "created_at": created_at or utc_now_iso(),
        "device": dict(device),
        "model": dict(model),
        "runtime": runtime_section(runtime),
        "settings": dict(settings),
        "latency_ms": dict(latency_ms) if latency_ms is not None else None,
        "init_ms": init_ms,
        "first_inference_ms": first_inference_ms,
        "memory_mb": dict(memory_mb) if memory_mb is not None else memory_section(),
        "accuracy": dict(accuracy) if accuracy is not None else None,
        "accuracy_error": dict(accuracy_error) if accuracy_error is not None else None,
        "env": dict(env) if env is not None else env_placeholder(),
        "flags": list(flags),
        "error": dict(error) if error is not None else None,
        "phases": dict(phases) if phases is not None else None,
        "samples": dict(samples) if samples is not None else None,
        "energy": dict(energy) if energy is not None else None,
        "timeline": [dict(row) for row in timeline] if timeline is not None else None,
        "per_op": [dict(row) for row in per_op] if per_op is not None else None,
        "sustained": dict(sustained) if sustained is not None else None,
        "per_op_info": dict(per_op_info) if per_op_info is not None else None,
        "edgeprof_version": __version__,
    }

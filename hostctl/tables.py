"""Result documents as flat rows and study tables: csv for spreadsheets, the
markdown table that model-compression papers publish (accuracy / size /
latency per model, device and setting).

Pure code (no typer, no rich): ``hostctl results`` and ``hostctl report`` share it.
Documents are read with :func:`protocol.result.read_result`; numbers are
written by :mod:`hostctl.format`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hostctl import format as fmt
from protocol.result import Result, ResultError, read_result

FLAT_COLUMNS = (
    "job_id",
    "created_at",
    "label",
    "device",
    "model",
    "sha256",
    "format",
    "variant",
    "size_bytes",
    "params",
    "macs",
    "macs_complete",
    "sparsity",
    "input_shapes",
    "runtime",
    "provider",
    "threads",
    "status",
    "n",
    "p50_ms",
    "p50_ci_lo",
    "p50_ci_hi",
    "p90_ms",
    "p90_ci_lo",
    "p90_ci_hi",
    "p99_ms",
    "mean_ms",
    "cov",
    "peak_rss_mb",
    "top1",
    "eval_n",
    "flags",
    "error",
)
"""Columns of ``--format csv``: one flat row per result, everything a study needs."""


def _readable(docs: Iterable[Mapping[str, Any] | Result]) -> list[Result]:
    out = []
    for doc in docs:
        if isinstance(doc, Result):
            out.append(doc)
            continue
        try:
            out.append(read_result(doc))
        except ResultError:
            continue  # a table of figures has no row for what is not a result
    return out


def shapes_text(result: Result) -> str | None:
    """``x=1x3x224x224;y=1`` — the input shapes in one csv-safe cell."""
    shapes = result.settings.input_shapes
    if not shapes:
        return None
    return ";".join(f"{name}={'x'.join(str(d) for d in dims)}" for name, dims in shapes.items())


def flatten(result: Result) -> dict[str, Any]:
    """One flat row of a result (the csv columns), raw numbers."""
    latency = result.latency
    runtime = result.runtime
    p50_ci = latency.ci95_p50 if latency else None
    p90_ci = latency.ci95_p90 if latency else None
    variant = result.model.variant
    return {
        "job_id": result.job_id,
        "created_at": result.created_at,
        "label": result.label,
        "device": result.device.id,
        "model": result.model.name,
        "sha256": (result.model.sha256 or "")[:12] or None,
        "format": result.model.format,
        "variant": variant.kind if variant else None,
        "size_bytes": result.model.size_bytes,
        "params": result.model.params,
        "macs": result.model.macs,
        "macs_complete": result.model.macs_complete,
        "sparsity": result.model.sparsity,
        "input_shapes": shapes_text(result),
        "runtime": " ".join(p for p in (runtime.name, runtime.version) if p) or None,
        "provider": runtime.delegate_or_provider,
        "threads": runtime.threads,
        "status": result.status,
        "n": latency.n if latency else None,
        "p50_ms": latency.p50 if latency else None,
        "p50_ci_lo": p50_ci.lo if p50_ci else None,
        "p50_ci_hi": p50_ci.hi if p50_ci else None,
        "p90_ms": latency.p90 if latency else None,
        "p90_ci_lo": p90_ci.lo if p90_ci else None,
        "p90_ci_hi": p90_ci.hi if p90_ci else None,
        "p99_ms": latency.p99 if latency else None,
        "mean_ms": latency.mean if latency else None,
        "cov": latency.cov if latency else None,
        "peak_rss_mb": result.memory.peak_rss,
        "top1": result.accuracy.top1 if result.accuracy else None,
        "eval_n": result.accuracy.n if result.accuracy else None,
        "flags": " ".join(result.flags) or None,
        "error": result.error.code if result.error else None,
    }


def to_csv(docs: Iterable[Mapping[str, Any] | Result]) -> str:
    """Every readable result as one csv row of :data:`FLAT_COLUMNS`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FLAT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in _readable(docs):
        writer.writerow({k: "" if v is None else v for k, v in flatten(result).items()})
    return out.getvalue()


STUDY_COLUMNS = (
    "model",
    "label",
    "device",
    "runtime",
    "inputs",
    "size",
    "params",
    "MACs",
    "sparsity",
    "top-1",
    "p50 ms [95% CI]",
    "p90 ms",
    "peak MB",
    "status",
)
"""Columns of the study table: the accuracy / size / latency table that
model-compression papers report, one row per (model, device, settings)."""


def study_row(result: Result) -> dict[str, str]:
    """One row of the study table, formatted for people (latencies in ms, so a
    column reads in one unit)."""
    latency = result.latency
    p50 = fmt.sig(latency.p50) if latency and latency.p50 is not None else ""
    if p50 and latency and latency.ci95_p50 is not None:
        p50 += f" [{fmt.sig(latency.ci95_p50.lo)}–{fmt.sig(latency.ci95_p50.hi)}]"
    status = "ok" if result.ok else f"error: {result.error.code if result.error else 'error'}"
    if result.flags:
        status += f" ({' '.join(result.flags)})"
    runtime = result.runtime
    model = result.model
    return {
        "model": model.name or "",
        "label": result.label or "",
        "device": result.device.id or "",
        "runtime": " ".join(
            p for p in (runtime.name, runtime.version, runtime.delegate_or_provider) if p
        ),
        "inputs": fmt.shapes(result.settings.input_shapes).replace(fmt.DASH, ""),
        "size": fmt.size(model.size_bytes) if model.size_bytes is not None else "",
        "params": fmt.count(model.params) if model.params is not None else "",
        "MACs": fmt.macs(model.macs, model.macs_complete)
        if model.macs is not None or model.macs_complete is False
        else "",
        "sparsity": fmt.percent(model.sparsity) if model.sparsity is not None else "",
        "top-1": fmt.percent(result.accuracy.top1, 2)
        if result.accuracy and result.accuracy.top1 is not None
        else "",
        "p50 ms [95% CI]": p50,
        "p90 ms": fmt.sig(latency.p90) if latency and latency.p90 is not None else "",
        "peak MB": fmt.sig(result.memory.peak_rss) if result.memory.peak_rss is not None else "",
        "status": status,
    }


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def to_markdown(
    docs: Iterable[Mapping[str, Any] | Result],
    *,
    include_errors: bool = False,
    columns: Sequence[str] = STUDY_COLUMNS,
) -> str:
    """The study table as GitHub-flavoured markdown; error results are left out
    unless `include_errors` (a study table is about what was measured)."""
    results = [r for r in _readable(docs) if include_errors or r.ok]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for result in results:
        row = study_row(result)
        lines.append("| " + " | ".join(_md_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "FLAT_COLUMNS",
    "STUDY_COLUMNS",
    "flatten",
    "shapes_text",
    "study_row",
    "to_csv",
    "to_markdown",
]

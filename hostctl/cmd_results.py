"""`hostctl results` (stored results as table/json/csv/markdown) and `hostctl collect`."""

from __future__ import annotations

import csv
import io
import json
import logging
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cmdutil import global_options, user_errors, warning_line
from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions

logger = logging.getLogger(__name__)


class OutputFormat(str, Enum):
    """Formats of `hostctl results`."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


FLAT_COLUMNS = (
    "job_id",
    "created_at",
    "label",
    "device",
    "model",
    "sha256",
    "format",
    "size_bytes",
    "params",
    "macs",
    "sparsity",
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


def _dig(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _ci(doc: dict[str, Any], key: str, end: int) -> Any:
    ci = _dig(doc, "latency_ms", key)
    return ci[end] if isinstance(ci, list) and len(ci) == 2 else None


def flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """One flat row of a result document (the csv columns)."""
    runtime = _dig(doc, "runtime", "name")
    version = _dig(doc, "runtime", "version")
    return {
        "job_id": doc.get("job_id"),
        "created_at": doc.get("created_at"),
        "label": doc.get("label"),
        "device": _dig(doc, "device", "id"),
        "model": _dig(doc, "model", "name"),
        "sha256": (_dig(doc, "model", "sha256") or "")[:12] or None,
        "format": _dig(doc, "model", "format"),
        "size_bytes": _dig(doc, "model", "size_bytes"),
        "params": _dig(doc, "model", "params"),
        "macs": _dig(doc, "model", "macs"),
        "sparsity": _dig(doc, "model", "sparsity"),
        "runtime": f"{runtime} {version}" if runtime and version else runtime,
        "provider": _dig(doc, "runtime", "delegate_or_provider"),
        "threads": _dig(doc, "runtime", "threads"),
        "status": doc.get("status"),
        "n": _dig(doc, "latency_ms", "n"),
        "p50_ms": _dig(doc, "latency_ms", "p50"),
        "p50_ci_lo": _ci(doc, "ci95_p50", 0),
        "p50_ci_hi": _ci(doc, "ci95_p50", 1),
        "p90_ms": _dig(doc, "latency_ms", "p90"),
        "p90_ci_lo": _ci(doc, "ci95_p90", 0),
        "p90_ci_hi": _ci(doc, "ci95_p90", 1),
        "p99_ms": _dig(doc, "latency_ms", "p99"),
        "mean_ms": _dig(doc, "latency_ms", "mean"),
        "cov": _dig(doc, "latency_ms", "cov"),
        "peak_rss_mb": _dig(doc, "memory_mb", "peak_rss"),
        "top1": _dig(doc, "accuracy", "top1"),
        "eval_n": _dig(doc, "accuracy", "n"),
        "flags": " ".join(str(f) for f in doc.get("flags") or []) or None,
        "error": _dig(doc, "error", "code"),
    }


def to_csv(docs: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FLAT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for doc in docs:
        writer.writerow({k: "" if v is None else v for k, v in flatten(doc).items()})
    return out.getvalue()


def _md_cell(value: Any) -> str:
    if value is None:
        return ""
    return str(value).replace("|", "\\|")


STUDY_COLUMNS = (
    "model",
    "label",
    "device",
    "runtime",
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
"""Columns of ``--format markdown``: the accuracy / size / latency table that
model-compression papers report, one row per (model, device, settings)."""


def _sig(value: Any, digits: int = 3) -> str | None:
    return None if not isinstance(value, (int, float)) else f"{value:.{digits}g}"


def study_row(doc: dict[str, Any]) -> dict[str, Any]:
    """One row of the markdown study table, formatted for people."""
    from hostctl.render import format_bytes

    row = flatten(doc)
    p50 = _sig(row["p50_ms"])
    if p50 is not None and row["p50_ci_lo"] is not None:
        p50 += f" [{_sig(row['p50_ci_lo'])}–{_sig(row['p50_ci_hi'])}]"
    macs = row["macs"]
    status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row['error']}"
    if row["flags"]:
        status += f" ({row['flags']})"
    return {
        "model": row["model"],
        "label": row["label"],
        "device": row["device"],
        "runtime": " ".join(str(p) for p in (row["runtime"], row["provider"]) if p) or None,
        "size": format_bytes(row["size_bytes"]) if row["size_bytes"] is not None else None,
        "params": f"{row['params']:,}" if isinstance(row["params"], int) else None,
        # incomplete (custom ops, unknown shapes): what was counted is a lower bound
        "MACs": (
            ("≥ " if _dig(doc, "model", "macs_complete") is False else "") + f"{macs / 1e6:.3g} M"
            if isinstance(macs, (int, float))
            else None
        ),
        "sparsity": f"{row['sparsity']:.1%}" if isinstance(row["sparsity"], float) else None,
        "top-1": f"{row['top1']:.2%}" if isinstance(row["top1"], (int, float)) else None,
        "p50 ms [95% CI]": p50,
        "p90 ms": _sig(row["p90_ms"]),
        "peak MB": _sig(row["peak_rss_mb"]),
        "status": status,
    }


def to_markdown(docs: list[dict[str, Any]]) -> str:
    """The study table (see :data:`STUDY_COLUMNS`) as GitHub-flavoured markdown."""
    lines = ["| " + " | ".join(STUDY_COLUMNS) + " |", "|" + "---|" * len(STUDY_COLUMNS)]
    for doc in docs:
        row = study_row(doc)
        lines.append("| " + " | ".join(_md_cell(row[c]) for c in STUDY_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def collect_results(
    options: GlobalOptions, *, wait: float, require_broker: bool
) -> tuple[int, int]:
    """Send Collect to the fleet, store what arrives; (received, new).

    With `require_broker` False an unreachable broker is logged and (0, 0) returned.
    """
    from hostctl.cmd_push import fleet_session, open_store
    from hostctl.fleet import collect
    from hostctl.keys import load_key

    key_problem: str | None = None
    try:
        key = load_key(options.key)
    except HostctlError as exc:
        # Still worth connecting: the broker may hold queued results for us.
        key_problem = str(exc)
        key = None
    with open_store(options) as store:
        try:
            session = fleet_session(options, store.path)
        except HostctlError:
            if require_broker:
                raise
            logger.info("broker not reachable: showing stored results only")
            return 0, 0
        if key_problem is not None:
            # Said once the broker answered (one error line when it does not).
            if require_broker:
                warning_line(f"results cannot be acknowledged to devices: {key_problem}")
            else:
                logger.info("results cannot be acknowledged to devices: %s", key_problem)
        try:
            return collect(session, store, key, wait=wait)
        finally:
            session.close()


def results_command(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Only this device.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model file name or SHA-256 prefix.")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Only results with this label.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N results.")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fetch: Annotated[
        bool,
        typer.Option(
            "--collect/--no-collect",
            help="First fetch results waiting on the broker (skipped when it is unreachable).",
        ),
    ] = True,
) -> None:
    """Show stored results (after fetching any the devices still hold)."""
    options = global_options(ctx)
    with user_errors():
        if fetch:
            collect_results(options, wait=1.0, require_broker=False)
        from hostctl.store import ResultStore

        with ResultStore(options.db) as store:
            docs = store.query(device=device, model=model, label=label, limit=limit)
    fmt = OutputFormat.json if as_json else output
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(docs, indent=2))
    elif fmt is OutputFormat.csv:
        typer.echo(to_csv(docs), nl=False)
    elif fmt is OutputFormat.markdown:
        typer.echo(to_markdown(docs), nl=False)
    else:
        from rich.console import Console

        if not docs:
            Console(stderr=True).print("no stored results match")
            return
        from hostctl.render import results_table

        Console().print(results_table(docs))


def collect_command(
    ctx: typer.Context,
    wait: Annotated[
        float, typer.Option("--wait", min=0.0, help="Seconds to listen for results.")
    ] = 3.0,
) -> None:
    """Ask the devices to re-send results not yet acknowledged; store them."""
    options = global_options(ctx)
    with user_errors():
        received, new = collect_results(options, wait=wait, require_broker=True)
    typer.echo(f"{new} new result(s) stored ({received} received)")


def register(app: typer.Typer) -> None:
    """Add `results` and `collect` to the app."""
    app.command("results")(results_command)
    app.command("collect")(collect_command)

"""`hostctl report [filters] --html FILE` (or `--format markdown|csv|latex`): the study
table of stored results, grouped under their source models, with plots, in one
offline HTML file."""

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cmdutil import global_options, info_line, user_errors
from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.report import Group


class ReportFormat(str, Enum):
    """What `hostctl report` prints on stdout."""

    table = "table"
    markdown = "markdown"
    csv = "csv"
    latex = "latex"


class Status(str, Enum):
    """Values of `--status`."""

    ok = "ok"
    error = "error"


def report_command(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Only this device.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A model (file name with or without extension, or SHA-256 prefix): its "
            "results and those of its variants.",
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Only results with this label (a study's).")
    ] = None,
    status: Annotated[
        Status | None, typer.Option("--status", help="Only ok results, or only errors.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="WHEN", help="Only results from then on.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="WHEN", help="Only results up to then.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N results.")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", help="Write the HTML report (table, plots, data)."),
    ] = None,
    output: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="Print the study table: table (default without --html), markdown, csv, latex.",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title of the HTML report.")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the study rows as JSON (raw numbers), nothing else.", metavar=""
        ),
    ] = False,
) -> None:
    """The study table of stored results per source model: stdout, and --html FILE."""
    from hostctl.report import study
    from hostctl.store import ResultStore

    options = global_options(ctx)
    with user_errors():
        if html is not None:
            from hostctl.report_html import report_available

            missing = report_available()
            if missing:
                raise HostctlError(missing)
        filters: dict[str, Any] = {
            "device": device,
            "label": label,
            "status": status.value if status else None,
            "since": since,
            "until": until,
        }
        with ResultStore(options.db) as store:
            if model is None:
                docs = store.query(limit=limit, **filters)
            else:
                from hostctl.report import select_model

                # A source's variants are named after it and their kind (m.fiq.tflite):
                # the model is looked for among every result the other filters keep.
                docs = select_model(store.query(**filters), model)
                docs = docs[-limit:] if limit else docs
        if not docs:
            raise HostctlError("no stored results match: see `hostctl results`")
        if html is not None:
            from hostctl.report_html import write_html

            subtitle = ", ".join(f"{k} {v}" for k, v in {"model": model, **filters}.items() if v)
            write_html(html, docs, title=title or "edgeprof study", subtitle=subtitle or None)
    groups = study(docs)
    if as_json:
        import json

        from hostctl.report import rows_json

        typer.echo(json.dumps(rows_json(groups), indent=2))
    else:
        _print(groups, output or (None if html is not None else ReportFormat.table))
    if html is not None:
        info_line(f"report written to {html} ({len(docs)} results, {len(groups)} source models)")


def _print(groups: "Sequence[Group]", output: ReportFormat | None) -> None:
    from hostctl import report

    if output is None:
        return
    if output is ReportFormat.markdown:
        typer.echo(report.to_markdown(groups), nl=False)
    elif output is ReportFormat.csv:
        typer.echo(report.to_csv(groups), nl=False)
    elif output is ReportFormat.latex:
        typer.echo(report.to_latex(groups), nl=False)
    else:
        from rich.console import Console

        from hostctl.render_study import study_tables

        console = Console()
        for table in study_tables(groups, width=console.width):
            console.print(table)


def register(app: typer.Typer) -> None:
    """Add `report` to the app."""
    app.command("report")(report_command)

"""`hostctl results` (stored results as table/json/csv/markdown) and `hostctl collect`."""

from __future__ import annotations

import json
import logging
from enum import Enum
from typing import Annotated

import typer

from hostctl.cmdutil import global_options, user_errors

logger = logging.getLogger(__name__)


class OutputFormat(str, Enum):
    """Formats of `hostctl results`."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


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
    as_json: Annotated[
        bool, typer.Option("--json", help="Same as --format json.", metavar="")
    ] = False,
    fetch: Annotated[
        bool,
        typer.Option(
            "--collect/--no-collect",
            help="First fetch results waiting on the broker (skipped when it is unreachable).",
            metavar="",
        ),
    ] = True,
) -> None:
    """Show stored results (after fetching any the devices still hold)."""
    options = global_options(ctx)
    with user_errors():
        if fetch:
            from hostctl.session import collect_results

            collect_results(options, wait=1.0, require_broker=False)
        from hostctl.store import ResultStore

        with ResultStore(options.db) as store:
            docs = store.query(device=device, model=model, label=label, limit=limit)
    fmt = OutputFormat.json if as_json else output
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(docs, indent=2))
    elif fmt is OutputFormat.csv:
        from hostctl.tables import to_csv

        typer.echo(to_csv(docs), nl=False)
    elif fmt is OutputFormat.markdown:
        from hostctl.tables import to_markdown

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
        from hostctl.session import collect_results

        received, new = collect_results(options, wait=wait, require_broker=True)
    typer.echo(f"{new} new result(s) stored ({received} received)")


def register(app: typer.Typer) -> None:
    """Add `results` and `collect` to the app."""
    app.command("results")(results_command)
    app.command("collect")(collect_command)

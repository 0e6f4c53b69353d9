"""`hostctl results` (stored results as table/json/csv/markdown, with filters),
`results show JOB`, `results rm JOB…`, `results prune --errors`, and `hostctl collect`."""

from enum import Enum
from typing import Annotated, Any

import typer

from hostctl.cmdutil import (
    HelpGroup,
    error_line,
    global_options,
    info_line,
    json_text,
    user_errors,
    warning_line,
)
from hostctl.errors import HostctlError


class OutputFormat(str, Enum):
    """Formats of `hostctl results`."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Status(str, Enum):
    """Values of `--status`."""

    ok = "ok"
    error = "error"


results_app = typer.Typer(
    cls=HelpGroup,
    invoke_without_command=True,
    help="Stored results: list (with filters), show one, remove, prune.",
)


@results_app.callback()
def results_command(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Only this device.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model file name, with or without its extension, or a SHA-256 prefix.",
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Only results with this label.")
    ] = None,
    status: Annotated[
        Status | None, typer.Option("--status", help="Only ok results, or only errors.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only results from then on: 2026-12-01, 2026-12-01T10:00.",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="WHEN", help="Only results up to then.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N results.")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    include_errors: Annotated[
        bool,
        typer.Option(
            "--include-errors",
            help="Markdown: keep error rows in the study table (left out by default).",
            metavar="",
        ),
    ] = False,
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
    if ctx.invoked_subcommand is not None:
        return
    options = global_options(ctx)
    with user_errors():
        if fetch:
            from hostctl.session import collect_results

            collect_results(options, wait=1.0, require_broker=False)
        from hostctl.store import ResultStore

        with ResultStore(options.db) as store:
            docs = store.query(
                device=device,
                model=model,
                label=label,
                status=status.value if status else None,
                since=since,
                until=until,
                limit=limit,
            )
            # a live check stores LABEL:baseline / LABEL:candidate / LABEL:warmup
            roles = (
                [r for r in ("baseline", "candidate") if store.query(label=f"{label}:{r}", limit=1)]
                if label and not docs and not as_json and output is OutputFormat.table
                else []
            )
    _print(docs, OutputFormat.json if as_json else output, include_errors=include_errors)
    if roles:
        info_line(
            f"a check labelled {label} stored its runs as "
            + " and ".join(f"--label {label}:{r}" for r in roles)
        )


def _print(docs: list[dict[str, Any]], fmt: OutputFormat, *, include_errors: bool) -> None:
    if fmt is OutputFormat.json:
        typer.echo(json_text(docs))
    elif fmt is OutputFormat.csv:
        from hostctl.tables import to_csv

        typer.echo(to_csv(docs), nl=False)
    elif fmt is OutputFormat.markdown:
        from hostctl.tables import to_markdown

        typer.echo(to_markdown(docs, include_errors=include_errors), nl=False)
    elif not docs:
        info_line("no stored results match")
    else:
        from rich.console import Console

        from hostctl.render import results_table

        Console().print(results_table(docs))


@results_app.command("show")
def show_command(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(metavar="JOB", help="The job id (see `hostctl results`).")],
    device: Annotated[
        str | None, typer.Option("--device", "-d", help="The device, when the job ran on several.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result document, nothing else.", metavar="")
    ] = False,
) -> None:
    """Everything about one stored result: the panel `hostctl profile` prints."""
    from hostctl.store import ResultStore

    options = global_options(ctx)
    with user_errors(), ResultStore(options.db) as store:
        docs = store.query(job_ids=[job], device=device)
        if not docs:
            raise HostctlError(
                f"no stored result of job {job}"
                + (f" on {device}" if device else "")
                + ": see the job ids with `hostctl results`"
            )
        if len(docs) > 1:
            devices = ", ".join(sorted(str((d.get("device") or {}).get("id")) for d in docs))
            raise HostctlError(f"job {job} has results from {devices}: choose one with --device")
    if as_json:
        typer.echo(json_text(docs[0]))
        return
    from rich.console import Console

    from hostctl.render import result_detail

    Console().print(result_detail(docs[0]))


@results_app.command("rm")
def rm_command(
    ctx: typer.Context,
    jobs: Annotated[
        list[str], typer.Argument(metavar="JOB...", help="Job ids whose results to remove.")
    ],
) -> None:
    """Remove the stored results of these jobs."""
    from hostctl.store import ResultStore

    options = global_options(ctx)
    with user_errors(), ResultStore(options.db) as store:
        known = {str(d.get("job_id")) for d in store.query(job_ids=jobs)}
        unknown = [j for j in jobs if j not in known]
        removed = store.delete([j for j in jobs if j in known])
    info_line(f"{removed} result(s) removed")
    if unknown:
        error_line(f"no stored result of job(s) {', '.join(unknown)}: nothing removed for them")
        raise typer.Exit(1)


@results_app.command("prune")
def prune_command(
    ctx: typer.Context,
    errors: Annotated[
        bool, typer.Option("--errors", help="Remove every error result.", metavar="")
    ] = False,
) -> None:
    """Remove results of one kind from the store (today: error results)."""
    if not errors:
        error_line("say what to prune: --errors (every error result)")
        raise typer.Exit(2)
    from hostctl.store import ResultStore

    options = global_options(ctx)
    with user_errors(), ResultStore(options.db) as store:
        removed = store.prune_errors()
    info_line(f"{removed} error result(s) removed")


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

        collected = collect_results(options, wait=wait, require_broker=True)
    line = f"{collected.new} new result(s) stored ({collected.received} received"
    if collected.conflicts:
        line += f", {collected.conflicts} conflicting kept as events"
    if collected.refused:
        line += f", {collected.refused} refused: not sent to their device"
    typer.echo(line + ")")
    for entry in collected.expired:
        model = f" ({entry.model_name})" if entry.model_name else ""
        warning_line(
            f"job {entry.job_id} on {entry.device_id}{model}: expired without a result "
            f"(last state: {entry.state}); see `hostctl jobs --lost`"
        )


def register(app: typer.Typer) -> None:
    """Add `results` (and its subcommands) and `collect` to the app."""
    app.add_typer(results_app, name="results")
    app.command("collect")(collect_command)

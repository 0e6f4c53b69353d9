"""`hostctl jobs` (the host's job journal: pending, finished and lost jobs) and
`hostctl cancel JOB…` (stop jobs on their devices)."""

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cmdutil import error_line, global_options, info_line, json_text, user_errors

if TYPE_CHECKING:
    from hostctl.control import JobView


class JobStatus(str, Enum):
    """Values of `jobs --status`."""

    pending = "pending"
    finished = "finished"
    lost = "lost"


_STATUS_STYLE = {"pending": "yellow", "finished": "green", "lost": "red"}


def jobs_command(
    ctx: typer.Context,
    status: Annotated[
        list[JobStatus] | None,
        typer.Option("--status", help="Only jobs with this status (repeatable)."),
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Same as --status pending.", metavar="")
    ] = False,
    lost: Annotated[
        bool, typer.Option("--lost", help="Same as --status lost.", metavar="")
    ] = False,
    device: Annotated[str | None, typer.Option("--device", "-d", help="Only this device.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N jobs.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, nothing else.", metavar="")
    ] = False,
) -> None:
    """List the jobs this host sent: pending (may still deliver a result), finished
    (a result is stored) and lost (expired on the device without a result)."""
    from hostctl.control import job_views
    from hostctl.store import ResultStore

    wanted = {s.value for s in status or []}
    wanted |= {"pending"} if pending else set()
    wanted |= {"lost"} if lost else set()
    options = global_options(ctx)
    with user_errors(), ResultStore(options.db) as store:
        views = job_views(
            store, device=device, statuses=sorted(wanted) if wanted else None, limit=limit
        )
    if as_json:
        typer.echo(json_text([view.to_json() for view in views]))
        return
    if not views:
        info_line("no journaled jobs match (jobs are journaled by `hostctl push`)")
        return
    from rich.console import Console

    Console().print(_jobs_table(views))


def _jobs_table(views: "list[JobView]") -> Any:
    from rich.table import Table
    from rich.text import Text

    from hostctl.format import ago

    table = Table(title="edgeprof jobs", title_justify="left")
    for column in ("job", "device", "model", "label", "sent", "status", "state", "detail"):
        table.add_column(column, overflow="fold")
    for view in views:
        entry = view.entry
        detail = entry.reason or ""
        if view.result is not None:
            summary = view.to_json()["result"] or {}
            error = summary.get("error") or {}
            detail = "result ok" if summary.get("status") == "ok" else f"error: {error.get('code')}"
        if view.conflicts:
            detail += f" ({view.conflicts} conflicting result(s) kept as events)"
        table.add_row(
            Text(entry.job_id),
            Text(entry.device_id),
            Text(entry.model_name or "-"),
            Text(entry.label or "-"),
            Text(ago(entry.sent_at)),
            Text(view.status, style=_STATUS_STYLE.get(view.status, "")),
            Text(entry.state),
            Text(detail or "-"),
        )
    return table


def cancel_command(
    ctx: typer.Context,
    jobs: Annotated[
        list[str], typer.Argument(metavar="JOB...", help="Job ids to stop (see `hostctl jobs`).")
    ],
    wait: Annotated[
        float,
        typer.Option("--wait", min=0.0, help="Seconds to wait for the devices to confirm."),
    ] = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, nothing else.", metavar="")
    ] = False,
) -> None:
    """Stop jobs on their devices (a running worker is killed); the result, which
    says `canceled`, is stored."""
    from hostctl.control import cancel_jobs, cancel_targets
    from hostctl.keys import load_key
    from hostctl.session import fleet_session, open_store

    options = global_options(ctx)
    with user_errors(), open_store(options) as store:
        targets, outcomes = cancel_targets(store, jobs)
        if targets:
            key = load_key(options.key)
            session = fleet_session(options, store.path)
            try:
                outcomes += cancel_jobs(session, store, key, targets, wait=wait)
            finally:
                session.close()
    order = {job: index for index, job in enumerate(jobs)}
    outcomes.sort(key=lambda c: (order.get(c.job_id, 0), c.device_id or ""))
    if as_json:
        typer.echo(json_text([c.to_json() for c in outcomes]))
    for canceled in outcomes:
        where = f"job {canceled.job_id}" + (
            f" on {canceled.device_id}" if canceled.device_id else ""
        )
        if canceled.ok:
            if not as_json:
                info_line(f"{where}: {canceled.outcome}: {canceled.detail}")
        else:
            error_line(f"{where}: {canceled.detail}")
    if not all(c.ok for c in outcomes):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `jobs` and `cancel` to the app."""
    app.command("jobs")(jobs_command)
    app.command("cancel", no_args_is_help=True)(cancel_command)

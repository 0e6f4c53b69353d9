"""`hostctl demo`: an embedded broker and a local agent, the compression study of the
digits CNN run on them, the study table and the HTML report."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from hostctl.cmdutil import error_line, global_options, info_line, json_text, user_errors
from hostctl.errors import HostctlError


class BrokerChoice(str, Enum):
    """Which embedded broker the demo starts."""

    auto = "auto"
    mosquitto = "mosquitto"
    amqtt = "amqtt"


def demo_command(
    ctx: typer.Context,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="Leave the broker and agent running; print what to try next.", metavar=""
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the result documents as JSON, nothing else.", metavar=""
        ),
    ] = False,
    broker: Annotated[
        BrokerChoice, typer.Option("--embedded-broker", help="Broker to embed.", hidden=True)
    ] = BrokerChoice.auto,
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx/--no-onnx",
            help="Also study the CNN's .onnx twin (ONNX Runtime; twice the time).",
            metavar="",
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Where to write the HTML report (default: demo-report.html in the user data dir).",
        ),
    ] = None,
) -> None:
    """Run the compression study of a small CNN on a broker and agent started here."""
    from rich.console import Console

    from hostctl.demo import (
        DEMO_PHASES,
        default_report_path,
        demo_plans,
        missing_packages,
        run_demo,
        start_fleet,
        study_command,
    )
    from hostctl.progress import PushProgress
    from hostctl.render_variants import outcome_warnings
    from hostctl.report_html import write_html
    from hostctl.store import ResultStore, redact_url
    from hostctl.study import made_files, make_variants

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    options = global_options(ctx)
    report = html or default_report_path()
    with user_errors():
        missing = missing_packages(include_onnx=onnx)
        if missing:  # before a broker and an agent are started, not after
            raise HostctlError(
                f"hostctl demo makes variants and draws a report, which needs "
                f"{', '.join(missing)}: pip install 'edgeprof[demo]'"
            )
        store_path = ResultStore.resolve(options.db)  # the results outlive the demo fleet
        with err.status("starting a broker and an agent on this machine"):
            fleet = start_fleet(broker=broker.value)
        info_line(f"broker: {fleet.broker_kind} at {fleet.url}; agent: demo-device")
        try:
            plans = demo_plans(fleet.workdir, include_onnx=onnx)
            files: list[Path] = []
            for plan in plans:
                with err.status(f"making the variants of {plan.model.name}…"):
                    outcomes = make_variants(plan)
                outcome_warnings(outcomes, err)
                files += made_files(outcomes)
            info_line(f"{len(files)} variants of the digits CNN; {DEMO_PHASES}")
            with PushProgress(True) as progress:
                outcome = run_demo(
                    fleet,
                    files,
                    eval_data=plans[0].eval_data,
                    db=store_path,
                    on_update=progress.update,
                    on_targets=progress.add,
                )
        except BaseException:
            fleet.stop(remove=not keep)
            raise
        if not keep:
            fleet.stop()
        write_html(
            report,
            outcome.results,
            title="edgeprof demo: the compression study of a digits CNN",
            subtitle="scikit-learn's 8×8 digits, 360 held-out images; " + DEMO_PHASES,
        )
    if as_json:
        typer.echo(json_text(outcome.results))
    else:
        from hostctl.render_study import study_tables
        from hostctl.report import study

        console = Console()
        for table in study_tables(
            study(outcome.results), title="edgeprof demo", width=console.width
        ):
            console.print(table)
        info_line(
            f"results stored in {redact_url(str(store_path))}: see them again with "
            "`hostctl results --label demo` or `hostctl report --label demo`"
        )
    info_line(f"report (table, plots, data; open it in a browser): {report}")
    if keep:
        pids = " ".join(str(p.pid) for p in fleet.processes)
        info_line(
            f"the demo fleet keeps running (stop it with: kill {pids}; then remove {fleet.workdir})"
        )
        info_line("try next:")
        info_line(f"  {study_command(fleet, plans[0], redact_url(str(store_path)))}")
    if outcome.failures:
        for failure in outcome.failures:
            error_line(f"{failure.device_id} ({failure.model}): {failure.state}: {failure.reason}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `demo` to the app."""
    app.command("demo")(demo_command)

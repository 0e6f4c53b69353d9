"""`hostctl demo`: an embedded broker and a local agent, the demo models pushed and reported."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from hostctl.cmdutil import error_line, global_options, info_line, json_text, user_errors


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
        bool, typer.Option("--onnx/--no-onnx", help="Also push the ONNX demo model.", metavar="")
    ] = True,
) -> None:
    """Start a broker and an agent on this machine, push the demo models, show the results."""
    from rich.console import Console

    from hostctl.demo import demo_models, next_command, run_demo, start_fleet
    from hostctl.progress import PushProgress
    from hostctl.store import ResultStore, redact_url

    err = Console(stderr=True)
    options = global_options(ctx)
    with user_errors():
        models = demo_models(include_onnx=onnx)
        store_path = ResultStore.resolve(options.db)  # the results outlive the demo fleet
        with err.status("starting a broker and an agent on this machine"):
            fleet = start_fleet(broker=broker.value)
        info_line(f"broker: {fleet.broker_kind} at {fleet.url}; agent: demo-device")
        try:
            with PushProgress(True) as progress:
                outcome = run_demo(
                    fleet,
                    models,
                    db=store_path,
                    on_update=progress.update,
                    on_targets=progress.add,
                )
        except BaseException:
            fleet.stop(remove=not keep)
            raise
        if not keep:
            fleet.stop()
    if as_json:
        typer.echo(json_text(outcome.results))
    else:
        from hostctl.render import results_table

        Console().print(results_table(outcome.results, title="edgeprof demo"))
        info_line(
            f"results stored in {redact_url(str(store_path))}: see them again with "
            "`hostctl results --label demo`"
        )
    if keep:
        pids = " ".join(str(p.pid) for p in fleet.processes)
        info_line(
            f"the demo fleet keeps running (stop it with: kill {pids}; then remove {fleet.workdir})"
        )
        info_line("try next:")
        info_line(f"  {next_command(fleet, models[0], redact_url(str(store_path)))}")
    if outcome.failures:
        for failure in outcome.failures:
            error_line(f"{failure.device_id} ({failure.model}): {failure.state}: {failure.reason}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `demo` to the app."""
    app.command("demo")(demo_command)

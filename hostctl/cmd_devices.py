"""`hostctl devices`: the fleet inventory from the devices' retained state and info."""

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cmdutil import HelpGroup, global_options, info_line, json_text, user_errors
from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.fleet import Device

_STATE_STYLE = {"online": "green", "busy": "yellow", "offline": "red"}


def _hardware(info: dict[str, Any]) -> str:
    from protocol.result import DeviceSection

    # The typed reader: a field of the wrong type (a device's "ram_mb": "lots") reads
    # as missing, never as an exception.
    hw = DeviceSection.read(info.get("device"))
    parts = [value for value in (hw.machine, hw.cpu) if value]
    if hw.cores:
        parts.append(f"{hw.cores} cores")
    if hw.ram_mb:
        parts.append(f"{hw.ram_mb / 1024:.1f} GB")
    return ", ".join(parts) or "-"


def _runtimes(info: dict[str, Any]) -> str:
    from profiler.runtimes import describe_runtimes

    runtimes = info.get("runtimes")
    if not isinstance(runtimes, dict) or not runtimes:
        return "-"
    return describe_runtimes(runtimes, unusable=True)


def devices_table(devices: "list[Device]") -> Any:
    """A rich table of the fleet."""
    from rich.table import Table
    from rich.text import Text

    from hostctl.format import ago

    table = Table(title="edgeprof devices", title_justify="left")
    for column in ("device", "state", "last seen", "hardware", "runtimes", "tags"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for device in devices:
        doc = device.to_json()
        style = _STATE_STYLE.get(device.status, "")
        table.add_row(
            Text(device.id),
            Text(device.status, style=style),
            Text(ago(device.last_seen, now)),
            Text(_hardware(doc["info"])),
            Text(_runtimes(doc["info"])),
            Text(", ".join(device.tags) or "-"),
        )
    return table


devices_app = typer.Typer(
    cls=HelpGroup,
    invoke_without_command=True,
    help="The fleet: list the devices (online/busy/offline, hardware, runtimes, tags), "
    "forget a decommissioned one.",
)


def _inventory(options: Any, wait: float) -> Any:
    """The fleet as the broker's retained messages describe it (a short, clean session)."""
    from hostctl.fleet import INVENTORY_SUBSCRIPTIONS, read_fleet
    from hostctl.mqtt import HostSession, ephemeral_client_id

    session = HostSession(
        options,
        client_id=ephemeral_client_id(),
        subscriptions=INVENTORY_SUBSCRIPTIONS,
        persistent=False,
    )
    session.connect()
    try:
        fleet, _ = read_fleet(session, wait=wait)
    finally:
        session.close()
    return fleet


@devices_app.callback()
def devices_command(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list, nothing else.", metavar="")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", min=0.0, help="Listen this many more seconds for devices to announce."
        ),
    ] = 0.0,
) -> None:
    """List the devices, with online/busy/offline, hardware, runtimes and tags."""
    if ctx.invoked_subcommand is not None:
        return
    options = global_options(ctx)
    with user_errors():
        fleet = _inventory(options, wait)
    devices = fleet.sorted()
    if as_json:
        typer.echo(json_text([d.to_json() for d in devices]))
        return
    from rich.console import Console

    if not devices:
        Console(stderr=True).print(
            "no devices have announced themselves on this broker; start an agent with "
            "`edgeprof-agent --broker URL --device-id ID --trust host.pub`"
        )
        return
    Console().print(devices_table(devices))


@devices_app.command("forget")
def forget_command(
    ctx: typer.Context,
    device_ids: Annotated[
        list[str], typer.Argument(metavar="ID...", help="Devices to remove from the fleet.")
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also forget a device that is online now (it re-announces itself).",
            metavar="",
        ),
    ] = False,
) -> None:
    """Remove decommissioned devices: their retained state and info on the broker are
    cleared, so `devices`, `push --all` and `--tag` no longer see them."""
    from hostctl.mqtt import HostSession, ephemeral_client_id
    from protocol import topics
    from protocol.errors import ProtocolError

    options = global_options(ctx)
    with user_errors():
        for device_id in device_ids:
            try:
                topics.check_device_id(device_id)
            except ProtocolError as exc:  # one line, nothing cleared
                raise HostctlError(str(exc)) from None
        fleet = _inventory(options, 0.0)
        unknown = [d for d in device_ids if d not in fleet.devices]
        if unknown:
            raise HostctlError(
                f"no device {', '.join(unknown)} on this broker (see `hostctl devices`): "
                "nothing was forgotten"
            )
        live = [d for d in device_ids if fleet.devices[d].status != "offline"]
        if live and not force:
            raise HostctlError(
                f"{', '.join(live)} {'is' if len(live) == 1 else 'are'} online: stop the agent "
                "first (or --force; a running agent announces itself again)"
            )
        session = HostSession(
            options, client_id=ephemeral_client_id(), subscriptions=[], persistent=False
        )
        session.connect()
        try:
            for device_id in device_ids:
                # An empty retained message clears the topic (MQTT 3.1.1, 3.3.1.3).
                session.publish(topics.state(device_id), b"", retain=True)
                session.publish(topics.info(device_id), b"", retain=True)
            session.wait_published(timeout=10.0)
        finally:
            session.close()
    info_line(f"forgot {', '.join(device_ids)}")


def register(app: typer.Typer) -> None:
    """Add `devices` (and `devices forget`) to the app."""
    app.add_typer(devices_app, name="devices")

"""``edgeprof-agent``: parse options, validate settings once, run the daemon.

A bad setting exits 1 with one readable line; SIGTERM / SIGINT publish the
offline state, disconnect cleanly and exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Annotated, Any

import typer

from agent import __version__
from agent.config import AgentSettings, ConfigError, load_settings

app = typer.Typer(
    name="edgeprof-agent",
    help="The edgeprof device daemon: runs signed profiling jobs pushed over MQTT.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeprof-agent {__version__}")
        raise typer.Exit()


@app.command()
def run(
    broker: Annotated[
        str | None,
        typer.Option(
            help="Broker URL: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (env EDGEPROF_BROKER)."
        ),
    ] = None,
    device_id: Annotated[
        str | None, typer.Option("--device-id", help="This device's id (env EDGEPROF_DEVICE_ID).")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", help="A label hosts can target (repeatable) (env EDGEPROF_TAGS, comma list)."
        ),
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="Host public key to trust (host.pub from `hostctl keys init`; repeatable) (env EDGEPROF_TRUST).",
        ),
    ] = None,
    allow_unsigned: Annotated[
        bool, typer.Option("--allow-unsigned", help="DEVELOPMENT ONLY: accept unsigned jobs.")
    ] = False,
    cache_dir: Annotated[
        str | None,
        typer.Option(
            "--cache-dir", help="Models, downloads and unsent results (env EDGEPROF_CACHE_DIR)."
        ),
    ] = None,
    cache_quota_mb: Annotated[
        int | None,
        typer.Option("--cache-quota-mb", help="Model cache size limit in MiB (default 2048)."),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="TOML config file (flags and env variables override it)."),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Broker user name (env EDGEPROF_USERNAME).")
    ] = None,
    password_file: Annotated[
        str | None,
        typer.Option(
            "--password-file",
            help="File holding the broker password (env EDGEPROF_PASSWORD / EDGEPROF_PASSWORD_FILE).",
        ),
    ] = None,
    ca_cert: Annotated[
        str | None, typer.Option("--ca-cert", help="CA bundle for mqtts://.")
    ] = None,
    client_cert: Annotated[
        str | None, typer.Option("--client-cert", help="TLS client certificate.")
    ] = None,
    client_key: Annotated[str | None, typer.Option("--client-key", help="TLS client key.")] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Connect to the broker, announce this device and run jobs one at a time."""
    cli: dict[str, Any] = {
        "broker": broker,
        "device_id": device_id,
        "tags": tag,
        "trust": trust,
        "allow_unsigned": True if allow_unsigned else None,
        "cache_dir": cache_dir,
        "cache_quota_mb": cache_quota_mb,
        "username": username,
        "password_file": password_file,
        "ca_cert": ca_cert,
        "client_cert": client_cert,
        "client_key": client_key,
        "log_level": log_level,
    }
    try:
        settings = load_settings(cli, config_file=config)
    except ConfigError as exc:
        typer.secho(f"edgeprof-agent: error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(serve(settings))


def serve(settings: AgentSettings) -> int:
    """Configure logging and signals, then run the agent until it is told to stop."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from agent.daemon import Agent

    try:
        agent = Agent(settings)
    except OSError as exc:
        typer.secho(
            f"edgeprof-agent: error: cannot use cache dir {settings.cache_dir}: {exc}",
            fg="red",
            err=True,
        )
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s", signal.Signals(signum).name)
        agent.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return agent.run()


def main() -> None:
    """Console-script entry point."""
    app()

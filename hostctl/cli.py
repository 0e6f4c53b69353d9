"""The `hostctl` typer application: global options and command registration.

Each command lives in its own module (`hostctl/cmd_*.py`), listed below, and
registers itself on :data:`app` via ``register(app)``; commands parse options and call plain
keyword-only functions. Domain errors become one red line and exit 1 here,
in the CLI layer only.
"""

import os
from dataclasses import dataclass
from typing import Annotated

import typer

from hostctl import (
    __version__,
    cmd_check,
    cmd_compare,
    cmd_demo,
    cmd_devices,
    cmd_inspect,
    cmd_jobs,
    cmd_keys,
    cmd_profile,
    cmd_push,
    cmd_report,
    cmd_results,
    cmd_study,
    cmd_variants,
)
from hostctl.cmdutil import HelpGroup

app = typer.Typer(
    cls=HelpGroup,
    name="hostctl",
    rich_markup_mode=None,
    help="Profile .tflite/.onnx models here or on a fleet of edge devices.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the command; commands read them from ``ctx.obj``."""

    broker: str
    """Broker URL, mqtt://host:port or mqtts://host:port."""
    username: str | None
    password: str | None
    ca_cert: str | None
    client_cert: str | None
    client_key: str | None
    insecure: bool
    db: str | None
    """Results store: a SQLite file or a postgresql:// URL; None means the default
    SQLite file in the user data dir."""
    key: str | None
    """Ed25519 signing key file; None means the default key."""
    verbose: bool


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hostctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    broker: Annotated[
        str,
        typer.Option(
            envvar="EDGEPROF_BROKER", help="Broker URL: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]."
        ),
    ] = "mqtt://127.0.0.1:1883",
    username: Annotated[
        str | None, typer.Option(envvar="EDGEPROF_USERNAME", help="Broker user name.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="EDGEPROF_PASSWORD", help="Broker password (prefer the env variable)."),
    ] = None,
    ca_cert: Annotated[
        str | None,
        typer.Option("--ca-cert", envvar="EDGEPROF_CA_CERT", help="CA bundle for mqtts://."),
    ] = None,
    client_cert: Annotated[
        str | None,
        typer.Option(
            "--client-cert", envvar="EDGEPROF_CLIENT_CERT", help="TLS client certificate."
        ),
    ] = None,
    client_key: Annotated[
        str | None,
        typer.Option("--client-key", envvar="EDGEPROF_CLIENT_KEY", help="TLS client key."),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Do not verify the broker's TLS certificate.", metavar=""),
    ] = False,
    db: Annotated[
        str | None,
        typer.Option(
            envvar="EDGEPROF_DB",
            help="Results store: a SQLite file, or postgresql://USER@HOST/DB for a shared one.",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="EDGEPROF_KEY", help="Ed25519 signing key (default: see `hostctl keys init`)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.", metavar="")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Profile .tflite/.onnx models on this machine or on a fleet of edge devices."""
    from hostctl.logsetup import configure_logging  # runs for commands, not for --help

    configure_logging(verbose)
    ctx.obj = GlobalOptions(
        broker=broker,
        username=username,
        password=password,
        ca_cert=ca_cert,
        client_cert=client_cert,
        client_key=client_key,
        insecure=insecure,
        db=db,
        key=key,
        verbose=verbose,
    )


# Static registration: each command module imports only typer and light modules at
# its top (never a runtime, numpy, MQTT, signing, store, logging or json code), so
# `hostctl --help` stays fast; what a command needs is imported when it runs. Command
# modules do not use `from __future__ import annotations`: typer would eval every
# string annotation on each start (tests/hostctl/test_cli_help.py checks both).
for _command in (
    cmd_profile,
    cmd_inspect,
    cmd_keys,
    cmd_devices,
    cmd_push,
    cmd_results,
    cmd_jobs,
    cmd_demo,
    cmd_variants,
    cmd_study,
    cmd_report,
    cmd_compare,
    cmd_check,
):
    _command.register(app)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()

"""``edgeprof-agent``: parse options, validate settings once, run the daemon.

A bad setting exits 1 with one readable line; SIGTERM / SIGINT publish the
offline state, disconnect cleanly and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from agent import __version__
from agent.config import AgentSettings, ConfigError, load_settings
from protocol.errors import ProtocolError

# argparse, not typer: the daemon lives on 512 MB boards, and typer (with the
# pydantic it now imports while parsing) costs the idle agent ~10 MB of its
# ~38 MB (bench/footprint.py); hostctl, on a laptop, keeps typer.

_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--broker", "broker", {"help": "Broker URL: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (env EDGEPROF_BROKER)."}),
    ("--device-id", "device_id", {"help": "This device's id (env EDGEPROF_DEVICE_ID)."}),
    ("--tag", "tags", {"action": "append", "help": "A label hosts can target (repeatable) (env EDGEPROF_TAGS, comma list)."}),
    ("--trust", "trust", {"action": "append", "help": "Host public key to trust (host.pub from `hostctl keys init`; repeatable) (env EDGEPROF_TRUST)."}),
    ("--allow-unsigned", "allow_unsigned", {"action": "store_const", "const": True, "help": "DEVELOPMENT ONLY: accept unsigned jobs."}),
    ("--cache-dir", "cache_dir", {"help": "Models, downloads and unsent results (env EDGEPROF_CACHE_DIR)."}),
    ("--cache-quota-mb", "cache_quota_mb", {"type": int, "help": "Model cache size limit in MiB (default 2048)."}),
    ("--config", "config", {"help": "TOML config file (flags and env variables override it)."}),
    ("--username", "username", {"help": "Broker user name (env EDGEPROF_USERNAME)."}),
    ("--password-file", "password_file", {"help": "File holding the broker password (env EDGEPROF_PASSWORD / EDGEPROF_PASSWORD_FILE)."}),
    ("--ca-cert", "ca_cert", {"help": "CA bundle for mqtts://."}),
    ("--client-cert", "client_cert", {"help": "TLS client certificate."}),
    ("--client-key", "client_key", {"help": "TLS client key."}),
    ("--insecure", "insecure", {"action": "store_const", "const": True, "help": "TESTING ONLY: do not verify the broker's TLS certificate (env EDGEPROF_INSECURE)."}),
    ("--max-memory", "max_memory", {"help": "Memory limit of each profiling worker, e.g. 512M or 2G (default: 80%% of the memory available when a job starts) (env EDGEPROF_MAX_MEMORY)."}),
    ("--log-level", "log_level", {"help": "DEBUG, INFO, WARNING or ERROR."}),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``edgeprof-agent`` command line."""
    parser = argparse.ArgumentParser(
        prog="edgeprof-agent",
        description="The edgeprof device daemon: runs signed profiling jobs pushed over MQTT. "
        "Connects to the broker, announces this device and runs jobs one at a time.",
    )
    for flag, dest, kwargs in _OPTIONS:
        parser.add_argument(flag, dest=dest, default=None, **kwargs)
    parser.add_argument(
        "--version",
        action="version",
        version=f"edgeprof-agent {__version__}",
        help="Show the version.",
    )
    return parser


def _error(message: str) -> None:
    # One line on stderr, red when it is a terminal (as typer.secho did).
    red = sys.stderr.isatty()
    sys.stderr.write(("\x1b[31m" if red else "") + message + ("\x1b[0m" if red else "") + "\n")


def run(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, validate the settings once, run the daemon; the exit status."""
    args = vars(build_parser().parse_args(argv))
    config = args.pop("config")
    try:
        settings = load_settings(args, config_file=config)
    except ConfigError as exc:
        _error(f"edgeprof-agent: error: {exc}")
        return 1
    return serve(settings)


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
        _error(f"edgeprof-agent: error: cannot use cache dir {settings.cache_dir}: {exc}")
        return 1
    except ProtocolError as exc:  # e.g. a TLS file that changed since it was checked
        _error(f"edgeprof-agent: error: {exc}")
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s", signal.Signals(signum).name)
        agent.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return agent.run()


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())

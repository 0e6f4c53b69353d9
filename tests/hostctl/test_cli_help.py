"""`hostctl --help` stays light: beyond what ``import typer, rich`` loads it imports
only the command modules and a few small ones of ours (no runtime, NumPy, MQTT,
signing, store, logging or JSON code), and typer is given no command whose
annotations are strings (it would ``eval`` each of them on every start)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer

from hostctl.cli import app

_MODULES = "sys.stderr.write(repr(sorted(sys.modules)))\n"
HELP = (
    "import sys\n"
    "from hostctl.cli import main\n"  # what the console script and `python -m hostctl` run
    "sys.argv = ['hostctl', '--help']\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n" + _MODULES
)
REFERENCE = "import sys, typer, rich\n" + _MODULES

LIGHT_OURS = {
    "hostctl",
    "hostctl.cli",
    "hostctl.cmdutil",
    "hostctl.errors",
    "hostctl.options",
    "profiler",
    "profiler.errors",
    "protocol",
    "protocol.errors",
}
"""Modules of ours --help may load besides the command modules (hostctl.cmd_*)."""


def _modules(code: str) -> tuple[set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(ast.literal_eval(done.stderr.strip().splitlines()[-1])), done.stdout


def test_help_loads_nothing_beyond_typer_rich_but_the_command_modules() -> None:
    reference, _ = _modules(REFERENCE)
    loaded, shown = _modules(HELP)
    assert "Commands:" in shown and "profile" in shown and "results" in shown
    extra = loaded - reference
    ours = {m for m in extra if m.split(".")[0] in ("hostctl", "profiler", "protocol")}
    heavy_ours = sorted(m for m in ours if m not in LIGHT_OURS and not m.startswith("hostctl.cmd_"))
    assert heavy_ours == [], "hostctl --help imported these; import them when a command runs"
    # typer's own help formatting may load a few more of typer's modules; nothing else
    # (numpy, a runtime, paho, nacl, ssl, sqlite3, logging, json, modelkit ...) may.
    foreign = sorted(m for m in extra - ours if m.split(".")[0] not in ("typer", "rich", "click"))
    assert foreign == [], "hostctl --help imported these beyond `import typer, rich`"


def _callbacks(
    typer_app: typer.Typer, path: str = "hostctl"
) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every function typer reads options from: app and group callbacks, commands."""
    if typer_app.registered_callback and typer_app.registered_callback.callback:
        yield path, typer_app.registered_callback.callback
    for command in typer_app.registered_commands:
        if command.callback:
            yield f"{path} {command.name or command.callback.__name__}", command.callback
    for group in typer_app.registered_groups:
        if group.typer_instance:
            yield from _callbacks(group.typer_instance, f"{path} {group.name}")


def test_no_command_has_string_annotations() -> None:
    callbacks = dict(_callbacks(app))
    assert {"hostctl", "hostctl profile", "hostctl results", "hostctl devices forget"} <= set(
        callbacks
    )
    stringly = sorted(
        f"{name} ({fn.__module__}.{fn.__qualname__})"
        for name, fn in callbacks.items()
        if any(isinstance(a, str) for a in fn.__annotations__.values())
    )
    assert stringly == [], (
        "typer evals string annotations on every start, --help included: drop "
        "`from __future__ import annotations` from these command modules"
    )

"""What every command shares: the one place messages reach the console (escaped, so
a path like ``bad[v2].onnx`` or dims like ``[1, 3]`` print exactly), one error
prefix, and turning domain errors into one red line and exit 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from hostctl.errors import HostctlError
from profiler.errors import ProfilerError
from protocol.errors import ProtocolError

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions


def error_line(message: str) -> None:
    """Print one red line on stderr."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(
        f"[red]error:[/red] {escape(message)}", markup=True, highlight=False
    )


def info_line(message: str) -> None:
    """Print one plain line on stderr (progress and hints for people; stdout stays
    clean for --json). The text is printed exactly, never read as markup."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True).print(Text(message), highlight=False)


def warning_line(message: str) -> None:
    """Print one yellow warning line on stderr."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(
        f"[yellow]warning:[/yellow] {escape(message)}", markup=True, highlight=False
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors a user can cause into one red line and exit code 1 (no traceback)."""
    try:
        yield
    except (HostctlError, ProtocolError) as exc:
        error_line(str(exc))
        raise typer.Exit(1) from None
    except ProfilerError as exc:
        error_line(exc.message)
        raise typer.Exit(1) from None


def json_text(value: Any) -> str:
    """`value` as the standard JSON ``--json`` prints: a NaN or infinity anywhere
    (a reading gone wrong, an old store) becomes null — never ``NaN``, which no
    JSON parser reads."""
    import json

    from protocol.payload import finite_json

    return json.dumps(finite_json(value), indent=2, allow_nan=False)


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The options given before the command (set by the app callback)."""
    options = ctx.find_root().obj
    if options is None:  # pragma: no cover - the callback always runs first
        raise HostctlError("internal: global options missing")
    return options  # type: ignore[no-any-return]


class HelpGroup(TyperGroup):
    """Typer's group, with ``-h/--help`` listed like every other flag: without a
    ``<bool>`` value placeholder (a flag takes no value)."""

    def get_help_option(self, ctx: Any) -> Any:
        return _quiet(super().get_help_option(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, HelpGroup):
            helper = command.get_help_option
            command.get_help_option = lambda c: _quiet(helper(c))  # type: ignore[method-assign,assignment]
        return command


def _quiet(option: Any) -> Any:
    if option is not None and getattr(option, "metavar", None) is None:
        option.metavar = ""
    return option

"""`hostctl inspect MODEL`: static analysis of a model (size, params, MACs, sparsity,
weight dtypes, inputs/outputs, op histogram) without running it."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cmdutil import error_line

if TYPE_CHECKING:
    from rich.console import Console

_DASH = "—"


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""
    app.command("inspect")(inspect_command)


def inspect_command(
    model: Annotated[
        Path, typer.Argument(help="A .tflite or .onnx model file.", show_default=False)
    ],
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape",
            metavar="NAME=D1,D2,...",
            help="Concrete shape of an input with dynamic dimensions (repeatable), for MACs.",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the analysis as JSON, nothing else on stdout.", metavar=""
        ),
    ] = False,
) -> None:
    """Show a model's size, parameters, MACs, sparsity, weight dtypes, inputs and ops."""
    import json

    from profiler.analysis import analyze
    from profiler.errors import BAD_INPUT, ProfilerError
    from profiler.settings import parse_shape_option

    try:
        try:
            shapes = parse_shape_option(shape or [])
        except ValueError as exc:
            raise ProfilerError(BAD_INPUT, str(exc)) from None
        report = analyze(model, shapes or None)
    except ProfilerError as exc:
        if json_output:
            typer.echo(json.dumps({"error": exc.to_dict()}))
        else:
            error_line(exc.message)
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console

    render_inspection(report, Console(highlight=False))


# ---------------------------------------------------------------------------
# Rendering for people
# ---------------------------------------------------------------------------


def _count(n: int) -> str:
    """1234567 → '1.23 M (1,234,567)'; the exact value alone below 10 000."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= 10_000 and n >= limit:
            return f"{n / limit:.2f} {suffix} ({n:,})"
    return f"{n:,}"


def _bytes(n: int) -> str:
    for limit, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= limit:
            return f"{n / limit:.1f} {suffix} ({n:,} bytes)"
    return f"{n:,} bytes"


def render_inspection(report: dict[str, Any], console: "Console") -> None:
    """Print :func:`profiler.analysis.analyze`'s document as a summary and tables."""
    from rich.table import Table
    from rich.text import Text

    model = report["model"]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    fmt = model["format"]
    extra = (
        f"opset {model.get('opset')}, IR {model.get('ir_version')}"
        if fmt == "onnx"
        else f"schema v{model.get('schema_version')}"
    )
    total = sum(model["weight_dtypes"].values()) or 1
    dtypes = ", ".join(
        f"{name} {count / total:.0%}" for name, count in model["weight_dtypes"].items()
    )
    if isinstance(model.get("macs"), int) and (model["macs"] or model.get("macs_complete", True)):
        macs = Text(
            f"{_count(model['macs'])}, FLOPs {_count(model.get('flops') or 2 * model['macs'])}"
        )
        if not model.get("macs_complete", True):
            macs.append(" (incomplete, a lower bound: see the notes below)", style="yellow")
    else:
        macs = Text("unknown (see the notes below)", style="yellow")
    rows: list[tuple[str, Any]] = [
        ("model", model["name"]),
        ("format", f"{fmt} ({extra})"),
        ("producer", model.get("producer") or _DASH),
        ("size", _bytes(model["size_bytes"])),
        ("sha256", model["sha256"]),
        ("parameters", _count(model["params"])),
        ("MACs", macs),
        ("sparsity", f"{model['sparsity']:.1%} of weights are exactly zero"),
        ("weight dtypes", dtypes or _DASH),
    ]
    if model.get("custom_ops"):
        rows.append(("custom ops", ", ".join(model["custom_ops"])))
    for key, value in rows:
        summary.add_row(Text(key), value if isinstance(value, Text) else Text(str(value)))
    console.print(summary)

    io = Table(title="inputs and outputs", title_justify="left")
    for col in ("", "name", "dtype", "shape", "quantization"):
        io.add_column(col)
    for kind, entries in (("input", report["inputs"]), ("output", report["outputs"])):
        for entry in entries:
            q = entry.get("quantization")
            io.add_row(
                *(
                    Text(str(value))
                    for value in (
                        kind,
                        entry["name"],
                        entry["dtype"],
                        "x".join(entry["dims"]) if entry.get("dims") else _DASH,
                        f"scale {q['scale']:.6g}, zero point {q['zero_point']}" if q else _DASH,
                    )
                )
            )
    console.print(io)

    ops = Table(title="ops", title_justify="left")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    for name, count in report["ops"].items():
        ops.add_row(Text(str(name)), Text(str(count)))
    console.print(ops)
    for note in model.get("notes", []):
        line = Text("note: ", style="yellow")
        line.append(str(note))
        console.print(line, soft_wrap=True)

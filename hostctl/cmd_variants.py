"""`hostctl variants MODEL --out DIR`: compressed variants of a model (F16, BLQ, WO8,
FIQ, PRN, PRQ), each with a recipe record and checked against its source.

The makers live in :mod:`modelkit.variants` (the ``edgeprof[variants]`` extra),
imported only when the command runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from modelkit.variants import Outcome

_DASH = "—"


def register(app: typer.Typer) -> None:
    """Add the ``variants`` command to ``app``."""
    app.command("variants")(variants_command)


def variants_command(
    model: Annotated[
        Path, typer.Argument(help="A float .tflite or .onnx model.", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Directory for the variants and their recipes.", show_default=False
        ),
    ],
    calibration: Annotated[
        str | None,
        typer.Option(
            "--calibration",
            metavar="CAL.npz|random",
            help="Typical inputs for FIQ (x, or one array per input); 'random' for a smoke "
            "test only (flagged). Without it FIQ is not made.",
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            metavar="LIST",
            help="Comma-separated kinds: fp32,f16,blq,wo8,fiq,prn,prq (default: all).",
        ),
    ] = None,
    sparsity: Annotated[
        str | None,
        typer.Option(
            "--sparsity",
            metavar="S[,S...]",
            help="Fractions of zero weights for prn/prq, e.g. 0.5,0.75 (default 0.5).",
        ),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            metavar="VAL.npz",
            help="Check the variants on these inputs (x; with y also top-1) instead of the "
            "calibration data.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the outcomes as JSON, nothing else on stdout.", metavar=""
        ),
    ] = False,
) -> None:
    """Make compressed variants of MODEL in DIR, each with NAME.recipe.json."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        from modelkit.variants import (
            VariantError,
            make_variants,
            parse_kinds,
            parse_sparsities,
        )
    except ImportError as exc:  # modelkit's own imports (numpy, onnx, flatbuffers)
        _fail(
            err, as_json, f"hostctl variants cannot start ({exc}): pip install 'edgeprof[variants]'"
        )
    try:
        kinds = parse_kinds(only)
        sparsities = parse_sparsities(sparsity)
        if as_json:
            outcomes = _make(make_variants, model, out, calibration, kinds, sparsities, eval_data)
        else:
            with err.status(f"making variants of {model.name}…"):
                outcomes = _make(
                    make_variants, model, out, calibration, kinds, sparsities, eval_data
                )
    except VariantError as exc:
        _fail(err, as_json, str(exc))
    if as_json:
        typer.echo(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        render_outcomes(outcomes, Console(highlight=False), err, labelled=eval_data is not None)
    compressed = [o for o in outcomes if o.kind != "fp32"]
    if compressed and not any(o.made for o in compressed):
        raise typer.Exit(1)  # nothing compressed was made: a script should notice


def _make(
    make_variants: Any,
    model: Path,
    out: Path,
    calibration: str | None,
    kinds: list[str],
    sparsities: list[float],
    eval_data: Path | None,
) -> list[Outcome]:
    result: list[Outcome] = make_variants(
        model,
        out,
        calibration=calibration,
        kinds=kinds,
        sparsities=sparsities,
        eval_data=eval_data,
    )
    return result


def _fail(err: Console, as_json: bool, message: str) -> None:
    from hostctl.cmdutil import error_line

    if as_json:
        typer.echo(json.dumps({"error": {"code": "bad_input", "message": message}}))
    error_line(message)
    raise typer.Exit(1)


# ---------------------------------------------------------------------------
# Rendering for people
# ---------------------------------------------------------------------------


def _snr(outcome: Outcome) -> str:
    check = outcome.check
    if check is None or check.snr_db is None:
        return _DASH
    if math.isinf(check.snr_db) and check.snr_db > 0:
        return "identical"
    return f"{check.snr_db:.1f} dB"


def render_outcomes(
    outcomes: list[Outcome], console: Console, err: Console, *, labelled: bool = False
) -> None:
    """The table of what was made (or why not), then the loud warnings."""
    from rich.markup import escape
    from rich.table import Table

    from hostctl.format import percent as _percent
    from hostctl.format import size as _size
    from modelkit.variants.check import MIN_AGREEMENT, MIN_SNR_DB

    folder = next((o.path.parent for o in outcomes if o.path is not None), None)
    title = f"variants in {folder}" if folder else "variants"
    table = Table(title=title, title_justify="left")
    numeric = {"size": 9, "zeros": 6, "agree": 6, "SNR": 9}
    if labelled:
        numeric["top-1"] = 6
    table.add_column("kind", no_wrap=True, min_width=5)
    for name, width in numeric.items():
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True, min_width=8)
    table.add_column("file", overflow="fold")
    for o in outcomes:
        if not o.made:
            table.add_row(o.name, *([_DASH] * len(numeric)), "[red]not made[/]", _DASH)
            continue
        check = o.check
        row = [
            o.name,
            _size(o.size_bytes),
            _percent(o.measured_sparsity),
            _percent(check.agreement if check else None),
            _snr(o),
        ]
        if labelled:
            row.append(_percent(check.top1 if check else None))
        warn = [f for f in o.flags if f != "checked_on_random_inputs"]
        row.append("[yellow]flagged[/]" if warn else "[green]ok[/]")
        row.append(o.path.name if o.path else _DASH)
        table.add_row(*row)
    console.print(table)
    for o in outcomes:
        if not o.made:
            err.print(f"[yellow]not made:[/] {o.name}: {escape(o.reason or '')}", markup=True)
        if "random_calibration" in o.flags:
            err.print(
                f"[bold red]WARNING: {o.name} was calibrated on RANDOM data[/]: its int8 ranges "
                "do not match real inputs; use it for smoke tests only, never for a study "
                "(give --calibration CAL.npz)",
                markup=True,
            )
        if "low_agreement" in o.flags or "low_snr" in o.flags:
            err.print(
                f"[yellow]check:[/] {o.name} disagrees with its source (top-1 agreement "
                f"{_percent(o.check.agreement if o.check else None)}, SNR {_snr(o)}; thresholds "
                f"{MIN_AGREEMENT:.0%} and {MIN_SNR_DB:g} dB): look before pushing it",
                markup=True,
            )
        if "check_failed" in o.flags:
            err.print(
                f"[yellow]check:[/] {o.name} could not be run against its source", markup=True
            )
    if outcomes and all("checked_on_random_inputs" in o.flags for o in outcomes if o.made):
        err.print(
            "[yellow]note:[/] checked on random inputs; give --eval VAL.npz or --calibration "
            "CAL.npz to check on real ones",
            markup=True,
        )

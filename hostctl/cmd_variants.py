"""`hostctl variants MODEL --out DIR`: compressed variants of a model (F16, BLQ, WO8,
FIQ, PRN, PRQ), each with a recipe record and checked against its source.

The makers live in :mod:`modelkit.variants` (the ``edgeprof[variants]`` extra),
imported only when the command runs.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl import options

if TYPE_CHECKING:
    from rich.console import Console

    from modelkit.variants import Outcome


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
    calibration: options.Calibration = None,
    only: Annotated[str | None, options.only_option("all")] = None,
    sparsity: options.Sparsity = None,
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
        import json

        typer.echo(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        from hostctl.render_variants import render_outcomes

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
) -> "list[Outcome]":
    result: list[Outcome] = make_variants(
        model,
        out,
        calibration=calibration,
        kinds=kinds,
        sparsities=sparsities,
        eval_data=eval_data,
    )
    return result


def _fail(err: "Console", as_json: bool, message: str) -> None:
    import json

    from hostctl.cmdutil import error_line

    if as_json:
        typer.echo(json.dumps({"error": {"code": "bad_input", "message": message}}))
    error_line(message)
    raise typer.Exit(1)

"""`hostctl compare A B`: two result sets side by side, every metric as a ratio
candidate / baseline with its 95 % interval; the gate's pairing and statistics,
without a verdict."""

from pathlib import Path
from typing import Annotated

import typer

from hostctl import options


def compare_command(
    ctx: typer.Context,
    baseline: Annotated[
        str,
        typer.Argument(
            help="Baseline results: a JSON file (results/push/profile --json) or stored "
            "results, label=L[,device=D,model=M,job=J,runtime=R,threads=N,...].",
            show_default=False,
        ),
    ],
    candidate: Annotated[
        str, typer.Argument(help="Candidate results (as BASELINE).", show_default=False)
    ],
    across: options.Across = None,
    device: Annotated[
        list[str] | None,
        typer.Option("--device", "-d", metavar="ID", help="Only this device (repeatable)."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="TAG", help="Only devices with this tag (repeatable)."),
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="FILE", help="Write a markdown summary here."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the comparison as JSON, nothing else.", metavar=""),
    ] = False,
) -> None:
    """Compare two result sets: p50, p90, peak RSS, init, first inference, size and
    accuracy of CANDIDATE against BASELINE, each as a ratio with its 95 % interval, per device x model
    x runtime x settings. Model files are measured by `hostctl check`."""
    from hostctl.cmdutil import global_options
    from hostctl.gate import GateUsageError
    from hostctl.gate_cli import check_errors, emit, parse_sides, report_from_results

    glob = global_options(ctx)
    with check_errors("edgeprof.compare/1" if as_json else None):
        a, b = parse_sides(baseline, candidate, across or [])
        if a.live:
            raise GateUsageError(
                f"compare reads results, and {a.text} and {b.text} are model files: measure "
                "them with `hostctl check --baseline A --candidate B --device ID`, or push "
                "them and compare the stored results"
            )
        report = report_from_results(
            glob,
            a,
            b,
            devices=device or [],
            tags=tag or [],
            across=across or [],
            tolerances=None,
        )
        emit(report, as_json=as_json, junit=None, markdown=markdown, inconclusive="exit-3")


def register(app: typer.Typer) -> None:
    """Add `compare` to the app."""
    app.command("compare", no_args_is_help=True)(compare_command)

"""`hostctl check --baseline A --candidate B`: the regression gate.

Each side is a stored selection, a JSON file of results, or a model file (then
both are measured live, interleaved ABBA on each target device). One verdict per
device x model x metric: PASS / FAIL / INCONCLUSIVE; exit 0 pass, 1 fail,
3 inconclusive, 2 usage error. How the verdict is reached: docs/gate.md.
"""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from hostctl import options


class Inconclusive(str, Enum):
    """What an INCONCLUSIVE check exits with."""

    exit3 = "exit-3"
    passes = "pass"
    fails = "fail"


Baseline = Annotated[
    str,
    typer.Option(
        "--baseline",
        "-b",
        metavar="SIDE",
        help="What the candidate is checked against: a model file (.tflite/.onnx, measured "
        "live; may carry ,runtime=R ,threads=N ,provider=P), a JSON file of results "
        "(results/push/profile --json), or stored results: label=L[,device=D,model=M,job=J,"
        "runtime=R,threads=N,provider=P,tag=T,since=...,until=...].",
        show_default=False,
    ),
]
Candidate = Annotated[
    str,
    typer.Option(
        "--candidate",
        "-c",
        metavar="SIDE",
        help="The side under test (as --baseline).",
        show_default=False,
    ),
]


def check_command(
    ctx: typer.Context,
    baseline: Baseline,
    candidate: Candidate,
    max_regression: Annotated[
        list[str] | None,
        typer.Option(
            "--max-regression",
            metavar="PCT|pN=PCT",
            help="Largest latency slowdown allowed (default 5%, for p50 and p90); "
            "per percentile: p90=10%, or p90=off.",
        ),
    ] = None,
    max_memory_growth: Annotated[
        str | None,
        typer.Option("--max-memory-growth", metavar="PCT", help="Also check peak RSS (e.g. 10%)."),
    ] = None,
    max_accuracy_drop: Annotated[
        str | None,
        typer.Option(
            "--max-accuracy-drop",
            metavar="PT",
            help="Also check top-1 as non-inferiority (e.g. 1pt); needs --eval results.",
        ),
    ] = None,
    max_size_growth: Annotated[
        str | None,
        typer.Option("--max-size-growth", metavar="PCT", help="Also check model size (e.g. 0%)."),
    ] = None,
    across: options.Across = None,
    inconclusive: Annotated[
        Inconclusive,
        typer.Option(
            "--inconclusive", help="Exit code of an INCONCLUSIVE check: 3, or as pass / fail."
        ),
    ] = Inconclusive.exit3,
    junit: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="Write JUnit XML here.")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="FILE", help="Write a markdown summary here."),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            "-d",
            metavar="ID",
            help="Live: target device (repeatable). Results: only this device.",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="TAG",
            help="Live: every online device with this tag. Results: filter.",
        ),
    ] = None,
    all_devices: Annotated[
        bool, typer.Option("--all", help="Live: every online device.", metavar="")
    ] = False,
    skip_offline: Annotated[
        bool,
        typer.Option("--skip-offline", help="Live: leave offline devices out.", metavar=""),
    ] = False,
    budget: Annotated[
        str,
        typer.Option(
            "--budget",
            metavar="DURATION",
            help="Live: time for rounds while a verdict is INCONCLUSIVE (e.g. 10m, 90s).",
        ),
    ] = "10m",
    pairs: Annotated[
        int,
        typer.Option("--pairs", min=8, max=200, help="Live: ABBA pairs per device, first round."),
    ] = 8,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Live: seconds to wait for one round.")
    ] = 900.0,
    runs: options.Runs = None,
    warmup: options.Warmup = None,
    warmup_seconds: options.WarmupSeconds = None,
    min_seconds: options.MinSeconds = None,
    max_seconds: options.MaxSeconds = None,
    threads: options.Threads = None,
    runtime: options.Runtime = options.RuntimeChoice.auto,
    provider: options.Provider = None,
    xnnpack: options.Xnnpack = True,
    shape: options.Shape = None,
    inputs: Annotated[
        Path | None,
        typer.Option("--inputs", help="Live: inputs .npy/.npz sent to the devices."),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option("--eval", help="Live: labelled .npz (x, y) for top-1 on the devices."),
    ] = None,
    seed: options.Seed = None,
    input_value: options.InputValue = None,
    input_range: options.InputRange = None,
    max_memory: options.MaxMemory = None,
    label: options.Label = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the check as JSON, nothing else.", metavar=""),
    ] = False,
) -> None:
    """Is the candidate slower, bigger or less accurate than the baseline, beyond the
    tolerance? PASS / FAIL / INCONCLUSIVE per device x model x metric, with the effect
    and its 95 % interval. Exit 0 pass, 1 fail, 3 inconclusive, 2 the check could not run
    (a usage error, a side that selects nothing, an unreachable broker or target)."""
    from hostctl.cmdutil import global_options
    from hostctl.gate import GateUsageError, build_tolerances
    from hostctl.gate_cli import (
        check_errors,
        emit,
        live_report,
        parse_sides,
        report_from_results,
    )

    glob = global_options(ctx)
    with check_errors("edgeprof.check/1" if as_json else None):
        tolerances = build_tolerances(
            max_regression=max_regression or (),
            max_memory_growth=max_memory_growth,
            max_accuracy_drop=max_accuracy_drop,
            max_size_growth=max_size_growth,
        )
        a, b = parse_sides(baseline, candidate, across or [])
        if a.live:
            from profiler.settings import parse_duration

            try:
                budget_s = parse_duration(budget)
            except ValueError as exc:
                raise GateUsageError(f"--budget {exc}") from None
            if len(options.shape_sweep(shape)) > 1:
                raise GateUsageError(
                    "--shape: one shape per input in a check (both sides run the same "
                    "inputs); check each shape on its own"
                )
            try:
                base = options.build_settings(
                    runs=runs,
                    warmup=warmup,
                    warmup_seconds=warmup_seconds,
                    min_seconds=min_seconds,
                    max_seconds=max_seconds,
                    threads=threads,
                    runtime=runtime.value,
                    provider=provider,
                    xnnpack=xnnpack,
                    shapes=shape,
                    seed=seed,
                    input_values=input_value,
                    input_ranges=input_range,
                    inputs_attached=inputs is not None,
                    max_memory=max_memory,
                )
            except ValueError as exc:
                raise GateUsageError(options.option_names(str(exc))) from None
            if tolerances.max_accuracy_drop is not None and eval_data is None:
                raise GateUsageError(
                    "--max-accuracy-drop: a live check measures top-1 only with --eval DATA.npz "
                    "(labelled data); give it, or leave the option out"
                )
            attachments = {
                kind: path for kind, path in (("eval", eval_data), ("inputs", inputs)) if path
            }
            report = live_report(
                glob,
                a,
                b,
                base_settings=base,
                tolerances=tolerances,
                devices=device or [],
                tags=tag or [],
                all_devices=all_devices,
                skip_offline=skip_offline,
                label=label,
                budget_s=budget_s,
                round_timeout=timeout,
                first_pairs=pairs,
                attachments=attachments,
                show_progress=not as_json,
            )
        else:
            report = report_from_results(
                glob,
                a,
                b,
                devices=device or [],
                tags=tag or [],
                across=across or [],
                tolerances=tolerances,
            )
        emit(
            report,
            as_json=as_json,
            junit=junit,
            markdown=markdown,
            inconclusive=inconclusive.value,
        )
    raise typer.Exit(report.exit_code(inconclusive.value))


def register(app: typer.Typer) -> None:
    """Add `check` to the app."""
    app.command("check", no_args_is_help=True)(check_command)

"""`hostctl profile MODEL`: profile a model on this machine, no broker needed."""

import os
from typing import Annotated, Any

import typer

from hostctl import options
from hostctl.cmdutil import error_line, info_line, json_text, warning_line
from hostctl.options import (
    RuntimeChoice,
    build_sweep,
    check_for_model,
    option_names,
    threads_warning,
)

_PHASE_TEXT = {
    "starting": "starting the worker",
    "importing": "importing the runtime",
    "loading": "loading the model",
    "inputs": "preparing inputs",
    "first_inference": "first inference",
    "warmup": "warming up",
    "cooling": "cooling down",
    "steady": "measuring",
    "accuracy": "evaluating accuracy",
    "profiling_ops": "profiling ops",
    "finishing": "finishing",
}


def _fail(message: str) -> typer.Exit:
    """Print one red line on stderr and return the exit to raise."""
    error_line(message)
    return typer.Exit(1)


def profile_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="The .tflite or .onnx model file.", show_default=False)
    ],
    runs: options.Runs = None,
    warmup: options.Warmup = None,
    warmup_seconds: options.WarmupSeconds = None,
    min_seconds: options.MinSeconds = None,
    max_seconds: options.MaxSeconds = None,
    threads: options.ThreadsSweep = None,
    runtime: options.Runtime = RuntimeChoice.auto,
    provider: options.Provider = None,
    xnnpack: options.Xnnpack = True,
    shape: options.Shape = None,
    inputs: Annotated[
        str | None,
        typer.Option("--inputs", help="Inputs: .npy (single input) or .npz (by input name)."),
    ] = None,
    eval_data: Annotated[
        str | None, typer.Option("--eval", help="Labelled .npz (x, y) for top-1 accuracy.")
    ] = None,
    seed: options.Seed = None,
    input_value: options.InputValue = None,
    input_range: options.InputRange = None,
    sustained: options.Sustained = None,
    cool_down: options.CoolDown = False,
    per_op: options.PerOp = False,
    max_memory: options.MaxMemory = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Wall-clock limit of the worker, seconds.")
    ] = None,
    label: options.Label = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the result document as JSON, nothing else.", metavar=""),
    ] = False,
    store: Annotated[
        bool,
        typer.Option(
            "--store/--no-store",
            help="Keep the result in the results store (see `hostctl results`).",
            metavar="",
        ),
    ] = True,
) -> None:
    """Profile MODEL on this machine: latency with 95% CIs, memory, accuracy, thermal state.

    A list of --threads (or several --shape values for one input) is a sweep: one
    result per setting, each in a fresh worker, shown side by side."""
    try:
        sweep = build_sweep(
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
            inputs_path=inputs,
            eval_path=eval_data,
            seed=seed,
            timeout_s=timeout,
            input_values=input_value,
            input_ranges=input_range,
            sustained=sustained,
            cool_down=cool_down,
            per_op=per_op,
            max_memory=max_memory,
        )
    except ValueError as exc:
        raise _fail(option_names(str(exc))) from None
    for settings in sweep:
        _check_for_model(model, settings)
    if len(sweep) > 1 and label is None:
        label = _sweep_label()
    from pathlib import Path

    from hostctl.provenance import vouch_local

    results = []
    try:
        for settings in sweep:
            result = run_profile(model, settings, label=label, show_progress=True)
            result = vouch_local(result, Path(model))  # a variant's recipe, its gzip size
            # A typo in the path is not a measurement: nothing to keep.
            if store and (result.get("error") or {}).get("code") not in _NOT_A_MEASUREMENT:
                _store(ctx, result)
            results.append(result)
    except KeyboardInterrupt:
        # the worker is killed with its parent's wait (profiler.runner); nothing half-done is kept
        if results:
            kept = (
                f"the {len(results)} finished setting(s) are stored" if store else "nothing stored"
            )
            info_line(f"interrupted (Ctrl-C): the sweep stopped; {kept}")
        else:
            info_line("interrupted (Ctrl-C): nothing was measured or stored")
        raise typer.Exit(130) from None
    if len(sweep) > 1:
        _show_sweep(results, as_json, label if store else None)
        return
    (result,) = results
    if as_json:
        typer.echo(json_text(result))
    elif result.get("status") != "ok":
        error = result.get("error") or {}
        raise _fail(str(error.get("message") or error.get("code") or "profiling failed"))
    else:
        from rich.console import Console

        from hostctl.render import result_detail
        from hostctl.render_extras import extras_detail

        console = Console()
        console.print(result_detail(result))
        extras = extras_detail(result)
        if extras is not None:
            console.print(extras)
    if result.get("status") != "ok":
        raise typer.Exit(1)


def _sweep_label() -> str:
    import time

    return time.strftime("sweep-%Y%m%d-%H%M%S")


def _show_sweep(results: list[dict[str, Any]], as_json: bool, label: str | None) -> None:
    """A sweep's results side by side (or as a JSON list); exit 1 when any failed."""
    if as_json:
        typer.echo(json_text(results))
    else:
        from rich.console import Console

        from hostctl.render import results_table

        Console().print(results_table(results, title=label))
        if label is not None:
            info_line(f"sweep stored under the label {label}: `hostctl results --label {label}`")
    if any(r.get("status") != "ok" for r in results):
        raise typer.Exit(1)


def _check_for_model(model: str, settings: Any) -> None:
    """Refuse options that contradict the model; warn about doubtful ones."""
    from profiler.backends import detect_format
    from profiler.errors import ProfilerError

    try:
        fmt = detect_format(model)
    except ProfilerError:
        return  # not a model: the profile itself reports it as an error result
    try:
        warnings = check_for_model(settings, fmt, os.path.basename(model))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    threads = threads_warning(settings.threads, os.cpu_count(), "this machine")
    for warning in [*warnings, *([threads] if threads else [])]:
        warning_line(warning)


_NOT_A_MEASUREMENT = ("not_found", "unsupported_format")
"""Error codes of results that are not stored: the file was never a model."""


def _store(ctx: typer.Context, result: dict[str, Any]) -> None:
    """Keep the result with the fleet's, under a ``local-…`` job id.

    Stored before it is shown, like every result; a store that cannot be
    opened costs one warning line, never the measurement.
    """
    import uuid

    from hostctl.errors import HostctlError
    from hostctl.store import ResultStore

    if not result.get("job_id"):
        result["job_id"] = f"local-{uuid.uuid4().hex[:16]}"
    db = getattr(ctx.find_root().obj, "db", None)
    try:
        results = ResultStore(db)
        try:
            results.add(result)
        finally:
            results.close()
    except HostctlError as exc:
        warning_line(f"result not stored: {exc}")


def run_profile(
    model: str, settings: Any, *, label: str | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Run profiler.runner.profile, with a phase spinner on stderr when it is a terminal.

    A ProfilerError raised before the worker starts becomes an error document,
    so callers always get one.
    """
    from rich.console import Console
    from rich.markup import escape

    from profiler.errors import ProfilerError
    from profiler.runner import profile

    err = Console(stderr=True)
    name = escape(os.path.basename(model))
    try:
        if show_progress and err.is_terminal:
            with err.status(f"{name}: starting", spinner="dots") as status:

                def on_phase(phase: str) -> None:
                    status.update(f"{name}: {_PHASE_TEXT.get(phase, phase)}")

                result = profile(model, settings, label=label, on_phase=on_phase)
        else:
            result = profile(model, settings, label=label)
    except ProfilerError as exc:
        import logging

        logging.getLogger(__name__).debug("profile raised %s", exc.code)
        from profiler.device import device_info
        from profiler.result import build_result, model_section, settings_section

        return build_result(
            status="error",
            device=device_info(),
            model=model_section(model),
            settings=settings_section(settings),
            label=label,
            error=exc.to_dict(),
        )
    return dict(result)


def register(app: typer.Typer) -> None:
    """Add `profile` to the hostctl application."""
    app.command("profile", no_args_is_help=True)(profile_command)

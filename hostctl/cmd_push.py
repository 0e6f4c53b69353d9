"""`hostctl push MODEL...`: run models on devices of the fleet and wait for the results."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl import options
from hostctl.cmdutil import (
    error_line,
    global_options,
    info_line,
    json_text,
    user_errors,
    warning_line,
)
from hostctl.errors import HostctlError
from hostctl.options import RuntimeChoice, build_sweep, option_names

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions
    from hostctl.fleet import PushOutcome


def run_push(
    options: "GlobalOptions",
    *,
    models: list[Path],
    settings: dict[str, Any] | list[dict[str, Any]],
    devices: list[str],
    tags: list[str],
    all_devices: bool,
    label: str | None,
    timeout: float,
    show_progress: bool,
    chunk_size: int = 64 * 1024,
    attachments: dict[str, Path] | None = None,
    skip_offline: bool = False,
    repeat: int = 1,
) -> "PushOutcome":
    """Connect, push, wait; results are stored as they arrive.

    `attachments` ({"eval": labelled .npz, "inputs": .npy/.npz}) travel with every job.
    """
    from hostctl.fleet import check_attachment, push
    from hostctl.keys import load_key
    from hostctl.progress import PushProgress
    from hostctl.session import fleet_session, open_store

    for model in models:
        if not model.is_file():
            raise HostctlError(f"{model}: no such file")
    for kind, path in (attachments or {}).items():
        check_attachment(kind, path)  # before connecting: a wrong file fails at once
    key = load_key(options.key)
    with open_store(options) as store:
        session = fleet_session(options, store.path)
        try:
            with PushProgress(show_progress) as progress:
                return push(
                    session,
                    store,
                    key,
                    models=models,
                    settings=settings,
                    devices=devices,
                    tags=tags,
                    all_devices=all_devices,
                    label=label,
                    timeout=timeout,
                    chunk_size=chunk_size,
                    attachments=attachments,
                    on_update=progress.update,
                    on_targets=progress.add,
                    skip_offline=skip_offline,
                    plan=[
                        (m, p, None)
                        for _ in range(repeat)
                        for m in range(len(models))
                        for p in range(len(settings) if isinstance(settings, list) else 1)
                    ],
                )
        finally:
            session.close()


def push_command(
    ctx: typer.Context,
    models: Annotated[
        list[Path], typer.Argument(help="One or more .tflite / .onnx files.", show_default=False)
    ],
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", help="Target device id (repeatable).")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Target every online device with this tag (repeatable)."),
    ] = None,
    all_devices: Annotated[
        bool, typer.Option("--all", help="Target every online device.", metavar="")
    ] = False,
    skip_offline: Annotated[
        bool,
        typer.Option(
            "--skip-offline",
            help="With --tag/--all: leave offline devices out without failing the push "
            "(they are still named in the outcome).",
            metavar="",
        ),
    ] = False,
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
        Path | None,
        typer.Option(
            "--inputs",
            help="Inputs .npy (single input) or .npz (by input name), sent to the devices.",
        ),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option("--eval", help="Labelled .npz (x, y) sent to the devices for top-1 accuracy."),
    ] = None,
    seed: options.Seed = None,
    input_value: options.InputValue = None,
    input_range: options.InputRange = None,
    sustained: options.Sustained = None,
    cool_down: options.CoolDown = False,
    per_op: options.PerOp = False,
    max_memory: options.MaxMemory = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to wait for all results.")
    ] = 600.0,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            min=1,
            max=100,
            help="Run each model x setting N times on each device, each time in a fresh "
            "worker: the several runs a side `hostctl check` wants of a stored baseline.",
        ),
    ] = 1,
    label: options.Label = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            min=1024,
            max=1024 * 1024,
            hidden=True,
            help="Transfer chunk size, bytes.",
        ),
    ] = 64 * 1024,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the result documents as JSON, nothing else.", metavar=""
        ),
    ] = False,
) -> None:
    """Transfer MODELs to the targets, run them there, print and store the results.

    A list of --threads (or several --shape values for one input) is a sweep: one job
    per device x model x setting, each model transferred once."""
    options = global_options(ctx)
    with user_errors():
        # Data files travel to the devices like the models (content-addressed, cached
        # there); the settings never name a path — each agent points at its own copy.
        attachments = {
            kind: path for kind, path in (("eval", eval_data), ("inputs", inputs)) if path
        }
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
                seed=seed,
                input_values=input_value,
                input_ranges=input_range,
                inputs_attached=inputs is not None,
                sustained=sustained,
                cool_down=cool_down,
                per_op=per_op,
                max_memory=max_memory,
            )
        except ValueError as exc:
            raise HostctlError(option_names(str(exc))) from None
        from hostctl.preflight import preflight

        warned: set[str] = set()
        for model in models:  # nothing leaves the host that no device could run
            for settings in sweep:
                for warning in preflight(model, settings).warnings:
                    if warning not in warned:
                        warned.add(warning)
                        warning_line(warning)
        settings = sweep[0]
        # A sustained run outlasts the default wait: wait at least as long as the worker may run.
        if settings.sustained_s is not None:
            timeout = max(timeout, settings.effective_timeout() + 60.0)
        timeout *= repeat  # a device runs the repeats one after the other
        if len(sweep) > 1:
            # one device runs a sweep's jobs one after the other: wait for all of them
            timeout *= len(sweep)
            if label is None:
                import time

                label = time.strftime("sweep-%Y%m%d-%H%M%S")
                info_line(f"sweep of {len(sweep)} settings, labelled {label}")
        outcome = run_push(
            options,
            models=models,
            settings=[s.to_dict() for s in sweep] if len(sweep) > 1 else settings.to_dict(),
            devices=device or [],
            tags=tag or [],
            all_devices=all_devices,
            label=label,
            timeout=timeout,
            show_progress=True,
            chunk_size=chunk_size,
            attachments=attachments,
            skip_offline=skip_offline,
            repeat=repeat,
        )
    if as_json:
        typer.echo(json_text(outcome.results))
    elif outcome.results or outcome.failures:
        from rich.console import Console

        from hostctl.render import results_table

        missing = [(f.device_id, f.model, f.state, f.reason) for f in outcome.failures]
        Console().print(results_table(outcome.results, title=label, missing=missing))
    if outcome.interrupted:
        info_line(
            f"stopped waiting (Ctrl-C): {len(outcome.left_running)} job(s) go on on their "
            "devices; `hostctl collect` fetches their results"
        )
    fatal = [f for f in outcome.failures if f.fatal]
    for failure in outcome.failures:
        what = f"{failure.device_id}" + (f" ({failure.model})" if failure.model else "")
        line = f"{what}: {failure.state}: {failure.reason}"
        (error_line if failure.fatal else info_line)(line)
    if fatal:
        raise typer.Exit(1)
    if outcome.interrupted:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    """Add `push` to the app."""
    app.command("push", no_args_is_help=True)(push_command)

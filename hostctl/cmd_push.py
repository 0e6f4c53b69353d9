"""`hostctl push MODEL...`: run models on devices of the fleet and wait for the results."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl import options
from hostctl.cmdutil import error_line, global_options, user_errors
from hostctl.errors import HostctlError
from hostctl.options import RuntimeChoice

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions
    from hostctl.fleet import Job, PushOutcome

logger = logging.getLogger(__name__)

_STATE_TEXT = {
    "sent": "sent",
    "queued": "queued",
    "accepted": "accepted",
    "downloading": "downloading",
    "verifying": "verifying",
    "running": "running",
    "succeeded": "[green]done[/green]",
    "failed": "[red]failed[/red]",
    "rejected": "[red]rejected[/red]",
    "timed_out": "[red]timed out[/red]",
    "canceled": "[yellow]canceled[/yellow]",
}


def open_store(options: GlobalOptions) -> Any:
    """The results store of --db (or the default)."""
    from hostctl.store import ResultStore

    return ResultStore(options.db)


def fleet_session(options: GlobalOptions, store_path: Path) -> Any:
    """A connected session: the store's persistent one (results are queued for it
    while hostctl is away), or a clean one when another hostctl holds it."""
    from hostctl.fleet import FLEET_SUBSCRIPTIONS
    from hostctl.mqtt import HostSession, SessionLock, ephemeral_client_id, host_client_id

    lock = SessionLock(store_path)
    persistent = lock.acquire()
    if not persistent:
        logger.warning(
            "another hostctl is using the session of %s: results it misses now "
            "are fetched by `hostctl collect`",
            store_path,
        )
    session = HostSession(
        options,
        client_id=host_client_id(store_path) if persistent else ephemeral_client_id(),
        subscriptions=FLEET_SUBSCRIPTIONS,
        persistent=persistent,
    )
    session.lock = lock
    try:
        session.connect()
    except BaseException:
        lock.release()
        raise
    return session


class PushProgress:
    """Per-job progress lines on stderr: state, transfer %, run phase."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.fields[job]}"),
            BarColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def add(self, jobs: list[Job]) -> None:
        for job in jobs:
            name = f"{job.device_id} · {job.model_name}"
            self.tasks[job.job_id] = self.progress.add_task("sent", total=100, job=name)

    def update(self, job: Job) -> None:
        task = self.tasks.get(job.job_id)
        if task is None:
            return
        text = _STATE_TEXT.get(job.state, job.state)
        completed: float | None = None
        if job.state == "downloading":
            received, total = job.progress.get("received"), job.progress.get("total")
            if isinstance(received, int) and isinstance(total, int) and total > 0:
                completed = 50.0 * received / total
                text = f"downloading {100 * received // total}%"
        elif job.state in ("verifying", "running"):
            completed = 50.0 if job.state == "verifying" else 60.0
            phase = job.progress.get("phase")
            if phase:
                text = f"running: {phase}"
        elif job.done:
            completed = 100.0
            if not job.ok and job.reason:
                text = f"{text}: {job.reason}"
        if job.progress.get("device") == "offline" and not job.done:
            text += " (device offline)"
        self.progress.update(task, description=text, completed=completed)

    def __enter__(self) -> PushProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def run_push(
    options: GlobalOptions,
    *,
    models: list[Path],
    settings: dict[str, Any],
    devices: list[str],
    tags: list[str],
    all_devices: bool,
    label: str | None,
    timeout: float,
    show_progress: bool,
    chunk_size: int = 64 * 1024,
    attachments: dict[str, Path] | None = None,
) -> PushOutcome:
    """Connect, push, wait; results are stored as they arrive.

    `attachments` ({"eval": labelled .npz, "inputs": .npy/.npz}) travel with every job.
    """
    from hostctl.fleet import check_attachment, push
    from hostctl.keys import load_key

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
    all_devices: Annotated[bool, typer.Option("--all", help="Target every online device.")] = False,
    runs: options.Runs = None,
    warmup: options.Warmup = None,
    warmup_seconds: options.WarmupSeconds = None,
    min_seconds: options.MinSeconds = None,
    max_seconds: options.MaxSeconds = None,
    threads: options.Threads = None,
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
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to wait for all results.")
    ] = 600.0,
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
        bool, typer.Option("--json", help="Print the result documents as JSON, nothing else.")
    ] = False,
) -> None:
    """Transfer MODELs to the targets, run them there, print and store the results."""
    from hostctl.cmd_profile import build_settings

    options = global_options(ctx)
    with user_errors():
        # Data files travel to the devices like the models (content-addressed, cached
        # there); the settings never name a path — each agent points at its own copy.
        attachments = {
            kind: path for kind, path in (("eval", eval_data), ("inputs", inputs)) if path
        }
        try:
            settings = build_settings(
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
            )
        except ValueError as exc:
            raise HostctlError(str(exc)) from None
        outcome = run_push(
            options,
            models=models,
            settings=settings.to_dict(),
            devices=device or [],
            tags=tag or [],
            all_devices=all_devices,
            label=label,
            timeout=timeout,
            show_progress=True,
            chunk_size=chunk_size,
            attachments=attachments,
        )
    if as_json:
        typer.echo(json.dumps(outcome.results, indent=2))
    elif outcome.results:
        from rich.console import Console

        from hostctl.render import results_table

        Console().print(results_table(outcome.results, title=label))
    if outcome.failures:
        for failure in outcome.failures:
            what = f"{failure.device_id}" + (f" ({failure.model})" if failure.model else "")
            error_line(f"{what}: {failure.state}: {failure.reason}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `push` to the app."""
    app.command("push", no_args_is_help=True)(push_command)

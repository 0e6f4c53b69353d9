"""`hostctl study MODEL --eval VAL.npz [--calibration CAL.npz] [targets]`: the
compression study of one model — its variants made, measured on the targets (or on
this machine), stored under one label, shown as the table papers publish."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl import options
from hostctl.cmdutil import error_line, global_options, info_line, user_errors, warning_line
from hostctl.errors import HostctlError
from hostctl.options import RuntimeChoice, build_settings, option_names

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions
    from hostctl.study import StudyPlan


def study_command(
    ctx: typer.Context,
    model: Annotated[
        Path, typer.Argument(help="The float source model (.tflite or .onnx).", show_default=False)
    ],
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            metavar="VAL.npz",
            help="Labelled data (x, y): top-1 of every variant, measured where it runs.",
        ),
    ] = None,
    calibration: options.Calibration = None,
    only: Annotated[str | None, options.only_option("fp32,f16,blq,fiq,prn,prq")] = None,
    sparsity: options.Sparsity = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory for the variants (default: studies/LABEL in the user data dir).",
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Label of every result (default: study-STEM-TIME)."),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option("--device", "-d", help="Target device id (repeatable). No target: here."),
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
            help="With --tag/--all: leave offline devices out without failing.",
            metavar="",
        ),
    ] = False,
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
    seed: options.Seed = None,
    input_value: options.InputValue = None,
    input_range: options.InputRange = None,
    sustained: options.Sustained = None,
    cool_down: options.CoolDown = False,
    per_op: options.PerOp = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds to wait for every result (default: enough for each variant in turn).",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", help="Also write the HTML report there."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the result documents as JSON, nothing else.", metavar=""
        ),
    ] = False,
) -> None:
    """Make the variants of MODEL, measure each on the targets (or here), show the study."""
    glob = global_options(ctx)
    with user_errors():
        from hostctl.options import shape_sweep

        if len(shape_sweep(shape)) > 1:
            raise HostctlError(
                "a study measures every variant with one setting: give one --shape per input "
                "(a sweep of shapes: hostctl push or profile)"
            )
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
                input_values=input_value,
                input_ranges=input_range,
                sustained=sustained,
                cool_down=cool_down,
                per_op=per_op,
            )
        except ValueError as exc:
            raise HostctlError(option_names(str(exc))) from None
        if html is not None:
            from hostctl.report_html import report_available

            missing = report_available()  # before minutes of measuring, not after
            if missing:
                raise HostctlError(missing)
        plan = _plan(model, eval_data, calibration, only, sparsity, out, label, settings)
        on_fleet = bool(device or tag or all_devices)
        if not on_fleet:
            import os

            from hostctl.options import threads_warning

            warning = threads_warning(settings.threads, os.cpu_count(), "this machine")
            if warning:
                warning_line(warning)
        docs, failures = _run(
            glob,
            plan,
            settings,
            devices=device or [],
            tags=tag or [],
            all_devices=all_devices,
            skip_offline=skip_offline,
            timeout=timeout,
            quiet=as_json,
        )
        if html is not None:
            from hostctl.report_html import write_html

            write_html(html, docs, title=f"edgeprof study: {model.name}", subtitle=plan.label)
    _show(docs, plan, html, as_json, on_fleet)
    _exit(docs, failures, local=not on_fleet)


def _plan(
    model: Path,
    eval_data: Path | None,
    calibration: str | None,
    only: str | None,
    sparsity: str | None,
    out: Path | None,
    label: str | None,
    settings: Any,
) -> "StudyPlan":
    """The study to run, every input checked before anything is made or sent."""
    from hostctl.fleet import check_attachment
    from hostctl.preflight import preflight
    from hostctl.study import STUDY_KINDS, StudyPlan, default_label, default_out_dir

    for warning in preflight(model, settings).warnings:
        warning_line(warning)
    if eval_data is not None:
        check_attachment("eval", eval_data)
    else:
        warning_line("no --eval data: the study table will have no top-1 (give --eval VAL.npz)")
    if calibration is None:
        warning_line("no --calibration data: FIQ is not made (give --calibration CAL.npz)")
    try:
        from modelkit.variants import VariantError, parse_kinds, parse_sparsities
    except ImportError as exc:
        raise HostctlError(
            f"hostctl study makes variants, which needs more packages ({exc}): "
            "pip install 'edgeprof[variants]'"
        ) from None
    try:
        kinds = tuple(parse_kinds(only)) if only else STUDY_KINDS
        sparsities = tuple(parse_sparsities(sparsity))
    except VariantError as exc:
        raise HostctlError(str(exc)) from None
    chosen = label or default_label(model)
    return StudyPlan(
        model=model,
        out_dir=out or default_out_dir(chosen),
        label=chosen,
        eval_data=eval_data,
        calibration=calibration,
        kinds=kinds,
        sparsities=sparsities,
    )


def _run(
    glob: "GlobalOptions",
    plan: "StudyPlan",
    settings: Any,
    *,
    devices: list[str],
    tags: list[str],
    all_devices: bool,
    skip_offline: bool,
    timeout: float | None,
    quiet: bool,
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Make the variants and measure them; the result documents and the failures."""
    from rich.console import Console

    from hostctl.render_variants import outcome_warnings
    from hostctl.study import made_files, make_variants

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    with err.status(f"making the variants of {plan.model.name}…"):
        outcomes = make_variants(plan)
    outcome_warnings(outcomes, err)
    files = made_files(outcomes)
    if not files:
        raise HostctlError(f"no variant of {plan.model.name} could be made (see above)")
    if not quiet:
        names = ", ".join(o.name for o in outcomes if o.made)
        info_line(f"{len(files)} variant(s) in {plan.out_dir}: {names}")
    if devices or tags or all_devices:
        return _on_fleet(
            glob, plan, files, settings, devices, tags, all_devices, skip_offline, timeout
        )
    return _here(glob, plan, files, settings, err), []


def _here(
    glob: "GlobalOptions", plan: "StudyPlan", files: list[Path], settings: Any, err: Any
) -> list[dict[str, Any]]:
    from rich.markup import escape

    from hostctl.session import open_store
    from hostctl.study import measure_locally

    with open_store(glob) as store, err.status("measuring on this machine") as status:
        count = {"i": 0}

        def on_start(path: Path) -> None:
            count["i"] += 1
            status.update(
                f"measuring {escape(path.name)} on this machine ({count['i']}/{len(files)})"
            )

        return measure_locally(
            files,
            settings,
            label=plan.label,
            store=store,
            eval_data=plan.eval_data,
            on_start=on_start,
        )


def _on_fleet(
    glob: "GlobalOptions",
    plan: "StudyPlan",
    files: list[Path],
    settings: Any,
    devices: list[str],
    tags: list[str],
    all_devices: bool,
    skip_offline: bool,
    timeout: float | None,
) -> tuple[list[dict[str, Any]], list[Any]]:
    from hostctl.keys import load_key
    from hostctl.progress import PushProgress
    from hostctl.session import fleet_session, open_store
    from hostctl.study import measure_on_fleet

    key = load_key(glob.key)
    with open_store(glob) as store:
        session = fleet_session(glob, store.path)
        try:
            with PushProgress(True) as progress:
                outcome = measure_on_fleet(
                    session,
                    store,
                    key,
                    files,
                    settings,
                    label=plan.label,
                    eval_data=plan.eval_data,
                    devices=devices,
                    tags=tags,
                    all_devices=all_devices,
                    skip_offline=skip_offline,
                    timeout=timeout,
                    on_update=progress.update,
                    on_targets=progress.add,
                )
        finally:
            session.close()
    return outcome.results, list(outcome.failures)


def _show(
    docs: list[dict[str, Any]], plan: "StudyPlan", html: Path | None, as_json: bool, on_fleet: bool
) -> None:
    from hostctl.study import report_command

    if as_json:
        import json

        typer.echo(json.dumps(docs, indent=2))
        return
    from rich.console import Console

    from hostctl.render_study import study_tables
    from hostctl.report import study

    console = Console()
    for table in study_tables(study(docs), width=console.width):
        console.print(table)
    where = "on the fleet" if on_fleet else "on this machine"
    info_line(f"{len(docs)} result(s) measured {where}, stored under label {plan.label}")
    if html is not None:
        info_line(f"report: {html}")
    else:
        info_line(f"the report with plots: {report_command(plan.label)}")


def _exit(docs: list[dict[str, Any]], failures: list[Any], *, local: bool) -> None:
    """One line per target or variant that gave no result (a push names its failed
    jobs; here, each error result); exit 1 when there was any."""
    fatal = [f for f in failures if getattr(f, "fatal", True)]
    for failure in failures:
        what = f"{failure.device_id}" + (f" ({failure.model})" if failure.model else "")
        (error_line if failure.fatal else info_line)(f"{what}: {failure.state}: {failure.reason}")
    errors = [d for d in docs if d.get("status") != "ok"] if local else []
    for doc in errors:
        error = doc.get("error") or {}
        name = (doc.get("model") or {}).get("name")
        error_line(f"{name}: {error.get('code', 'error')}: {error.get('message', '')}")
    if fatal or errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `study` to the app."""
    app.command("study", no_args_is_help=True)(study_command)

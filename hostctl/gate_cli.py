"""What `hostctl check` and `hostctl compare` share: the sides, the pairing of
results, the live rounds, the exit codes of a check that could not run, and the
output (table, JSON, JUnit, markdown). Imported when one of them runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions
    from hostctl.gate import GateReport, SideSpec
    from profiler.compare import Tolerances


def parse_sides(baseline: str, candidate: str, across: list[str]) -> tuple[SideSpec, SideSpec]:
    """Both sides, checked to be of one kind (both live, or both results)."""
    from hostctl.gate import DIMENSIONS, GateUsageError, parse_side

    a, b = parse_side(baseline, "baseline"), parse_side(candidate, "candidate")
    for dim in across:
        if dim not in DIMENSIONS:
            raise GateUsageError(f"--across {dim!r}: not one of {', '.join(DIMENSIONS)}")
    if a.live != b.live:
        raise GateUsageError(
            "--baseline and --candidate: give both as model files (measured live) or both "
            "as results (stored selections or JSON files)"
        )
    return a, b


@contextmanager
def check_errors(json_schema: str | None = None) -> Iterator[None]:
    """Every error of a check that could not run becomes one red line and exit code 2,
    so CI never reads a broken check (a dead broker, a side selecting nothing) as the
    candidate's FAIL (exit 1). With ``json_schema`` (``--json``), stdout also gets
    ``{"schema", "verdict": "ERROR", "exit_code": 2, "error"}``, so a job that parses
    stdout reads why."""
    from hostctl.cmdutil import error_line, json_text
    from hostctl.errors import HostctlError
    from hostctl.gate import EXIT_USAGE
    from profiler.errors import ProfilerError
    from protocol.errors import ProtocolError

    def fail(message: str) -> typer.Exit:
        error_line(message)
        if json_schema is not None:
            doc = {"schema": json_schema, "verdict": "ERROR", "exit_code": EXIT_USAGE}
            typer.echo(json_text({**doc, "error": message}))
        return typer.Exit(EXIT_USAGE)

    try:
        yield
    except (HostctlError, ProtocolError) as exc:
        raise fail(str(exc)) from None
    except ProfilerError as exc:
        raise fail(exc.message) from None
    except (typer.Exit, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise fail(
            f"the check could not run: {type(exc).__name__}: {first} (with -v, the log "
            "says more; please report it)"
        ) from None


def report_from_results(
    options: GlobalOptions,
    a: SideSpec,
    b: SideSpec,
    *,
    devices: list[str],
    tags: list[str],
    across: list[str],
    tolerances: Tolerances | None,
) -> GateReport:
    """Pair and compare two sides of results (stored or JSON)."""
    from hostctl.gate import (
        GateReport,
        GateUsageError,
        compared_dimensions,
        load_stored,
        pair,
        read_all,
        read_json_results,
        run_check,
        run_compare,
    )

    docs: dict[str, list[dict[str, Any]]] = {}
    if a.kind == "stored" or b.kind == "stored":
        from hostctl.session import open_store

        with open_store(options) as store:
            for role, spec in (("baseline", a), ("candidate", b)):
                if spec.kind == "stored":
                    docs[role] = load_stored(store, spec, role)
    for role, spec in (("baseline", a), ("candidate", b)):
        if spec.kind == "json":
            assert spec.path is not None
            docs[role] = read_json_results(spec.path, role)
    runs: dict[str, list[Any]] = {}
    unreadable: dict[str, int] = {}
    for role in ("baseline", "candidate"):
        read, bad = read_all(docs[role])
        if devices:
            read = [r for r in read if r.device.id in devices]
        if tags:
            read = [r for r in read if set(tags) & set(r.device.tags)]
        if not read:
            where = f" on {', '.join(devices + tags)}" if devices or tags else ""
            raise GateUsageError(
                f"{role} {(a if role == 'baseline' else b).text}: no readable result{where}"
            )
        runs[role] = read
        if bad:
            unreadable[role] = bad
    dims = compared_dimensions(a, b, runs["baseline"], runs["candidate"], across)
    subjects, unmatched = pair(runs["baseline"], runs["candidate"], dims)
    if not subjects:
        lines = "; ".join(u.line() for u in unmatched[:4])
        raise GateUsageError(f"nothing to compare: no subject has results on both sides ({lines})")
    comparisons = run_check(subjects, tolerances) if tolerances else run_compare(subjects)
    return GateReport(
        comparisons,
        subjects,
        unmatched,
        tolerances,
        unreadable=unreadable,
        sides={"baseline": a.text, "candidate": b.text},
    )


def _live_settings(spec: SideSpec, base: Any) -> dict[str, Any]:
    """The profile settings of one live side: the shared ones, with the side's own
    runtime / provider / threads."""
    from dataclasses import replace

    from hostctl.gate import GateUsageError

    changes: dict[str, Any] = {}
    if "runtime" in spec.filters:
        changes["runtime"] = spec.filters["runtime"][0]
    if "provider" in spec.filters:
        changes["provider"] = spec.filters["provider"][0]
    if "threads" in spec.filters:
        changes["threads"] = int(spec.filters["threads"][0])
    try:
        settings = replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise GateUsageError(f"{spec.text}: {exc}") from None
    return dict(settings.to_dict())


def live_report(
    options: GlobalOptions,
    a: SideSpec,
    b: SideSpec,
    *,
    base_settings: Any,
    tolerances: Tolerances,
    devices: list[str],
    tags: list[str],
    all_devices: bool,
    skip_offline: bool,
    label: str | None,
    budget_s: float,
    round_timeout: float,
    first_pairs: int,
    attachments: dict[str, Path],
    show_progress: bool,
) -> GateReport:
    """Measure both model files interleaved on the targets, round after round."""
    import time

    from hostctl.cmdutil import warning_line
    from hostctl.fleet import check_attachment
    from hostctl.gate import GateReport, GateUsageError
    from hostctl.keys import load_key
    from hostctl.live import LiveSide, run_live
    from hostctl.preflight import preflight
    from hostctl.progress import RoundProgress
    from hostctl.session import fleet_session, open_store
    from profiler.settings import ProfileSettings

    if not (devices or tags or all_devices):
        raise GateUsageError(
            "a live check needs targets: --device ID, --tag T or --all "
            "(or give both sides as results)"
        )
    sides = []
    for spec in (a, b):
        assert spec.path is not None
        settings = _live_settings(spec, base_settings)
        for warning in preflight(spec.path, ProfileSettings.from_dict(settings)).warnings:
            warning_line(warning)
        sides.append(LiveSide(spec.path, settings))
    for kind, path in attachments.items():
        check_attachment(kind, path)
    label = label or time.strftime("check-%Y%m%d-%H%M%S")
    key = load_key(options.key)
    with open_store(options) as store:
        session = fleet_session(options, store.path)
        try:
            with RoundProgress(show_progress) as progress:
                outcome = run_live(
                    session,
                    store,
                    key,
                    baseline=sides[0],
                    candidate=sides[1],
                    tolerances=tolerances,
                    devices=devices,
                    tags=tags,
                    all_devices=all_devices,
                    skip_offline=skip_offline,
                    label=label,
                    budget_s=budget_s,
                    round_timeout=round_timeout,
                    first_pairs=first_pairs,
                    comparisons_per_device=len(tolerances.percentiles)
                    + (tolerances.max_memory_growth is not None)
                    + (tolerances.max_accuracy_drop is not None),
                    attachments=attachments,
                    on_update=progress.update,
                    on_targets=progress.add,
                    on_round=progress.start_round,
                )
        finally:
            session.close()
    if outcome.interrupted:
        from hostctl.cmdutil import info_line

        labels = (
            f"label {label}:warmup"
            if outcome.rounds == 0
            else f"labels {label}:baseline and {label}:candidate"
        )
        info_line(
            "stopped waiting (Ctrl-C): no verdict; the jobs sent go on on their devices, "
            f"`hostctl collect` fetches their results ({labels})"
        )
        raise typer.Exit(130)
    live = outcome.summary()
    live["label"] = label
    return GateReport(
        outcome.comparisons,
        outcome.subjects,
        [],
        tolerances,
        live=live,
        sides={"baseline": a.text, "candidate": b.text},
        lost=outcome.lost_lines(),
    )


def emit(
    report: GateReport,
    *,
    as_json: bool,
    junit: Path | None,
    markdown: Path | None,
    inconclusive: str,
) -> None:
    """Print the report (table, or JSON on stdout) and write the CI files."""
    from hostctl.cmdutil import info_line, json_text

    if junit is not None:
        from hostctl.gate_files import junit_xml

        _write(junit, junit_xml(report, inconclusive=inconclusive), "--junit")
    if markdown is not None:
        from hostctl.gate_files import markdown_summary

        _write(markdown, markdown_summary(report), "--markdown")
    if as_json:
        typer.echo(json_text(report.to_dict(inconclusive)))
        return
    from rich.console import Console

    from hostctl.render_gate import gate_table

    Console().print(gate_table(report))
    for path in (junit, markdown):
        if path is not None:
            info_line(f"wrote {path}")


def _write(path: Path, text: str, option: str) -> None:
    from hostctl.errors import HostctlError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HostctlError(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None

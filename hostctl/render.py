"""Rich renderings of result documents: the results table (with a legend of its
flags) and the detail panel of one result.

Documents are read with :func:`protocol.result.read_result`, numbers written by
:mod:`hostctl.format`. Every cell is a :class:`rich.text.Text`, never a markup
string: a model called ``bad[v2].onnx`` or dims like ``[1, 3]`` print exactly as
they are. A document that cannot be read becomes a row saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hostctl import format as fmt
from protocol.result import Result, ResultError, read_result

DASH = fmt.DASH

_FLAG_STYLES = {"unstable": "bold yellow", "throttled": "bold red", "drift": "yellow"}

FLAG_MEANINGS = {
    "unstable": "the latency varied more than a quiet device allows (see the flags beside "
    "it); re-run with the device idle, cooled and on a fixed CPU governor",
    "high_cov": "run-to-run spread is high (robust CoV > 10 %); close other programs, pin "
    "--threads, or raise --runs",
    "drift": "latency trended up or down during the run (thermal or frequency change); "
    "let the device cool (or warm up longer with --warmup-seconds) and re-run",
    "throttled": "the device throttled (temperature or power) during the run; cool it or "
    "improve its power supply, then re-run",
    "capped": "--max-seconds ended the steady state before --runs/--min-seconds were met; "
    "raise --max-seconds for the full count",
    "few_runs": "fewer than 100 timed runs: high percentiles are withheld; raise --runs",
    "accuracy_error": "top-1 could not be measured (see the result); the latency stands",
}
"""What each result flag means and what to do, for the legend under a table."""

MODEL_WIDTH = 24
"""Width of the model column: names wrap at '_', '.', '-' or are shortened in the middle."""


def cell(value: Any) -> Text:
    """Plain text for a table cell (no markup is ever interpreted)."""
    return value if isinstance(value, Text) else Text(fmt.text(value))


def wrap_name(name: str, width: int = MODEL_WIDTH) -> str:
    """A file name on lines of at most `width` characters, broken after '_', '.' or
    '-' (never inside a word); a piece longer than a line is shortened in the
    middle with '…'."""
    pieces: list[str] = []
    current = ""
    for char in name:
        current += char
        if char in "_.-":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if len(piece) > width:
            keep = width - 1
            piece = piece[: (keep + 1) // 2] + "…" + piece[len(piece) - keep // 2 :]
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    if line:
        lines.append(line)
    return "\n".join(lines)


def read_all(docs: Iterable[Mapping[str, Any] | Result]) -> list[Result | ResultError]:
    """Each document read (a Result), or the ResultError saying why it cannot be."""
    out: list[Result | ResultError] = []
    for doc in docs:
        if isinstance(doc, Result):
            out.append(doc)
            continue
        try:
            out.append(read_result(doc))
        except ResultError as exc:
            out.append(exc)
    return out


def runtime_label(result: Result) -> str:
    """ "name version" then provider/delegate and threads, on two lines."""
    runtime = result.runtime
    if runtime.name is None:
        return DASH
    head = " ".join(p for p in (fmt.runtime_name(runtime.name), runtime.version) if p)
    details = []
    if runtime.delegate_or_provider:
        # "CUDAExecutionProvider" -> "CUDA": the suffix says nothing and costs a column
        details.append(runtime.delegate_or_provider.removesuffix("ExecutionProvider"))
    details.append(f"{runtime.threads} thr" if runtime.threads else "auto thr")
    return head + "\n" + " ".join(details)


def status_text(result: Result, *, max_len: int = 60) -> Text:
    """ "ok" in green, or the error code and a shortened message in red."""
    if result.ok:
        return Text("ok", style="green")
    code = result.error.code if result.error else "error"
    message = result.error.message if result.error else ""
    if len(message) > max_len:
        message = message[: max_len - 1] + "…"
    text = Text(code, style="bold red")
    if message:
        text.append(": " + message, style="red")
    return text


def flags_text(flags: Sequence[str]) -> Text:
    """Comma-separated flags, the serious ones highlighted."""
    text = Text()
    for i, flag in enumerate(flags):
        if i:
            text.append(", ")
        text.append(flag, style=_FLAG_STYLES.get(flag, ""))
    return text


def flags_legend(results: Iterable[Result | ResultError]) -> Text | None:
    """One line per flag that appears in `results`: what it means and what to do."""
    seen: dict[str, None] = {}
    for result in results:
        if isinstance(result, Result):
            for flag in result.flags:
                if flag in FLAG_MEANINGS:
                    seen[flag] = None
    if not seen:
        return None
    legend = Text()
    for i, flag in enumerate(seen):
        if i:
            legend.append("\n")
        legend.append(flag, style=_FLAG_STYLES.get(flag, "bold"))
        legend.append(": " + FLAG_MEANINGS[flag], style="dim")
    return legend


def _latency_cell(result: Result) -> Text:
    """p50, its 95% CI dimmed below it, then p90: one narrow column."""
    latency = result.latency
    if latency is None:
        return Text(DASH)
    text = Text(fmt.latency(latency.p50))
    bounds = fmt.interval(latency.ci95_p50, latency.p50) if latency.p50 is not None else ""
    if bounds:
        text.append("\n" + bounds, style="dim")
    if latency.p90 is not None:
        text.append("\np90 " + fmt.latency(latency.p90))
    return text


def _device_cell(result: Result) -> Text:
    """The device, and the job id dimmed below it (what `results show/rm` take)."""
    text = Text(result.device.id or DASH)
    if result.job_id:
        text.append("\n" + result.job_id, style="dim")
    return text


def _model_cell(result: Result) -> Text:
    """The model's name (wrapped at separators), its file size and the input shape it
    ran with, dimmed below: size is a third of the accuracy / size / latency trade-off
    every compression table reports, and a 1×1 run must not pass for a 48×320 one."""
    text = Text(wrap_name(result.model.name or DASH))
    if result.model.size_bytes is not None:
        text.append("\n" + fmt.size(result.model.size_bytes), style="dim")
    if result.settings.input_shapes:
        text.append("\n" + wrap_name(fmt.shapes(result.settings.input_shapes)), style="dim")
    return text


def _status_cell(result: Result) -> Text:
    text = status_text(result, max_len=48)
    if result.accuracy_error is not None:
        # the latency stands; only the accuracy could not be measured
        text.append(f"\nno accuracy: {result.accuracy_error.code}", style="yellow")
    flags = flags_text(result.flags)
    if flags.plain:
        text.append("\n")
        text.append_text(flags)
    return text


def results_table(
    docs: Sequence[Mapping[str, Any] | Result],
    *,
    title: str | None = None,
    missing: Sequence[tuple[str, str | None, str, str]] = (),
) -> RenderableType:
    """One row per result: device, model (size, input shape), runtime, p50 with its 95%
    CI and p90, peak memory, accuracy (when any result has one), status and flags;
    then a legend of the flags that appear.

    Laid out to stay readable in an 80-column terminal: intervals and flags sit
    on a second line of their cell; p99 and the rest are in ``--json`` and in the
    single-result detail view. `missing` adds a row for each target that gave no
    result: (device, model or None, state, reason), e.g. ("pi-3", None, "skipped",
    "offline") — the table is then the push's whole outcome.
    """
    results = read_all(docs)
    with_accuracy = any(
        isinstance(r, Result) and r.accuracy is not None and r.accuracy.top1 is not None
        for r in results
    )
    table = Table(
        title=Text(title) if title else None,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
    )
    table.add_column("device", overflow="fold", min_width=6, max_width=18)
    table.add_column("model", no_wrap=True, min_width=10, max_width=MODEL_WIDTH)
    table.add_column("runtime", overflow="fold", min_width=12, max_width=18)
    table.add_column("p50 [95% CI]\np90", justify="right", no_wrap=True)
    table.add_column("peak\nMB", justify="right", no_wrap=True)
    if with_accuracy:
        table.add_column("top-1", justify="right", no_wrap=True)
    table.add_column("status", min_width=10, max_width=30)
    for result in results:
        if isinstance(result, ResultError):
            row = [Text(DASH), Text(DASH), Text(DASH), Text(DASH), Text(DASH)]
            if with_accuracy:
                row.append(Text(DASH))
            row.append(Text(f"unreadable: {result}", style="red"))
            table.add_row(*row)
            continue
        cells: list[RenderableType] = [
            _device_cell(result),
            _model_cell(result),
            cell(runtime_label(result)),
            _latency_cell(result),
            cell(fmt.mib(result.memory.peak_rss)),
        ]
        if with_accuracy:
            top1 = result.accuracy.top1 if result.accuracy is not None else None
            cells.append(cell(fmt.percent(top1)))
        cells.append(_status_cell(result))
        table.add_row(*cells)
    for device_id, model, state, reason in missing:
        row = [Text(device_id), Text(wrap_name(model or DASH)), Text(DASH), Text(DASH), Text(DASH)]
        if with_accuracy:
            row.append(Text(DASH))
        style = "yellow" if state == "skipped" else "red"
        row.append(Text(f"{state}: {reason}", style=style))
        table.add_row(*row)
    legend = flags_legend(results)
    return Group(table, legend) if legend is not None else table


# -- the detail panel ---------------------------------------------------------------


def _section(title: str, body: RenderableType) -> RenderableType:
    # A heading line of its own: a table title would wrap to the table's width.
    return Group(Text(title, style="bold"), body) if title else body


def _kv_table(title: str, rows: Sequence[tuple[str, RenderableType | str]]) -> RenderableType:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="cyan", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(Text(key), cell(value) if isinstance(value, str) else value)
    return _section(title, table)


def _phase_value(value: Any) -> str:
    if isinstance(value, Mapping):
        runs = value.get("runs", value.get("n"))
        seconds = value.get("seconds", value.get("duration_s", value.get("s")))
        parts = []
        if runs is not None:
            parts.append(f"{runs} run" + ("" if runs == 1 else "s"))
        if fmt.number(seconds) is not None:
            parts.append(f"{seconds:.2f} s")
        if fmt.number(value.get("ms")) is not None:
            parts.append(fmt.latency(value["ms"]))
        if value.get("capped"):
            parts.append("stopped by --max-seconds")
        return ", ".join(parts) or DASH
    if fmt.number(value) is not None:
        return fmt.latency(value)
    return fmt.text(value)


_PHASE_LABELS = {
    "load_ms": "  of which load",
    "allocate_ms": "  of which allocate",
    "gc_disabled": "GC off while timing",
}


def _phases(result: Result) -> RenderableType:
    rows: list[tuple[str, RenderableType | str]] = [
        ("init / load", _phase_value(result.raw.get("init_ms"))),
    ]
    phases = result.section("phases")
    for name in ("load_ms", "allocate_ms"):  # the parts of init, right below it
        if name in phases:
            rows.append((_PHASE_LABELS[name], _phase_value(phases[name])))
    rows.append(("first inference", _phase_value(result.raw.get("first_inference_ms"))))
    if phases:
        for name, value in phases.items():
            if name in ("init_ms", "first_inference_ms", "init", "first_inference", "load"):
                continue  # already shown from the top-level keys
            if name in ("load_ms", "allocate_ms"):
                continue
            label = str(name).removesuffix("_ms").replace("_", " ")
            rows.append((_PHASE_LABELS.get(str(name), label), _phase_value(value)))
    else:
        settings = result.settings
        rows.append(
            (
                "settings",
                f"runs ≥ {fmt.text(settings.runs)}, warm-up ≥ {fmt.text(settings.warmup)}, "
                f"min {fmt.text(settings.min_seconds)} s",
            )
        )
    return _kv_table("Phases", rows)


def _latency(result: Result) -> RenderableType:
    lat = result.latency
    rows: list[tuple[str, RenderableType | str]] = [("n", fmt.text(lat.n if lat else None))]
    for key in ("min", "p50", "p90", "p95", "p99", "max", "mean", "std"):
        value = getattr(lat, key) if lat else None
        ci = getattr(lat, f"ci95_{key}", None) if lat else None
        rows.append((key, fmt.latency_ci(value, ci)))
    rows.append(("CoV", fmt.percent(lat.cov if lat else None)))
    return _kv_table("Latency (steady state)", rows)


def _memory(result: Result) -> RenderableType:
    rows: list[tuple[str, RenderableType | str]] = []
    for key, value in result.section("memory_mb").items():
        if isinstance(value, Mapping):  # e.g. checkpoints {after_imports: MB, ...}
            for sub, sub_value in value.items():
                rows.append((f"{key}.{sub}".replace("_", " "), fmt.mib(sub_value)))
        elif isinstance(value, str):  # e.g. peak_rss_source: "VmHWM"
            rows.append((str(key).replace("_", " "), value))
        else:
            rows.append((str(key).replace("_", " "), fmt.mib(value)))
    return _kv_table("Memory (MiB)", rows or [("", DASH)])


def _environment(result: Result) -> RenderableType:
    env = result.section("env")
    before = env.get("before") if isinstance(env.get("before"), Mapping) else {}
    after = env.get("after") if isinstance(env.get("after"), Mapping) else {}
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="dim")
    table.add_column("", style="cyan", no_wrap=True)
    table.add_column("before")
    table.add_column("after")

    def get(doc: Any, *keys: str) -> Any:
        for key in keys:
            if not isinstance(doc, Mapping):
                return None
            doc = doc.get(key)
        return doc

    def temp(snap: Any, fallback: Any) -> str:
        value = get(snap, "temp_c") if snap else fallback
        return DASH if fmt.number(value) is None else f"{value:.1f} °C"

    def freq(snap: Any, fallback: Any = None) -> str:
        mean = get(snap, "cpu_freq_mhz", "mean") if snap else fallback
        return DASH if fmt.number(mean) is None else f"{mean:.0f} MHz"

    def pi(snap: Any) -> str:
        flags = get(snap, "pi_throttled", "now")
        if not isinstance(flags, Mapping):
            return DASH
        on = [str(name) for name, bit in flags.items() if bit]
        return ", ".join(on) if on else "none"

    typed = result.env

    def row(label: str, *values: Any) -> None:
        table.add_row(Text(label), *(cell(v) for v in values))

    row("CPU temperature", temp(before, typed.temp_c_start), temp(after, typed.temp_c_end))
    row("CPU frequency", freq(before), freq(after, typed.cpu_freq_mhz))
    row("governor", get(before, "governor"), get(after, "governor") or typed.governor)
    row(
        "load average",
        get(before, "load_avg") or list(typed.load_avg) or None,
        get(after, "load_avg"),
    )
    if get(before, "pi_throttled") or get(after, "pi_throttled"):
        row("Pi throttle flags", pi(before), pi(after))
    mode = get(after, "jetson_power_mode") or get(before, "jetson_power_mode")
    if isinstance(mode, Mapping):
        row("Jetson power mode", mode.get("name") or mode.get("id"), "")
    throttled = typed.throttled
    row("throttled", Text(fmt.text(throttled), style="bold red" if throttled else ""), "")
    return _section("Environment", table)


def result_detail(doc: Mapping[str, Any] | Result) -> RenderableType:
    """Everything about one result: what ran (and with which inputs), phases,
    latency, memory, environment and flags (or the error)."""
    read = read_all([doc])[0]
    if isinstance(read, ResultError):
        return Panel(Text(f"unreadable result: {read}"), border_style="red", expand=False)
    result = read
    device = result.device
    header_rows: list[tuple[str, RenderableType | str]] = [
        (
            "model",
            f"{result.model.name or DASH}"
            + (f" ({result.model.format})" if result.model.format else ""),
        ),
        ("size", fmt.size(result.model.size_bytes)),
        ("inputs", fmt.shapes(result.settings.input_shapes)),
        ("runtime", runtime_label(result).replace("\n", ", ")),
        ("device", f"{fmt.text(device.id)} · {fmt.text(device.machine)} · {fmt.text(device.cpu)}"),
        ("status", status_text(result, max_len=400)),
    ]
    if result.job_id:
        header_rows.insert(0, ("job", result.job_id))
    if result.label:
        header_rows.insert(0, ("label", result.label))
    if result.accuracy is not None:
        header_rows.append(
            ("top-1", f"{fmt.percent(result.accuracy.top1)} of {fmt.text(result.accuracy.n)}")
        )
    if result.accuracy_error is not None and result.accuracy_error.message:
        header_rows.append(("top-1", Text(result.accuracy_error.message, style="yellow")))
    flags = flags_text(result.flags)
    header_rows.append(("flags", flags if flags.plain else Text("none", style="green")))
    parts: list[RenderableType] = [_kv_table("", header_rows)]
    if result.ok or result.latency is not None:
        parts += [Text(""), _phases(result), Text(""), _latency(result), Text(""), _memory(result)]
    if result.section("env"):
        parts += [Text(""), _environment(result)]
    legend = flags_legend([result])
    if legend is not None:
        parts += [Text(""), legend]
    title = "edgeprof result" + (f" · {result.created_at}" if result.created_at else "")
    style = "green" if result.ok else "red"
    return Panel(Group(*parts), title=Text(title), border_style=style, expand=False)

"""Rich renderings of result documents: the results table and a single-run detail view.

Everything here tolerates partial documents: error results, withheld
percentiles and missing sections print "—" instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

DASH = "—"
"""Printed for any value that is absent, null or withheld."""

_FLAG_STYLES = {"unstable": "bold yellow", "throttled": "bold red", "drift": "yellow"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return float(value)


def _get(doc: Any, *keys: str) -> Any:
    """``doc[k1][k2]...`` or None when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def format_ms(value: Any) -> str:
    """Milliseconds with 3 significant digits (integers from 100 ms up); "—" when absent."""
    v = _num(value)
    if v is None:
        return DASH
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:#.3g}"


def format_latency(value: Any, *, unit: str | None = None) -> str:
    """A latency given in ms, with its unit: "6.39 µs", "1.23 ms", "1.20 s".

    ``unit`` forces one of "µs", "ms", "s" (so an interval shares its value's unit).
    """
    v = _num(value)
    if v is None:
        return DASH
    unit = unit or latency_unit(v)
    scaled = {"µs": v * 1000.0, "ms": v, "s": v / 1000.0}[unit]
    return f"{format_ms(scaled)} {unit}"


def latency_unit(value_ms: float) -> str:
    """The unit a latency of `value_ms` reads best in."""
    a = abs(value_ms)
    if 0 < a < 1:
        return "µs"
    return "s" if a >= 10_000 else "ms"


def format_latency_ci(value: Any, ci: Any) -> Text:
    """A latency with its 95% CI dimmed, in one unit: ``6.39 µs [6.38–6.41]``."""
    text = Text(format_latency(value))
    interval = format_ci(ci, value) if _num(value) is not None else ""
    if interval:
        text.append(" " + interval, style="dim")
    return text


def format_ci(ci: Any, value: Any = None) -> str:
    """A ``[lo, hi]`` interval given in ms as "[lo–hi]", in the unit that `value`
    reads best in (see :func:`latency_unit`; ms without one); "" when absent."""
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2:
        return ""
    lo, hi = (_num(c) for c in ci)
    if lo is None or hi is None:
        return ""
    v = _num(value)
    factor = {"µs": 1000.0, "ms": 1.0, "s": 0.001}[latency_unit(v)] if v is not None else 1.0
    return f"[{format_ms(lo * factor)}–{format_ms(hi * factor)}]"


def format_mb(value: Any) -> str:
    """MiB with one decimal; "—" when absent."""
    v = _num(value)
    return DASH if v is None else f"{v:.1f}"


def format_pct(value: Any, *, fraction: bool = True) -> str:
    """A percentage with one decimal (``fraction``: the value is 0..1)."""
    v = _num(value)
    if v is None:
        return DASH
    return f"{v * 100 if fraction else v:.1f}%"


def format_bytes(value: Any) -> str:
    """Bytes as B / KiB / MiB / GiB."""
    v = _num(value)
    if v is None:
        return DASH
    for unit in ("B", "KiB", "MiB"):
        if abs(v) < 1024:
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.2f} GiB"


def _text(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value) or DASH
    return str(value)


def model_label(result: Mapping[str, Any]) -> str:
    """ "name (format)" of the result's model."""
    name = _get(result, "model", "name") or DASH
    fmt = _get(result, "model", "format")
    return f"{name} ({fmt})" if fmt else str(name)


def runtime_label(result: Mapping[str, Any]) -> str:
    """ "name version", then provider/delegate and threads, on two lines."""
    runtime = _get(result, "runtime")
    if not isinstance(runtime, Mapping) or not runtime.get("name"):
        return DASH
    head = " ".join(str(p) for p in (runtime.get("name"), runtime.get("version")) if p)
    details = []
    if runtime.get("delegate_or_provider"):
        # "CUDAExecutionProvider" -> "CUDA": the suffix says nothing and costs a column
        details.append(str(runtime["delegate_or_provider"]).removesuffix("ExecutionProvider"))
    threads = runtime.get("threads")
    details.append(f"{threads} thr" if threads else "auto thr")
    return head + "\n" + " ".join(details)


def status_text(result: Mapping[str, Any], *, max_len: int = 60) -> Text:
    """ "ok" in green, or the error code and a shortened message in red."""
    if result.get("status") == "ok":
        return Text("ok", style="green")
    code = _get(result, "error", "code") or "error"
    message = str(_get(result, "error", "message") or "")
    if len(message) > max_len:
        message = message[: max_len - 1] + "…"
    text = Text(str(code), style="bold red")
    if message:
        text.append(": " + message, style="red")
    return text


def flags_text(flags: Any) -> Text:
    """Comma-separated flags, the serious ones highlighted."""
    text = Text()
    if not isinstance(flags, Sequence) or isinstance(flags, str):
        return text
    for i, flag in enumerate(flags):
        if i:
            text.append(", ")
        text.append(str(flag), style=_FLAG_STYLES.get(str(flag), ""))
    return text


def _latency_cell(p50: Any, ci: Any, p90: Any) -> Text:
    """p50, its 95% CI dimmed below it, then p90: one narrow column."""
    text = Text(format_latency(p50))
    interval = format_ci(ci, p50) if _num(p50) is not None else ""
    if interval:
        text.append("\n" + interval, style="dim")
    if _num(p90) is not None:
        text.append("\np90 " + format_latency(p90))
    return text


def _model_cell(result: Mapping[str, Any]) -> Text:
    """The model's name, and its file size dimmed below: size is a third of the
    accuracy / size / latency trade-off every compression table reports."""
    text = Text(str(_get(result, "model", "name") or DASH))
    size = _get(result, "model", "size_bytes")
    if _num(size) is not None:
        text.append("\n" + format_bytes(size), style="dim")
    return text


def _status_cell(result: Mapping[str, Any]) -> Text:
    text = status_text(result, max_len=48)
    accuracy_error = result.get("accuracy_error")
    if isinstance(accuracy_error, Mapping) and accuracy_error.get("code"):
        # the latency stands; only the accuracy could not be measured
        text.append(f"\nno accuracy: {accuracy_error['code']}", style="yellow")
    flags = flags_text(result.get("flags"))
    if flags.plain:
        text.append("\n")
        text.append_text(flags)
    return text


def results_table(results: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Table:
    """One row per result document: device, model (and its size), runtime, p50 with its 95% CI, p90,
    peak memory, accuracy (when any result has one), status and flags.

    Laid out to stay readable in an 80-column terminal: intervals and flags sit
    on a second line of their cell; p99 and the rest are in ``--json`` and in the
    single-result detail view.
    """
    with_accuracy = any(_get(r, "accuracy", "top1") is not None for r in results)
    table = Table(
        title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1)
    )
    table.add_column("device", overflow="fold", min_width=6, max_width=18)
    table.add_column("model", overflow="fold", min_width=10, max_width=24)
    table.add_column("runtime", overflow="fold", min_width=12, max_width=18)
    table.add_column("p50 [95% CI]\np90", justify="right", no_wrap=True)
    table.add_column("peak\nMB", justify="right", no_wrap=True)
    if with_accuracy:
        table.add_column("top-1", justify="right", no_wrap=True)
    table.add_column("status", min_width=10, max_width=30)
    for result in results:
        latency = _get(result, "latency_ms") or {}
        row: list[RenderableType] = [
            str(_get(result, "device", "id") or DASH),
            _model_cell(result),
            runtime_label(result),
            _latency_cell(_get(latency, "p50"), _get(latency, "ci95_p50"), _get(latency, "p90")),
            format_mb(_get(result, "memory_mb", "peak_rss")),
        ]
        if with_accuracy:
            row.append(format_pct(_get(result, "accuracy", "top1")))
        row.append(_status_cell(result))
        table.add_row(*row)
    return table


def _section(title: str, body: RenderableType) -> RenderableType:
    # A heading line of its own: a table title would wrap to the table's width.
    return Group(Text(title, style="bold"), body) if title else body


def _kv_table(title: str, rows: Sequence[tuple[str, RenderableType | str]]) -> RenderableType:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="cyan", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return _section(title, table)


def _phase_value(value: Any) -> str:
    if isinstance(value, Mapping):
        runs = value.get("runs", value.get("n"))
        seconds = value.get("seconds", value.get("duration_s", value.get("s")))
        parts = []
        if runs is not None:
            parts.append(f"{runs} run" + ("" if runs == 1 else "s"))
        if _num(seconds) is not None:
            parts.append(f"{seconds:.2f} s")
        if _num(value.get("ms")) is not None:
            parts.append(format_latency(value["ms"]))
        if value.get("capped"):
            parts.append("stopped by --max-seconds")
        return ", ".join(parts) or DASH
    if _num(value) is not None:
        return format_latency(value)
    return _text(value)


_PHASE_LABELS = {
    "load_ms": "  of which load",
    "allocate_ms": "  of which allocate",
    "gc_disabled": "GC off while timing",
}


def _phases(result: Mapping[str, Any]) -> RenderableType:
    rows: list[tuple[str, RenderableType | str]] = [
        ("init / load", _phase_value(result.get("init_ms"))),
    ]
    phases = result.get("phases")
    if isinstance(phases, Mapping):
        for name in ("load_ms", "allocate_ms"):  # the parts of init, right below it
            if name in phases:
                rows.append((_PHASE_LABELS[name], _phase_value(phases[name])))
    rows.append(("first inference", _phase_value(result.get("first_inference_ms"))))
    if isinstance(phases, Mapping):
        for name, value in phases.items():
            if name in ("init_ms", "first_inference_ms", "init", "first_inference", "load"):
                continue  # already shown from the top-level keys
            if name in ("load_ms", "allocate_ms"):
                continue
            label = str(name).removesuffix("_ms").replace("_", " ")
            rows.append((_PHASE_LABELS.get(str(name), label), _phase_value(value)))
    else:
        settings = result.get("settings") or {}
        rows.append(
            (
                "settings",
                f"runs ≥ {_text(settings.get('runs'))}, "
                f"warm-up ≥ {_text(settings.get('warmup'))}, "
                f"min {_text(settings.get('min_seconds'))} s",
            )
        )
    return _kv_table("Phases", rows)


def _latency(result: Mapping[str, Any]) -> RenderableType:
    lat = result.get("latency_ms")
    lat = lat if isinstance(lat, Mapping) else {}
    rows: list[tuple[str, RenderableType | str]] = [("n", _text(lat.get("n")))]
    for key in ("min", "p50", "p90", "p95", "p99", "max", "mean", "std"):
        ci = lat.get(f"ci95_{key}")
        rows.append((key, format_latency_ci(lat.get(key), ci)))
    rows.append(("CoV", format_pct(lat.get("cov"))))
    return _kv_table("Latency (steady state)", rows)


def _memory(result: Mapping[str, Any]) -> RenderableType:
    mem = result.get("memory_mb")
    rows: list[tuple[str, RenderableType | str]] = []
    if isinstance(mem, Mapping):
        for key, value in mem.items():
            if isinstance(value, Mapping):  # e.g. checkpoints {after_imports: MB, ...}
                for sub, sub_value in value.items():
                    rows.append((f"{key}.{sub}".replace("_", " "), format_mb(sub_value)))
            elif isinstance(value, str):  # e.g. peak_rss_source: "VmHWM"
                rows.append((str(key).replace("_", " "), value))
            else:
                rows.append((str(key).replace("_", " "), format_mb(value)))
    return _kv_table("Memory (MiB)", rows or [("", DASH)])


def _environment(result: Mapping[str, Any]) -> RenderableType:
    env = result.get("env")
    env = env if isinstance(env, Mapping) else {}
    before = env.get("before") if isinstance(env.get("before"), Mapping) else {}
    after = env.get("after") if isinstance(env.get("after"), Mapping) else {}
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="dim")
    table.add_column("", style="cyan", no_wrap=True)
    table.add_column("before")
    table.add_column("after")

    def temp(snap: Any, fallback: Any) -> str:
        value = _get(snap, "temp_c") if snap else fallback
        return DASH if _num(value) is None else f"{value:.1f} °C"

    def freq(snap: Any) -> str:
        mean = _get(snap, "cpu_freq_mhz", "mean")
        return DASH if _num(mean) is None else f"{mean:.0f} MHz"

    def pi(snap: Any) -> str:
        flags = _get(snap, "pi_throttled", "now")
        if not isinstance(flags, Mapping):
            return DASH
        on = [name for name, bit in flags.items() if bit]
        return ", ".join(on) if on else "none"

    table.add_row(
        "CPU temperature", temp(before, env.get("temp_c_start")), temp(after, env.get("temp_c_end"))
    )
    table.add_row(
        "CPU frequency",
        freq(before),
        freq(after)
        if after
        else (DASH if _num(env.get("cpu_freq_mhz")) is None else f"{env['cpu_freq_mhz']:.0f} MHz"),
    )
    table.add_row(
        "governor",
        _text(_get(before, "governor")),
        _text(_get(after, "governor") or env.get("governor")),
    )
    table.add_row(
        "load average",
        _text(_get(before, "load_avg") or env.get("load_avg")),
        _text(_get(after, "load_avg")),
    )
    if _get(before, "pi_throttled") or _get(after, "pi_throttled"):
        table.add_row("Pi throttle flags", pi(before), pi(after))
    mode = _get(after, "jetson_power_mode") or _get(before, "jetson_power_mode")
    if isinstance(mode, Mapping):
        table.add_row("Jetson power mode", _text(mode.get("name") or mode.get("id")), "")
    throttled = env.get("throttled")
    table.add_row("throttled", Text(_text(throttled), style="bold red" if throttled else ""), "")
    return _section("Environment", table)


def result_detail(result: Mapping[str, Any]) -> RenderableType:
    """Everything about one local profile: what ran, phases, latency, memory,
    environment and flags (or the error)."""
    header_rows: list[tuple[str, RenderableType | str]] = [
        ("model", model_label(result)),
        ("size", format_bytes(_get(result, "model", "size_bytes"))),
        ("runtime", runtime_label(result).replace("\n", ", ")),
        (
            "device",
            f"{_text(_get(result, 'device', 'id'))} · "
            f"{_text(_get(result, 'device', 'machine'))} · "
            f"{_text(_get(result, 'device', 'cpu'))}",
        ),
        ("status", status_text(result, max_len=400)),
    ]
    if result.get("label"):
        header_rows.insert(0, ("label", str(result["label"])))
    accuracy = result.get("accuracy")
    if isinstance(accuracy, Mapping):
        header_rows.append(
            ("top-1", f"{format_pct(accuracy.get('top1'))} of {_text(accuracy.get('n'))}")
        )
    accuracy_error = result.get("accuracy_error")
    if isinstance(accuracy_error, Mapping) and accuracy_error.get("message"):
        header_rows.append(("top-1", Text(str(accuracy_error["message"]), style="yellow")))
    flags = flags_text(result.get("flags"))
    header_rows.append(("flags", flags if flags.plain else Text("none", style="green")))
    parts: list[RenderableType] = [_kv_table("", header_rows)]
    if result.get("status") == "ok" or result.get("latency_ms"):
        parts += [Text(""), _phases(result), Text(""), _latency(result), Text(""), _memory(result)]
    if result.get("env"):
        parts += [Text(""), _environment(result)]
    title = "edgeprof result" + (f" · {result['created_at']}" if result.get("created_at") else "")
    style = "green" if result.get("status") == "ok" else "red"
    return Panel(Group(*parts), title=title, border_style=style, expand=False)

"""Renderables for the optional parts of a result: energy, sustained timeline, per-op table.

Kept apart from hostctl.render: each function takes a result document and
returns a rich renderable, or None when the result has no such part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def _f(value: Any, fmt: str, unit: str = "") -> str:
    return f"{value:{fmt}}{unit}" if isinstance(value, (int, float)) else "—"


def energy_line(result: Mapping[str, Any]) -> RenderableType | None:
    """``energy 1.23 mJ/inference [1.10–1.36] · 7.49 W (idle 4.46 W) · VDD_IN (ina3221-hwmon)``."""
    energy = result.get("energy")
    if not isinstance(energy, Mapping):
        return None
    ci = energy.get("ci95")
    interval = (
        f" [{ci[0]:.3g}–{ci[1]:.3g}]"
        if isinstance(ci, Sequence) and len(ci) == 2 and all(isinstance(c, float) for c in ci)
        else ""
    )
    text = Text("energy ", style="bold")
    text.append(f"{_f(energy.get('mj_per_inference'), '.3g', ' mJ/inference')}{interval}")
    text.append(
        f" · {_f(energy.get('avg_power_w'), '.2f', ' W')}"
        f" (idle {_f(energy.get('idle_power_w'), '.2f', ' W')})"
        f" · {energy.get('rail')} ({energy.get('source')}, {energy.get('samples')} samples)"
    )
    if energy.get("partial"):
        text.append(f"\npartial: {energy.get('note')}", style="yellow")
    elif energy.get("mj_per_inference") is None and energy.get("note"):
        text.append(f"\n{energy.get('note')}", style="yellow")
    return text


def sustained_summary(result: Mapping[str, Any]) -> RenderableType | None:
    """When throttling began and latency before vs after, over a compact timeline table."""
    summary = result.get("sustained")
    rows = result.get("timeline")
    if not isinstance(summary, Mapping) or not isinstance(rows, list):
        return None
    began = summary.get("throttle_began_s")
    head = Text("sustained ", style="bold")
    blocks = summary.get("blocks")
    head.append(
        f"{_f(summary.get('duration_s'), '.0f', ' s')} in {blocks} block{'' if blocks == 1 else 's'} · "
    )
    if began is None:
        head.append("no throttling", style="green")
        head.append(f" · p50 {_f(summary.get('latency_before_ms'), '.4g', ' ms')}")
    else:
        head.append(f"throttling from {began:.0f} s", style="red")
        head.append(
            f" · p50 {_f(summary.get('latency_before_ms'), '.4g', ' ms')} before → "
            f"{_f(summary.get('latency_after_ms'), '.4g', ' ms')} after"
            f" ({_f(summary.get('slowdown'), '.2f', '×')})"
        )
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("t", "p50", "temp", "MHz", "throttled"):
        table.add_column(column, justify="right")
    step = max(1, len(rows) // 12)  # at most a dozen lines for people; JSON has them all
    for row in rows[::step]:
        table.add_row(
            _f(row.get("t_s"), ".0f", " s"),
            _f(row.get("p50_ms"), ".4g", " ms"),
            _f(row.get("temp_c"), ".1f", " °C"),
            _f(row.get("cpu_freq_mhz"), ".0f"),
            "yes" if row.get("throttled") else "",
        )
    return Group(head, table)


def per_op_table(result: Mapping[str, Any], *, limit: int = 10) -> RenderableType | None:
    """Op type → share of time (ONNX Runtime), or the note saying why there is none."""
    info = result.get("per_op_info")
    rows = result.get("per_op")
    if not isinstance(rows, list):
        if isinstance(info, Mapping) and info.get("note"):
            return Text(f"per-op: {info['note']}", style="yellow")
        return None
    runs = info.get("runs") if isinstance(info, Mapping) else None
    table = Table(title=f"where the time goes (profiling pass, {runs} runs)", title_justify="left")
    table.add_column("op type")
    table.add_column("share", justify="right")
    table.add_column("ms/run", justify="right")
    table.add_column("nodes", justify="right")
    table.add_column("provider")
    for row in rows[:limit]:
        share = row.get("share")
        table.add_row(
            str(row.get("op_type")),
            f"{share * 100:.1f}%" if isinstance(share, float) else "—",
            _f(row.get("ms_per_run"), ".4g"),
            str(row.get("nodes")),
            ", ".join(row.get("providers") or []),
        )
    return table


def extras_detail(result: Mapping[str, Any]) -> RenderableType | None:
    """Every optional part the result has, stacked; None when it has none."""
    parts = [
        part
        for part in (energy_line(result), sustained_summary(result), per_op_table(result))
        if part is not None
    ]
    return Group(*parts) if parts else None

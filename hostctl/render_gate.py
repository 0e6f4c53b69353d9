"""The gate's table for people (rich): one row per subject x metric, grouped by
subject, the verdict coloured; the reasons and the excluded runs under it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hostctl.gate import METRIC_NAMES, effect_text, figure_text, limit_text, why

if TYPE_CHECKING:
    from hostctl.gate import GateReport
    from profiler.compare import Comparison

_VERDICT_STYLE = {"FAIL": "bold red", "PASS": "bold green", "INCONCLUSIVE": "bold yellow"}


def _subject_table(comparisons: list[Comparison], *, with_verdict: bool) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("metric", no_wrap=True)
    table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("candidate", justify="right", no_wrap=True)
    table.add_column("change [95% CI]", overflow="fold")
    if with_verdict:
        table.add_column("verdict", overflow="fold")
    for c in comparisons:
        row: list[RenderableType] = [
            Text(METRIC_NAMES.get(c.metric, c.metric)),
            Text(figure_text(c, c.baseline)),
            Text(figure_text(c, c.candidate)),
            Text(effect_text(c)),
        ]
        if with_verdict:
            cell = Text(str(c.verdict), style=_VERDICT_STYLE.get(str(c.verdict), ""))
            cell.append(f" ({limit_text(c)})", style="dim")
            row.append(cell)
        table.add_row(*row)
    return table


def gate_table(report: GateReport) -> RenderableType:
    """The comparisons as a table, then one line per note and per unmatched subject,
    then the overall verdict (check only)."""
    verdict = report.verdict
    parts: list[RenderableType] = []
    by_subject: dict[str, list[Comparison]] = {}
    for c in report.comparisons:
        by_subject.setdefault(str(c.subject.get("title") or ""), []).append(c)
    for title, comparisons in by_subject.items():
        parts.append(Text(title, style="bold"))
        parts.append(_subject_table(comparisons, with_verdict=verdict is not None))
    notes = Text()
    for c in report.comparisons:
        reason = why(c)
        if reason:
            if notes:
                notes.append("\n")
            notes.append(f"{METRIC_NAMES.get(c.metric, c.metric)}", style="bold")
            notes.append(f" ({c.subject.get('title')}): {reason}", style="dim")
    for u in report.unmatched:
        if notes:
            notes.append("\n")
        notes.append("unmatched ", style="bold yellow")
        notes.append(u.line())
    for lost in report.lost:
        if notes:
            notes.append("\n")
        notes.append("lost ", style="bold yellow")
        notes.append(lost)
    if report.live:
        live = report.live
        if notes:
            notes.append("\n")
        apart = live.get("pairs_not_back_to_back") or 0
        notes.append(
            f"live: {live.get('rounds')} round(s), {live.get('pairs_per_device')} ABBA pairs per "
            f"device in {live.get('elapsed_s')} s (warm-up {live.get('warmup_s', 0)} s); "
            f"{live.get('stopped')}"
            + (f"; {apart} pair(s) left out: their runs did not run back to back" if apart else ""),
            style="dim",
        )
    if notes:
        parts.append(notes)
    if verdict is not None:
        counts: dict[str, int] = {}
        for c in report.comparisons:
            counts[str(c.verdict)] = counts.get(str(c.verdict), 0) + 1
        line = Text(verdict, style=_VERDICT_STYLE.get(verdict, "bold"))
        detail = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        if report.unmatched:
            detail += f", {len(report.unmatched)} unmatched"
        if report.lost:
            detail += f", {len(report.lost)} device(s) with lost runs"
        family = sum(1 for c in report.comparisons if c.p_value is not None and not c.exact)
        exact = sum(1 for c in report.comparisons if c.exact)
        holm = f"Holm across {family} tested comparison(s), α = 5 %" if family else "no interval"
        if exact:
            holm += f"; {exact} exact (size, failed runs)"
        line.append(f"  {detail} ({holm})")
        parts.append(line)
    return Group(*parts)

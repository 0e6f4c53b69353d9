"""The study table for the terminal (rich): one table per source model, the columns of
:mod:`hostctl.report` that fit a terminal (the HTML report and ``--format csv`` have
every one). Shared by ``hostctl study``, ``hostctl report`` and ``hostctl demo``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from hostctl.report import NUMERIC, Group, cells, group_title, latency_unit, titles

TERMINAL_COLUMNS = (
    "variant",
    "device",
    "top1",
    "top1_change",
    "size",
    "gzip",
    "nonzeros",
    "p50",
    "peak",
    "removed",
    "saved",
    "flags",
)
"""The study columns a terminal shows (runtime, params, MACs, p90 and the ratio in
words are in the report)."""


def study_tables(groups: Sequence[Group], *, title: str | None = None) -> list[Table]:
    """One rich table per source model; every cell is plain text, never markup."""
    tables = []
    for group in groups:
        unit = latency_unit(group.rows)
        names = titles(unit)
        caption = group_title(group)
        table = Table(
            title=f"{title}: {caption}" if title else caption,
            title_justify="left",
            caption="Δ and savings against the fp32 on the same device; [95% CI]",
            caption_justify="left",
        )
        for key in TERMINAL_COLUMNS:
            numeric = key in NUMERIC
            table.add_column(
                names[key].replace(" [95% CI]", ""),
                justify="right" if numeric else "left",
                overflow="fold",
            )
        for row in group.rows:
            text = cells(row, unit)
            values = []
            for key in TERMINAL_COLUMNS:
                main, bracket, rest = text[key].partition(" [")
                cell = Text(main, style="bold" if row.is_baseline and key == "variant" else "")
                if bracket:
                    cell.append("\n[" + rest, style="dim")
                if key == "flags" and text[key]:
                    cell.stylize("red" if not row.result.ok else "yellow")
                values.append(cell)
            table.add_row(*values)
        tables.append(table)
    return tables


__all__ = ["TERMINAL_COLUMNS", "study_tables"]

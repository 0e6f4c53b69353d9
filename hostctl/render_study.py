"""The study table for the terminal (rich): one table per source model, as many of
:mod:`hostctl.report`'s columns as the terminal is wide enough for, most telling
first (the HTML report and ``--format csv|markdown`` have every one). Shared by
``hostctl study``, ``hostctl report`` and ``hostctl demo``."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from hostctl.report import (
    NUMERIC,
    Group,
    Row,
    cells,
    group_title,
    latency_unit,
    titles,
    visible_columns,
)

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
    "energy",
    "removed",
    "saved",
    "flags",
)
"""The study columns a terminal shows, in display order (runtime, params, MACs, p90
and the ratio in words are in the report)."""

PRIORITY = (
    "variant",
    "device",
    "top1",
    "p50",
    "size",
    "top1_change",
    "saved",
    "flags",
    "removed",
    "gzip",
    "nonzeros",
    "peak",
    "energy",
)
"""Which columns stay when the terminal is narrow: the first that fit, in this order
(what the papers' table is about first; flags before the extras, since they say
when a number is not to be trusted)."""

_SHORT = {"top1_change": "Δ top-1", "removed": "conn. removed"}
"""Terminal titles of columns whose report title is long (the caption explains)."""

_GAP = 2
"""Characters between two columns (one padding space, collapsed, and a blank rule);
the table's two edges take one more each."""


def _title(key: str, names: dict[str, str]) -> str:
    return _SHORT.get(key, names[key].replace(" [95% CI]", ""))


def _lines(text: str) -> list[str]:
    """A cell as the terminal shows it: its bracketed interval on a line of its own."""
    main, bracket, rest = text.partition(" [")
    return [main, "[" + rest] if bracket else [main]


def _width(key: str, title: str, texts: Sequence[dict[str, str]]) -> int:
    """What column ``key`` needs: its title and its longest cell line (only flags, a
    list of words, may wrap)."""
    lines = [line for text in texts for line in _lines(text[key])]
    if key == "flags":
        return max([len(title)] + [len(word) for line in lines for word in line.split()])
    return max([len(title)] + [len(line) for line in lines])


def fit_columns(
    rows: Sequence[Row], unit: str, width: int | None, *, one_device: bool
) -> list[str]:
    """The columns of :data:`TERMINAL_COLUMNS` that fit in ``width`` characters (all
    of them when None), taken in :data:`PRIORITY` order, shown in display order.
    With ``one_device`` the device is in the title, not a column."""
    names = titles(unit)
    texts = [cells(row, unit) for row in rows]
    shown = set(visible_columns(rows))  # energy only where a board measured it
    candidates = [k for k in PRIORITY if k in shown and not (one_device and k == "device")]
    if width is None:
        chosen = set(candidates)
    else:
        chosen, used = set(), 2
        for key in candidates:
            need = _width(key, _title(key, names), texts) + (_GAP if chosen else 0)
            if used + need <= width or key == "variant":
                chosen.add(key)
                used += need
    return [k for k in TERMINAL_COLUMNS if k in chosen]


def study_tables(
    groups: Sequence[Group], *, title: str | None = None, width: int | None = None
) -> list[Table]:
    """One rich table per source model; every cell is plain text, never markup.

    ``width``: the terminal's width (``Console.width``); columns that do not fit are
    left out, and the caption names them and where to see them."""
    tables = []
    for group in groups:
        unit = latency_unit(group.rows)
        names = titles(unit)
        devices = group.devices
        one_device = len(devices) == 1
        caption = group_title(group) + (f" on {devices[0]}" if one_device else "")
        columns = fit_columns(group.rows, unit, width, one_device=one_device)
        shown = set(visible_columns(group.rows))
        left_out = [
            _title(k, names)
            for k in TERMINAL_COLUMNS
            if k in shown and k not in columns and not (one_device and k == "device")
        ]
        notes = ["Δ top-1, conn. removed and time saved against the fp32 on the same device"]
        notes.append("[95% CI]")
        if left_out:
            notes.append(
                f"too narrow for: {', '.join(left_out)} (a wider terminal, "
                "--format markdown, or --html)"
            )
        table = Table(
            title=f"{title}: {caption}" if title else caption,
            title_justify="left",
            caption="; ".join(notes),
            caption_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 1),
            collapse_padding=True,
        )
        for key in columns:
            table.add_column(
                _title(key, names),
                justify="right" if key in NUMERIC else "left",
                overflow="fold",
                no_wrap=key != "flags",
            )
        for row in group.rows:
            text = cells(row, unit)
            values = []
            for key in columns:
                lines = _lines(text[key])
                cell = Text(lines[0], style="bold" if row.is_baseline and key == "variant" else "")
                if len(lines) > 1:
                    cell.append("\n" + lines[1], style="dim")
                if key == "flags" and text[key]:
                    cell.stylize("red" if not row.result.ok else "yellow")
                values.append(cell)
            table.add_row(*values)
        tables.append(table)
    return tables


__all__ = ["PRIORITY", "TERMINAL_COLUMNS", "fit_columns", "study_tables"]

"""Rich renderings of what ``modelkit.variants`` made: the table of variants (or why
one was not made) and the warnings a user must see before pushing them. Shared by
``hostctl variants`` and ``hostctl study``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from modelkit.variants import Outcome

_DASH = "—"


def _snr(outcome: Outcome) -> str:
    check = outcome.check
    if check is None or check.snr_db is None:
        return _DASH
    if math.isinf(check.snr_db) and check.snr_db > 0:
        return "identical"
    return f"{check.snr_db:.1f} dB"


def render_outcomes(
    outcomes: list[Outcome], console: Console, err: Console, *, labelled: bool = False
) -> None:
    """The table of what was made (or why not), then the loud warnings."""
    from rich.table import Table

    from hostctl.format import percent as _percent
    from hostctl.format import size as _size

    folder = next((o.path.parent for o in outcomes if o.path is not None), None)
    title = f"variants in {folder}" if folder else "variants"
    table = Table(title=title, title_justify="left")
    numeric = {"size": 9, "zeros": 6, "agree": 6, "SNR": 9}
    if labelled:
        numeric["top-1"] = 6
    table.add_column("kind", no_wrap=True, min_width=5)
    for name, width in numeric.items():
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True, min_width=8)
    table.add_column("file", overflow="fold")
    for o in outcomes:
        if not o.made:
            table.add_row(o.name, *([_DASH] * len(numeric)), "[red]not made[/]", _DASH)
            continue
        check = o.check
        row = [
            o.name,
            _size(o.size_bytes),
            _percent(o.measured_sparsity),
            _percent(check.agreement if check else None),
            _snr(o),
        ]
        if labelled:
            row.append(_percent(check.top1 if check else None))
        warn = [f for f in o.flags if f != "checked_on_random_inputs"]
        row.append("[yellow]flagged[/]" if warn else "[green]ok[/]")
        row.append(o.path.name if o.path else _DASH)
        table.add_row(*row)
    console.print(table)
    outcome_warnings(outcomes, err)


def outcome_warnings(outcomes: list[Outcome], err: Console) -> None:
    """What was not made and why, and the loud warnings (random calibration, a variant
    that disagrees with its source), on ``err``."""
    from rich.markup import escape

    from hostctl.format import percent as _percent
    from modelkit.variants.check import MIN_AGREEMENT, MIN_SNR_DB

    for o in outcomes:
        if not o.made:
            err.print(f"[yellow]not made:[/] {o.name}: {escape(o.reason or '')}", markup=True)
        if "random_calibration" in o.flags:
            err.print(
                f"[bold red]WARNING: {o.name} was calibrated on RANDOM data[/]: its int8 ranges "
                "do not match real inputs; use it for smoke tests only, never for a study "
                "(give --calibration CAL.npz)",
                markup=True,
            )
        if "low_agreement" in o.flags or "low_snr" in o.flags:
            err.print(
                f"[yellow]check:[/] {o.name} disagrees with its source (top-1 agreement "
                f"{_percent(o.check.agreement if o.check else None)}, SNR {_snr(o)}; thresholds "
                f"{MIN_AGREEMENT:.0%} and {MIN_SNR_DB:g} dB): look before pushing it",
                markup=True,
            )
        if "check_failed" in o.flags:
            err.print(
                f"[yellow]check:[/] {o.name} could not be run against its source", markup=True
            )
    if outcomes and all("checked_on_random_inputs" in o.flags for o in outcomes if o.made):
        err.print(
            "[yellow]note:[/] checked on random inputs; give --eval VAL.npz or --calibration "
            "CAL.npz to check on real ones",
            markup=True,
        )

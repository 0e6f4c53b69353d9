"""How edgeprof writes numbers for people: one place for every table, panel,
markdown or HTML report, so the same p50 always reads the same.

Pure functions of plain values (no rich, no typer). Absent values (None, NaN,
infinities, non-numbers) print as :data:`DASH`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from protocol.result import Interval

DASH = "—"
"""Printed for any value that is absent, null or withheld."""


def number(value: Any) -> float | None:
    """A finite number (bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def sig(value: Any, digits: int = 3) -> str:
    """``value`` with `digits` significant digits, integers from 10**digits up."""
    v = number(value)
    if v is None:
        return DASH
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 10 ** (digits - 1):
        return f"{v:.0f}"
    decimals = digits - 1 - math.floor(math.log10(a))
    return f"{v:.{decimals}f}"


def latency_unit(value_ms: float) -> str:
    """The unit a latency of `value_ms` reads best in: µs below 1 ms, s from 10 s."""
    a = abs(value_ms)
    if 0 < a < 1:
        return "µs"
    return "s" if a >= 10_000 else "ms"


_SCALE = {"µs": 1000.0, "ms": 1.0, "s": 0.001}


def latency(value_ms: Any, *, unit: str | None = None) -> str:
    """A latency given in ms, with its unit: "6.39 µs", "1.23 ms", "12.3 s"."""
    v = number(value_ms)
    if v is None:
        return DASH
    unit = unit or latency_unit(v)
    return f"{sig(v * _SCALE[unit])} {unit}"


def interval(ci: Interval | Sequence[Any] | None, value_ms: Any = None) -> str:
    """A CI given in ms as "[lo–hi]", in the unit `value_ms` reads best in (ms
    without one); "" when absent."""
    if ci is None:
        return ""
    if not isinstance(ci, Interval):
        ci = Interval.read(ci)
        if ci is None:
            return ""
    v = number(value_ms)
    factor = _SCALE[latency_unit(v)] if v is not None else 1.0
    return f"[{sig(ci.lo * factor)}–{sig(ci.hi * factor)}]"


def latency_ci(value_ms: Any, ci: Interval | Sequence[Any] | None) -> str:
    """A latency and its 95 % CI in one unit: "6.39 µs [6.38–6.41]"."""
    text = latency(value_ms)
    bounds = interval(ci, value_ms) if number(value_ms) is not None else ""
    return f"{text} {bounds}" if bounds else text


def size(value: Any) -> str:
    """Bytes as B / KiB / MiB / GiB: "17.1 KiB"."""
    v = number(value)
    if v is None:
        return DASH
    for unit in ("B", "KiB", "MiB"):
        if abs(v) < 1024:
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.2f} GiB"


def mib(value: Any) -> str:
    """A figure already in MiB, one decimal: "50.5"."""
    v = number(value)
    return DASH if v is None else f"{v:.1f}"


def count(value: Any) -> str:
    """An integer count with thousands separators: "3,978"."""
    v = number(value)
    return DASH if v is None else f"{round(v):,}"


def macs(value: Any, complete: bool | None = True) -> str:
    """MACs in millions ("13.1 M"); "≥ 13.1 M" when only part of the model could be
    counted (a lower bound); "unknown" when nothing could be (never "0")."""
    v = number(value)
    if v is None or (v == 0 and complete is False):
        return "unknown"
    text = f"{sig(v / 1e6)} M"
    return f"≥ {text}" if complete is False else text


def percent(fraction: Any, digits: int = 1) -> str:
    """A fraction 0..1 as a percentage: "71.3%"."""
    v = number(fraction)
    return DASH if v is None else f"{v * 100:.{digits}f}%"


def points(delta_fraction: Any) -> str:
    """A change of a fraction in percentage points: "+0.4 pt", "−1.2 pt"."""
    v = number(delta_fraction)
    if v is None:
        return DASH
    text = f"{abs(v) * 100:.1f} pt"
    return ("−" if v < 0 else "+") + text


def ratio(
    value: Any,
    ci: Interval | Sequence[Any] | None = None,
    *,
    lower: str = "faster",
    higher: str = "slower",
    limit: float | None = None,
    undirected: bool = False,
) -> str:
    """A ratio candidate/baseline in words: "1.31× slower [1.25–1.38]", "1.10× faster",
    "same". For a ratio below 1 the factor shown is its inverse (0.5 → "2.00× faster"),
    and so is the interval, so the words and the numbers agree. With ``undirected``
    (the gate's lines), an interval that holds 1 has no direction: the ratio and its
    interval are shown as they are ("1.01× [0.99–1.05]"). With ``limit``, a bound that
    the limit's precision would show equal to the limit gets one more decimal, so the
    line shows on which side of the limit it lies."""
    v = number(value)
    if v is None or v <= 0:
        return DASH
    bounds = Interval.read(ci) if ci is not None and not isinstance(ci, Interval) else ci

    def span(lo: float, hi: float) -> str:
        digits = 2 if limit is None else max(2, limit_digits(limit))
        if limit is not None and any(
            f"{b:.{digits}f}" == f"{limit:.{digits}f}" and abs(b - limit) > 1e-12 for b in (lo, hi)
        ):
            digits += 1
        return f" [{lo:.{digits}f}–{hi:.{digits}f}]"

    if abs(v - 1.0) < 0.005:
        return "same" + (span(bounds.lo, bounds.hi) if bounds is not None else "")
    if undirected and bounds is not None and bounds.lo <= 1.0 <= bounds.hi:
        return f"{v:.2f}×" + span(bounds.lo, bounds.hi)
    if v > 1:
        return f"{v:.2f}× {higher}" + (span(bounds.lo, bounds.hi) if bounds is not None else "")
    text = f"{1 / v:.2f}× {lower}"
    if bounds is not None and bounds.lo > 0:
        text += f" [{1 / bounds.hi:.2f}–{1 / bounds.lo:.2f}]"
    return text


def limit_digits(limit: float) -> int:
    """Decimals that show a ratio limit exactly (1.05 → 2, 1.025 → 3), at most 4."""
    for digits in range(2, 5):
        if abs(round(limit, digits) - limit) < 1e-9:
            return digits
    return 4


def shapes(input_shapes: Mapping[str, Sequence[int]]) -> str:
    """Input shapes as "x 1×3×224×224" (several: "a 1×10, b 1")."""
    parts = []
    for name, dims in input_shapes.items():
        parts.append(f"{name} " + "×".join(str(d) for d in dims) if dims else f"{name} scalar")
    return ", ".join(parts) or DASH


def text(value: Any) -> str:
    """Any value as short text: "—" for None or "", yes/no, 3 significant digits."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return sig(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value) or DASH
    return str(value)


def ago(ts: float | None, now: float | None = None) -> str:
    """'5s ago', '3m ago', '2h ago', '4d ago' (or '-') for an epoch time."""
    import time

    if ts is None:
        return "-"
    delta = max(0.0, (now if now is not None else time.time()) - ts)
    for unit, step in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= step:
            return f"{int(delta // step)}{unit} ago"
    return f"{int(delta)}s ago"


__all__ = [
    "DASH",
    "ago",
    "count",
    "interval",
    "latency",
    "latency_ci",
    "latency_unit",
    "macs",
    "mib",
    "number",
    "percent",
    "points",
    "ratio",
    "shapes",
    "sig",
    "size",
    "text",
]


def runtime_name(name: str | None) -> str | None:
    """A runtime as users name it (``--runtime``, ``hostctl devices``): results say
    ``tflite_runtime`` (the Python module), people write ``tflite-runtime``."""
    return name.replace("_", "-") if name else name

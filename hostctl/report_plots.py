"""The plots of a study, as inline SVG made with matplotlib (``edgeprof[report]``).

Text stays text (``svg.fonttype: none``): the labels can be searched, selected and
read by a screen reader, and the page stays small. Every figure is made with the
object API (:class:`matplotlib.figure.Figure`, no pyplot and its global state) and
a fixed hash salt, so the same results give the same SVG.

Per source model (:class:`hostctl.report.Group`): the latency–accuracy Pareto front
per device, p50 per variant and device with its 95 % CI as error bars, size and gzip
size per variant, latency distributions (ECDF) from the stored samples, the
environment (temperature, CPU frequency) before and after each run; and, for each
result measured in sustained mode, its timeline. A plot without data to draw is a
:class:`Missing` with the reason, never an empty frame.

Pure code (no typer, no rich); matplotlib is imported when a plot is made.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hostctl import format as fmt
from hostctl.report import Group, Row, latency_unit
from protocol.result import Result

ECDF_POINTS = 400
"""An ECDF line is drawn through at most this many quantiles (a run keeps up to
20 000 samples; the SVG would carry every one)."""

_SCALE = {"µs": 1000.0, "ms": 1.0, "s": 0.001}
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WIDTH_IN = 10.0
"""Figure width: 720 pt, which the page scales to its column (1280 px and print)."""


@dataclass(frozen=True)
class Plot:
    """One figure, ready to inline."""

    key: str
    """What it shows: ``pareto``, ``latency``, ``size``, ``ecdf``, ``env``, ``timeline``."""
    title: str
    svg: str
    caption: str


@dataclass(frozen=True)
class Missing:
    """A plot that was not drawn, and why (said on the page instead)."""

    key: str
    title: str
    reason: str


def _text(value: str) -> str:
    """A label matplotlib prints as it is (a ``$`` would start mathtext)."""
    return value.replace("$", r"\$")


@contextmanager
def _style(salt: str) -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": salt,
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
            "font.size": 10.0,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11.0,
            "legend.fontsize": 9.0,
            "legend.frameon": False,
            "text.usetex": False,
        }
    ):
        yield


PANEL_IN = 4.4
"""Width of one panel of a figure of small multiples (a figure is at most 3 wide)."""


def _figure(
    height_in: float, ncols: int = 1, nrows: int = 1, *, width_in: float = WIDTH_IN, **kwargs: Any
) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


_SIZE_ATTRS = re.compile(r'\s(width|height)="[^"]*"')


def _svg(fig: Any, label: str) -> str:
    """The figure as an ``<svg>`` element: no XML prolog, no fixed size (the page scales
    it), a role and a label for screen readers."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    start = text.index("<svg")
    head_end = text.index(">", start)
    head = _SIZE_ATTRS.sub("", text[start:head_end])
    label_attr = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    # Scaled to the page's column, never wider than drawn (a one-panel figure stays small).
    max_px = round(fig.get_figwidth() * 96)
    head += f' class="plot-svg" role="img" aria-label="{label_attr}" style="max-width: {max_px}px"'
    return head + text[head_end:].rstrip()


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def _variants(group: Group) -> list[str]:
    seen: dict[str, None] = {}
    for row in group.rows:
        seen.setdefault(row.variant, None)
    return list(seen)


def _p50(row: Row, scale: float) -> tuple[float, float, float] | None:
    """p50 and the distances to its CI bounds, scaled; None without a p50."""
    latency = row.result.latency
    if not row.result.ok or latency is None or latency.p50 is None:
        return None
    value = latency.p50 * scale
    ci = latency.ci95_p50
    if ci is None:
        return value, 0.0, 0.0
    return value, max(0.0, value - ci.lo * scale), max(0.0, ci.hi * scale - value)


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, n)
    return cols, math.ceil(n / cols)


def _hide_unused(axes: Any, used: int) -> None:
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)


# --------------------------------------------------------------------------- plots


def pareto(group: Group, salt: str) -> Plot | Missing:
    """Top-1 against p50 per device; the variants no other beats on both joined."""
    title = "Latency–accuracy trade-off (Pareto front) per device"
    unit = latency_unit(group.rows)
    scale = _SCALE[unit]
    points: dict[str, list[tuple[float, float, float, float, str]]] = {}
    for row in group.rows:
        p50 = _p50(row, scale)
        acc = row.result.accuracy
        if p50 is None or acc is None or acc.top1 is None:
            continue
        points.setdefault(row.device, []).append((*p50, acc.top1 * 100, row.variant))
    if not points:
        return Missing("pareto", title, "no result has both a latency and a top-1 (give --eval)")
    colors = _colors(_variants(group))
    cols, rows = _grid(len(points))
    with _style(salt + "pareto"):
        fig, axes = _figure(3.4 * rows, cols, rows, width_in=PANEL_IN * cols + 0.6, sharey=True)
        for ax, (device, pts) in zip(axes.flat, sorted(points.items()), strict=False):
            front: list[tuple[float, float]] = []
            best = -math.inf
            for x, _lo, _hi, y, _name in sorted(pts, key=lambda p: (p[0], -p[3])):
                if y > best:
                    front.append((x, y))
                    best = y
            # The front goes on to the slowest variant: nothing right of it is better.
            front.append((max(p[0] + p[2] for p in pts), best))
            ax.step(
                [p[0] for p in front],
                [p[1] for p in front],
                where="post",
                color="#444",
                linestyle="--",
                linewidth=1,
                label="Pareto front",
            )
            for i, (x, lo, hi, y, name) in enumerate(sorted(pts)):
                ax.errorbar(
                    [x], [y], xerr=[[lo], [hi]], fmt="o", color=colors[name], capsize=3, ms=6
                )
                # Neighbours' labels alternate above and below: close points stay legible.
                ax.annotate(
                    _text(name),
                    (x, y),
                    textcoords="offset points",
                    xytext=(5, 4 if i % 2 == 0 else -13),
                    fontsize=9,
                )
            ax.set_title(_text(device))
            ax.set_xlabel(f"p50 latency ({unit}), 95% CI")
            ax.set_ylabel("top-1 (%)")
            ax.margins(x=0.15, y=0.12)
        axes.flat[0].legend(loc="best")
        _hide_unused(axes, len(points))
        svg = _svg(fig, title)
    caption = (
        "Each point is one variant on one device: its p50 latency (error bar: 95% CI) and "
        "its top-1 measured on the device. The dashed line joins the variants that no "
        "other variant beats on both latency and accuracy."
    )
    return Plot("pareto", title, svg, caption)


def latency(group: Group, salt: str) -> Plot | Missing:
    """p50 per variant, one bar per device, with the 95 % CI as error bars."""
    title = "p50 latency per variant and device (95% CI)"
    unit = latency_unit(group.rows)
    scale = _SCALE[unit]
    variants, devices = _variants(group), group.devices
    values = {(r.variant, r.device): _p50(r, scale) for r in group.rows}
    if not any(values.values()):
        return Missing("latency", title, "no result has a latency")
    colors = _colors(devices)
    width = 0.8 / max(1, len(devices))
    with _style(salt + "latency"):
        fig, axes = _figure(3.6)
        ax = axes[0][0]
        for j, device in enumerate(devices):
            xs, ys, lo, hi = [], [], [], []
            for i, variant in enumerate(variants):
                value = values.get((variant, device))
                if value is None:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(value[0])
                lo.append(value[1])
                hi.append(value[2])
            ax.bar(
                xs,
                ys,
                width * 0.9,
                yerr=[lo, hi],
                capsize=3,
                color=colors[device],
                label=_text(device),
            )
        ax.set_xticks(range(len(variants)), labels=[_text(v) for v in variants])
        ax.set_ylabel(f"p50 latency ({unit})")
        ax.legend(title="device", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        svg = _svg(fig, title)
    caption = "Bars: the p50 of each variant on each device; error bars: its 95% CI."
    return Plot("latency", title, svg, caption)


def size(group: Group, salt: str) -> Plot | Missing:
    """File size and gzip size per variant (KiB)."""
    title = "Model size per variant (file and gzipped)"
    sizes: dict[str, tuple[float | None, float | None]] = {}
    for row in group.rows:
        model = row.result.model
        if model.size_bytes is not None and row.variant not in sizes:
            gz = model.gzip_bytes / 1024 if model.gzip_bytes is not None else None
            sizes[row.variant] = (model.size_bytes / 1024, gz)
    if not sizes:
        return Missing("size", title, "no result names its model's size")
    names = list(sizes)
    with _style(salt + "size"):
        fig, axes = _figure(3.2)
        ax = axes[0][0]
        files = [sizes[n][0] or 0.0 for n in names]
        ax.bar([i - 0.2 for i in range(len(names))], files, 0.38, color="#1f77b4", label="file")
        gzipped = [(i, sizes[n][1]) for i, n in enumerate(names) if sizes[n][1] is not None]
        if gzipped:
            ax.bar(
                [i + 0.2 for i, _ in gzipped],
                [v for _, v in gzipped],
                0.38,
                color="#9ecae1",
                label="gzip -6",
            )
        for i, value in enumerate(files):
            ax.annotate(
                f"{value:.1f}",
                (i - 0.2, value),
                textcoords="offset points",
                xytext=(0, 2),
                ha="center",
                fontsize=8,
            )
        ax.set_xticks(range(len(names)), labels=[_text(n) for n in names])
        ax.set_ylabel("KiB")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        svg = _svg(fig, title)
    caption = (
        "The model file and the same file gzipped: pruned zeros cost as much in the file "
        "as any weight, but compress away."
    )
    return Plot("size", title, svg, caption)


def _log_axis(ax: Any, low: float, high: float) -> None:
    """A log-scaled x axis from ``low`` to ``high`` labelled in plain numbers: 1, 2, 5,
    10, 20, … over up to two decades, 1, 10, 100, … over more (matplotlib's default
    labels every minor tick "3×10⁰", and they collide; so would 1-2-5 over four)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    subs = (1.0, 2.0, 5.0) if decades <= 2.0 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _ecdf_points(values: Sequence[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(values)
    n = len(ordered)
    if n <= ECDF_POINTS:
        return ordered, [(i + 1) / n for i in range(n)]
    idx = [round(k * (n - 1) / (ECDF_POINTS - 1)) for k in range(ECDF_POINTS)]
    return [ordered[i] for i in idx], [(i + 1) / n for i in idx]


def ecdf(group: Group, salt: str) -> Plot | Missing:
    """The distribution of every run's latencies (from the stored samples), per device."""
    title = "Latency distribution (ECDF of the stored samples) per device"
    unit = latency_unit(group.rows)
    scale = _SCALE[unit] / 1e6  # samples are ns
    lines: dict[str, list[tuple[str, list[float]]]] = {}
    for row in group.rows:
        samples = row.result.samples() if row.result.ok else None
        if samples:
            lines.setdefault(row.device, []).append((row.variant, [s * scale for s in samples]))
    if not lines:
        return Missing("ecdf", title, "no result kept its samples")
    colors = _colors(_variants(group))
    cols, rows = _grid(len(lines))
    with _style(salt + "ecdf"):
        fig, axes = _figure(3.6 * rows, cols, rows, width_in=PANEL_IN * cols + 1.4, sharey=True)
        for ax, (device, series) in zip(axes.flat, sorted(lines.items()), strict=False):
            low, high = math.inf, 0.0
            for name, values in series:
                xs, ys = _ecdf_points(values)
                ax.step(xs, ys, where="post", color=colors[name], label=_text(name))
                ordered = sorted(values)
                low = min(low, ordered[0])
                high = max(high, ordered[min(len(ordered) - 1, int(0.999 * len(ordered)))])
            # Up to the slowest p99.9 (a single 10 ms stall would squash the rest); on a
            # log scale when the distributions span more than a decade, so the body of
            # each and its tail show in one view.
            log = high > 10 * low
            if log:
                _log_axis(ax, low * 0.9, high * 1.1)
            ax.set_xlim(low * 0.9, high * 1.1)
            ax.set_title(_text(device))
            scale_note = "log scale, " if log else ""
            ax.set_xlabel(f"latency ({unit}, {scale_note}to the slowest p99.9)")
            ax.set_ylabel("fraction of runs")
        labels: dict[str, Any] = {}
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                labels.setdefault(label, handle)
        fig.legend(list(labels.values()), list(labels), loc="outside right upper")
        _hide_unused(axes, len(lines))
        svg = _svg(fig, title)
    caption = (
        "For each variant, the fraction of timed runs at or below each latency. A line to "
        "the left is faster; a long tail to the right is jitter."
    )
    return Plot("ecdf", title, svg, caption)


def _env_pair(result: Result, key: str) -> tuple[float | None, float | None]:
    env = result.section("env")
    before, after = env.get("before"), env.get("after")

    def read(snapshot: Any) -> float | None:
        if not isinstance(snapshot, Mapping):
            return None
        value = snapshot.get(key)
        if isinstance(value, Mapping):
            value = value.get("mean")
        return fmt.number(value)

    if key == "temp_c":
        return (
            read(before) if read(before) is not None else result.env.temp_c_start,
            read(after) if read(after) is not None else result.env.temp_c_end,
        )
    return read(before), read(after) if read(after) is not None else result.env.cpu_freq_mhz


def environment(group: Group, salt: str) -> Plot | Missing:
    """CPU temperature and frequency before and after each run."""
    title = "Environment before and after each run (temperature, CPU frequency)"
    runs = [(f"{r.variant} @ {r.device}", r.result) for r in group.rows if r.result.ok]
    temps = [(label, *_env_pair(res, "temp_c")) for label, res in runs]
    freqs = [(label, *_env_pair(res, "cpu_freq_mhz")) for label, res in runs]
    has_temp = any(a is not None or b is not None for _, a, b in temps)
    has_freq = any(a is not None or b is not None for _, a, b in freqs)
    if not has_temp and not has_freq:
        return Missing("env", title, "no run recorded a temperature or a CPU frequency")
    with _style(salt + "env"):
        fig, axes = _figure(3.4, 2, 1)
        for ax, series, what, present in (
            (axes[0][0], temps, "CPU temperature (°C)", has_temp),
            (axes[0][1], freqs, "CPU frequency (MHz)", has_freq),
        ):
            ax.set_title(what)
            if not present:
                ax.text(
                    0.5,
                    0.5,
                    "no reading on these devices",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="#666",
                )
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            for i, (_label, before, after) in enumerate(series):
                ys = [v for v in (before, after) if v is not None]
                ax.plot([i - 0.15, i + 0.15][: len(ys)], ys, color="#999", linewidth=1)
                if before is not None:
                    ax.plot([i - 0.15], [before], "o", color="#1f77b4", ms=5)
                if after is not None:
                    ax.plot([i + 0.15], [after], "s", color="#d62728", ms=5)
            ax.plot([], [], "o", color="#1f77b4", label="before")
            ax.plot([], [], "s", color="#d62728", label="after")
            ax.set_xticks(
                range(len(series)),
                labels=[_text(s[0]) for s in series],
                fontsize=8,
                rotation=35,
                ha="right",
                rotation_mode="anchor",
            )
            ax.legend(loc="best")
        svg = _svg(fig, title)
    caption = (
        "Circles: at the start of each run; squares: at its end. A rise in temperature "
        "or a drop in frequency during a run means the device was heating or throttling."
    )
    return Plot("env", title, svg, caption)


def _timeline_rows(result: Result) -> list[Mapping[str, Any]]:
    rows = result.raw.get("timeline")
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, Mapping) and fmt.number(r.get("t_s")) is not None]


def timeline(row: Row, salt: str) -> Plot | None:
    """A sustained-mode result's per-block p50/p90 and its temperature and frequency
    over time, with the onset of throttling; None for a result without a timeline."""
    points = _timeline_rows(row.result)
    if not points:
        return None
    title = f"Sustained run: {row.variant} on {row.device}"
    unit = latency_unit([row])
    scale = _SCALE[unit]
    t = [float(p["t_s"]) for p in points]

    def series(key: str, factor: float = 1.0) -> list[float]:
        return [
            (fmt.number(p.get(key)) or math.nan) * factor
            if fmt.number(p.get(key)) is not None
            else math.nan
            for p in points
        ]

    began = fmt.number(row.result.section("sustained").get("throttle_began_s"))
    with _style(salt + "timeline" + row.variant + row.device):
        fig, axes = _figure(4.6, 1, 2, sharex=True)
        top, bottom = axes[0][0], axes[1][0]
        top.plot(t, series("p50_ms", scale), marker="o", ms=3, label="p50")
        top.plot(t, series("p90_ms", scale), marker=".", ms=3, label="p90", alpha=0.7)
        top.set_ylabel(f"latency ({unit})")
        top.legend(loc="upper left")
        temps, freqs = series("temp_c"), series("cpu_freq_mhz")
        if any(not math.isnan(v) for v in temps):
            bottom.plot(t, temps, color="#d62728", label="temperature (°C)")
        bottom.set_ylabel("°C")
        twin = bottom.twinx()
        if any(not math.isnan(v) for v in freqs):
            twin.plot(t, freqs, color="#2ca02c", linestyle="--", label="CPU MHz")
        twin.set_ylabel("MHz")
        twin.grid(False)
        handles = bottom.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        if handles:
            bottom.legend(handles=handles, loc="lower left")
        if began is not None:
            for ax in (top, bottom):
                ax.axvline(began, color="#444", linestyle=":", linewidth=1)
            top.annotate(
                "throttling began",
                (began, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=8,
            )
        bottom.set_xlabel("time into the steady state (s)")
        svg = _svg(fig, title)
    caption = (
        "Each point is one block of the sustained run. The dotted line marks when "
        "throttling began, if it did."
    )
    return Plot("timeline", title, svg, caption)


def group_plots(group: Group, salt: str) -> list[Plot | Missing]:
    """Every plot of one source model, in page order (timelines last)."""
    out: list[Plot | Missing] = [
        pareto(group, salt),
        latency(group, salt),
        size(group, salt),
        ecdf(group, salt),
        environment(group, salt),
    ]
    for row in group.rows:
        plot = timeline(row, salt)
        if plot is not None:
            out.append(plot)
    return out


__all__ = [
    "ECDF_POINTS",
    "Missing",
    "Plot",
    "ecdf",
    "environment",
    "group_plots",
    "latency",
    "pareto",
    "size",
    "timeline",
]

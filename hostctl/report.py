"""The compression study table: results grouped under their source model, one row
per variant × device, each set against the fp32 source on the same device.

This is the table model-compression papers publish (accuracy / size / latency per
setup: NQ, F16, BLQ, FIQ, PRN, PRQ), plus what the pruning papers report beside it —
connections removed against time saved — and error bars: the p50's 95 % CI, the
change of top-1 against fp32 with its CI (paired on per-sample correctness when both
were evaluated on the same data) and the time ratio with its CI, both from
:mod:`profiler.compare`, the statistics the regression gate uses.

A result belongs to the source its ``model.variant.source_sha256`` names (written by
the host that sent the file: ``hostctl.provenance``); a result without a variant is
its own source, and one whose file *is* a source (same SHA-256) is that source's fp32.
Within a cell (variant file × device × runtime) the newest ok result is shown; every
ok run of the cell goes into the comparisons.

Pure code (no typer, no rich, no plotting): :func:`study` builds the groups,
:func:`to_markdown`, :func:`to_csv` and :func:`to_latex` write them;
``hostctl.report_html`` makes the HTML page from the same groups.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hostctl import format as fmt
from protocol.result import Result, ResultError, read_result

KIND_ORDER = ("fp32", "f16", "blq", "wo8", "fiq", "prn", "prq")
"""Variant kinds in the order rows are listed (``modelkit.variants.KINDS``; not imported:
that package needs the variant makers)."""

BASELINE_KIND = "fp32"
BASELINE = "baseline"
"""What the comparison cells of the fp32 row say."""


@dataclass(frozen=True)
class Change:
    """A comparison against fp32: an estimate, its 95 % CI (None: no interval), and how
    it was obtained (or why there is no interval)."""

    estimate: float
    ci95: tuple[float, float] | None
    method: str


@dataclass(frozen=True)
class Row:
    """One cell of the study: a variant file on one device (and runtime)."""

    source: str
    """SHA-256 of the source model."""
    variant: str
    """Display tag: the kind, with the target sparsity of a pruned kind (``prn50``), or
    the model's name when the result is not a variant."""
    kind: str | None
    result: Result
    """The newest ok result of the cell (the newest result when none is ok)."""
    runs: tuple[Result, ...]
    """Every ok result of the cell, oldest first."""
    top1_change: Change | None = None
    """Variant top-1 minus fp32 top-1 (a fraction), on the same device."""
    time_ratio: Change | None = None
    """Variant p50 / fp32 p50 on the same device."""
    connections_removed: float | None = None
    """1 − non-zero weights / the fp32's (the pruning papers' "connections removed")."""
    is_baseline: bool = False

    @property
    def device(self) -> str:
        return self.result.device.id or fmt.DASH

    @property
    def runtime(self) -> str:
        runtime = self.result.runtime
        return (
            " ".join(p for p in (fmt.runtime_name(runtime.name), runtime.version) if p) or fmt.DASH
        )

    @property
    def nonzeros(self) -> int | None:
        model = self.result.model
        if model.params is None:
            return None
        return round(model.params * (1.0 - (model.sparsity or 0.0)))

    @property
    def energy(self) -> tuple[float, tuple[float, float] | None] | None:
        """mJ per inference and its 95 % CI, where the device measured its power."""
        section = self.result.section("energy")
        value = fmt.number(section.get("mj_per_inference"))
        if value is None or not self.result.ok:
            return None
        ci = section.get("ci95")
        bounds = None
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            lo, hi = fmt.number(ci[0]), fmt.number(ci[1])
            bounds = (lo, hi) if lo is not None and hi is not None else None
        return value, bounds

    @property
    def time_saved(self) -> Change | None:
        """1 − time ratio: the fraction of the fp32's time the variant saves."""
        ratio = self.time_ratio
        if ratio is None:
            return None
        ci = (1.0 - ratio.ci95[1], 1.0 - ratio.ci95[0]) if ratio.ci95 else None
        return Change(1.0 - ratio.estimate, ci, ratio.method)

    @property
    def flags(self) -> tuple[str, ...]:
        """The result's flags, the error code of an error, and what the recipe says
        a reader must know (``random_calibration``)."""
        out: list[str] = []
        if not self.result.ok:
            out.append(f"error: {self.result.error.code if self.result.error else 'error'}")
        out.extend(self.result.flags)
        variant = self.result.model.variant
        if variant is not None and variant.kind == "fiq":
            options = variant.recipe.get("options")
            origin = options.get("calibration") if isinstance(options, Mapping) else None
            if origin == "random" or variant.recipe.get("calibration_sha256") is None:
                out.append("random_calibration")
        return tuple(out)


@dataclass
class Group:
    """The rows of one source model."""

    source: str
    name: str
    rows: list[Row] = field(default_factory=list)

    @property
    def devices(self) -> list[str]:
        return sorted({row.device for row in self.rows})

    @property
    def results(self) -> list[Result]:
        """Every result of the group (each cell's runs, or its error result)."""
        out: list[Result] = []
        for row in self.rows:
            out.extend(row.runs or (row.result,))
        return out


def read_all(docs: Iterable[Mapping[str, Any] | Result]) -> list[Result]:
    """The readable results of ``docs`` (a study has no row for what is not one)."""
    out: list[Result] = []
    for doc in docs:
        if isinstance(doc, Result):
            out.append(doc)
            continue
        try:
            out.append(read_result(doc))
        except ResultError:
            continue
    return out


def _source_of(result: Result) -> str | None:
    variant = result.model.variant
    if variant is not None and variant.source_sha256:
        return variant.source_sha256
    return result.model.sha256


def _target_sparsity(result: Result) -> float | None:
    variant = result.model.variant
    if variant is None:
        return None
    options = variant.recipe.get("options")
    if not isinstance(options, Mapping):
        return None
    prune = options.get("prune")
    value = prune.get("sparsity") if isinstance(prune, Mapping) else options.get("sparsity")
    return fmt.number(value)


def _kind(result: Result, source: str, studied: bool) -> str | None:
    """The variant kind; a plain result of the source file is the fp32 of a study
    (``studied``: the source has variants), a plain model otherwise."""
    variant = result.model.variant
    if variant is not None and variant.kind:
        return variant.kind
    return BASELINE_KIND if studied and result.model.sha256 == source else None


def _tag(result: Result, kind: str | None) -> str:
    if kind is None:
        return result.model.name or (result.model.sha256 or "")[:12] or fmt.DASH
    sparsity = _target_sparsity(result)
    return f"{kind}{round(sparsity * 100):d}" if kind in ("prn", "prq") and sparsity else kind


def _order(row: Row) -> tuple[Any, ...]:
    kind = row.kind or ""
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return (rank, _target_sparsity(row.result) or 0.0, row.variant, row.device, row.runtime)


def _source_name(source: str, results: Sequence[Result]) -> str:
    """The source's file name: a result of the source file itself, else a variant's
    name without its tag (``digits_cnn.fiq.tflite`` → ``digits_cnn.tflite``)."""
    for result in results:
        if result.model.sha256 == source and result.model.variant is None and result.model.name:
            return result.model.name
    for result in results:
        name, variant = result.model.name, result.model.variant
        if name and variant is not None and variant.kind:
            tag = _tag(result, variant.kind)
            head, _dot, ext = name.rpartition(".")
            stem, _sep, last = head.rpartition(".")
            if stem and last == tag:
                return f"{stem}.{ext}"
            return name
    return f"source {source[:12]}"


def _cells(results: Sequence[Result]) -> dict[tuple[str, str, str, str], list[Result]]:
    """Results by (source, file, device, runtime). A result that names no runtime (an
    error before the runtime was chosen) joins a cell of its file and device."""
    cells: dict[tuple[str, str, str, str], list[Result]] = {}
    unnamed: list[tuple[tuple[str, str, str], Result]] = []
    for result in results:
        source = _source_of(result)
        if source is None:
            continue
        where = (source, result.model.sha256 or result.model.name or "", result.device.id or "")
        if result.runtime.name is None:
            unnamed.append((where, result))
            continue
        cells.setdefault((*where, result.runtime.name), []).append(result)
    for where, result in unnamed:
        key = next((k for k in cells if k[:3] == where), (*where, ""))
        cells.setdefault(key, []).append(result)
    return cells


def _newest(results: Sequence[Result]) -> Result:
    ok = [r for r in results if r.ok]
    pool = ok or list(results)
    return max(enumerate(pool), key=lambda p: (p[1].created_at or "", p[0]))[1]


def study(docs: Iterable[Mapping[str, Any] | Result]) -> list[Group]:
    """The study: one :class:`Group` per source model (in the order their first result
    was created), its rows in kind order, each compared with the fp32 on its device."""
    results = sorted(read_all(docs), key=lambda r: r.created_at or "")
    groups: dict[str, Group] = {}
    by_source: dict[str, list[Result]] = {}
    for result in results:
        source = _source_of(result)
        if source is not None:
            by_source.setdefault(source, []).append(result)
    for (source, _sha, _device, _runtime), cell in _cells(results).items():
        group = groups.setdefault(source, Group(source, _source_name(source, by_source[source])))
        shown = _newest(cell)
        studied = any(r.model.variant is not None for r in by_source[source])
        kind = _kind(shown, source, studied)
        runs = tuple(r for r in cell if r.ok)
        group.rows.append(
            Row(source, _tag(shown, kind), kind, shown, runs, is_baseline=kind == BASELINE_KIND)
        )
    out = []
    for group in groups.values():
        group.rows = [_compared(row, group.rows) for row in sorted(group.rows, key=_order)]
        out.append(group)
    return out


def _baseline_of(row: Row, rows: Sequence[Row]) -> Row | None:
    for other in rows:
        if (
            other.is_baseline
            and other.device == row.device
            and other.result.runtime.name == row.result.runtime.name
        ):
            return other
    return None


def _compared(row: Row, rows: Sequence[Row]) -> Row:
    base = _baseline_of(row, rows)
    if row.is_baseline or base is None or not row.runs or not base.runs:
        return row
    from dataclasses import replace

    return replace(
        row,
        top1_change=_top1_change(base, row),
        time_ratio=_time_ratio(base, row),
        connections_removed=_removed(base, row),
    )


def _top1_change(base: Row, row: Row) -> Change | None:
    from profiler.compare import compare_accuracy

    comparison = compare_accuracy(base.runs, row.runs)
    if comparison.estimate is None:
        return None
    ci = comparison.ci95
    return Change(
        -comparison.estimate, (-ci[1], -ci[0]) if ci else None, comparison.note or comparison.method
    )


def _time_ratio(base: Row, row: Row) -> Change | None:
    from profiler.compare import compare_latency

    comparison = compare_latency(base.runs, row.runs, percentile="p50")
    if comparison.estimate is not None:
        return Change(comparison.estimate, comparison.ci95, comparison.method)
    # Runs the gate leaves out (throttled, drifting) still have a p50: the plain ratio,
    # without an interval, and the reason there is none.
    a, b = base.result.latency, row.result.latency
    if a is None or b is None or not a.p50 or not b.p50:
        return None
    excluded = sorted(
        {reason for side in comparison.excluded.values() for reason in side if reason}
    )
    why = f"runs flagged {', '.join(excluded)}" if excluded else (comparison.note or "no interval")
    return Change(b.p50 / a.p50, None, f"ratio of the p50s, no interval ({why})")


def _removed(base: Row, row: Row) -> float | None:
    a, b = base.nonzeros, row.nonzeros
    if not a or b is None:
        return None
    return 1.0 - b / a


def with_variants(
    selected: Sequence[Mapping[str, Any]], candidates: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``selected`` plus every candidate that is a variant of one of their models (its
    ``model.variant.source_sha256`` is a selected model's SHA-256 or source), oldest
    first: selecting a source model selects its study."""
    chosen = read_all(selected)
    sources = {s for r in chosen for s in (r.model.sha256, _source_of(r)) if s}
    seen = {(r.job_id, r.device.id) for r in chosen}
    out = [dict(d) for d in selected]
    for doc, result in ((d, r) for d in candidates for r in read_all([d])):
        if (result.job_id, result.device.id) in seen:
            continue
        variant = result.model.variant
        if variant is not None and variant.source_sha256 in sources:
            out.append(dict(doc))
            seen.add((result.job_id, result.device.id))
    return sorted(out, key=lambda d: str(d.get("created_at") or ""))


def _names(result: Result) -> set[str]:
    """What ``--model`` may call a result: its file name, its stem, and for a variant
    the same without the variant's tag (``digits_cnn.fiq.tflite`` → ``digits_cnn``)."""
    name = result.model.name
    if not name:
        return set()
    names = {name, result.model.stem or name}
    variant = result.model.variant
    if variant is not None and variant.kind:
        head, dot, ext = name.rpartition(".")
        stem, _sep, tag = head.rpartition(".")
        if dot and stem and tag == _tag(result, variant.kind):
            names |= {f"{stem}.{ext}", stem}
    return names


def select_model(docs: Sequence[Mapping[str, Any]], model: str) -> list[dict[str, Any]]:
    """The results of ``model`` — a file name with or without its extension, a source's
    name its variants are named after, or (4+ hex digits) a SHA-256 prefix — and every
    variant of the sources they belong to."""
    wanted = model.lower()
    is_sha = len(wanted) >= 4 and all(c in "0123456789abcdef" for c in wanted)
    picked = []
    for doc, result in ((d, r) for d in docs for r in read_all([d])):
        sha = (result.model.sha256 or "").lower()
        if model in _names(result) or (is_sha and sha.startswith(wanted)):
            picked.append(doc)
    return with_variants(picked, docs) if picked else []


# --------------------------------------------------------------------------- cells


COLUMNS: tuple[tuple[str, str], ...] = (
    ("variant", "variant"),
    ("device", "device"),
    ("runtime", "runtime"),
    ("top1", "top-1"),
    ("top1_change", "Δ top-1 vs fp32 [95% CI]"),
    ("size", "size"),
    ("gzip", "gzip"),
    ("params", "params"),
    ("nonzeros", "non-zeros"),
    ("macs", "MACs"),
    ("p50", "p50 ms [95% CI]"),
    ("p90", "p90 ms"),
    ("peak", "peak MB"),
    ("energy", "mJ/inference [95% CI]"),
    ("removed", "connections removed"),
    ("saved", "time saved [95% CI]"),
    ("speed", "vs fp32"),
    ("flags", "flags"),
)
"""Keys and titles of the study table, in order (every format uses them)."""

NUMERIC = frozenset(
    {
        "top1",
        "top1_change",
        "size",
        "gzip",
        "params",
        "nonzeros",
        "macs",
        "p50",
        "p90",
        "peak",
        "energy",
        "removed",
        "saved",
        "speed",
    }
)
"""Columns right-aligned and sorted as numbers."""

OPTIONAL = frozenset({"energy"})
"""Columns shown only when some row has a figure for them (energy: only boards that
measure their power have one)."""


def visible_columns(rows: Sequence[Row]) -> list[str]:
    """The keys of :data:`COLUMNS` a table of ``rows`` shows."""
    present = {"energy": any(row.energy is not None for row in rows)}
    return [key for key, _ in COLUMNS if key not in OPTIONAL or present.get(key)]


def _signed(value: float, scale: float, digits: int) -> str:
    text = f"{abs(value) * scale:.{digits}f}"
    return ("−" if value < 0 and text.strip("0.") else "+") + text


def _change(change: Change | None, unit: str, fallback: str) -> str:
    """``+0.4 pt [−0.6, +1.4]``: an estimate in percentage points or percent, its CI
    in the same unit."""
    if change is None:
        return fallback
    text = _signed(change.estimate, 100, 1) + (unit if unit == "%" else f" {unit}")
    if change.ci95 is not None:
        lo, hi = change.ci95
        text += f" [{_signed(lo, 100, 1)}, {_signed(hi, 100, 1)}]"
    return text


def _energy(row: Row) -> str:
    energy = row.energy
    if energy is None:
        return fmt.DASH
    value, ci = energy
    return fmt.sig(value) + (f" [{fmt.sig(ci[0])}–{fmt.sig(ci[1])}]" if ci else "")


def latency_unit(groups_or_rows: Sequence[Row]) -> str:
    """The unit the latencies of these rows read best in (their median p50's): one unit
    per table, so a column reads at a glance."""
    p50s = sorted(
        r.result.latency.p50 for r in groups_or_rows if r.result.latency and r.result.latency.p50
    )
    return fmt.latency_unit(p50s[len(p50s) // 2]) if p50s else "ms"


_SCALE = {"µs": 1000.0, "ms": 1.0, "s": 0.001}


def titles(unit: str = "ms") -> dict[str, str]:
    """Column titles, the latency columns in ``unit``."""
    return {key: title.replace(" ms", f" {unit}") for key, title in COLUMNS}


def cells(row: Row, unit: str = "ms") -> dict[str, str]:
    """Every column of ``row`` as text for people; latencies in ``unit`` (see
    :func:`latency_unit`)."""
    result, model, latency = row.result, row.result.model, row.result.latency
    baseline = BASELINE if row.is_baseline else fmt.DASH
    scale = _SCALE[unit]

    def ms(value: float | None) -> str:
        return fmt.sig(value * scale) if value is not None else fmt.DASH

    p50 = ms(latency.p50 if latency else None)
    if latency and latency.p50 is not None and latency.ci95_p50 is not None:
        p50 += f" [{ms(latency.ci95_p50.lo)}–{ms(latency.ci95_p50.hi)}]"
    change = row.top1_change
    saved = row.time_saved
    ratio = row.time_ratio
    return {
        "variant": row.variant,
        "device": row.device,
        "runtime": row.runtime,
        "top1": fmt.percent(result.accuracy.top1, 2)
        if result.accuracy and result.accuracy.top1 is not None
        else fmt.DASH,
        "top1_change": _change(change, "pt", baseline),
        "size": fmt.size(model.size_bytes),
        "gzip": fmt.size(model.gzip_bytes),
        "params": fmt.count(model.params),
        "nonzeros": fmt.count(row.nonzeros),
        "macs": fmt.macs(model.macs, model.macs_complete)
        if model.macs is not None or model.macs_complete is False
        else fmt.DASH,
        "p50": p50,
        "p90": ms(latency.p90 if latency else None),
        "peak": fmt.mib(result.memory.peak_rss),
        "energy": _energy(row),
        "removed": fmt.percent(row.connections_removed)
        if row.connections_removed is not None
        else baseline,
        "saved": _change(saved, "%", baseline),
        "speed": fmt.ratio(ratio.estimate, ratio.ci95) if ratio else baseline,
        "flags": " ".join(row.flags),
    }


def sort_keys(row: Row) -> dict[str, float | None]:
    """The raw number each numeric column sorts by (None: sorts last)."""
    result, model, latency = row.result, row.result.model, row.result.latency
    return {
        "top1": result.accuracy.top1 if result.accuracy else None,
        "top1_change": row.top1_change.estimate if row.top1_change else None,
        "size": model.size_bytes,
        "gzip": model.gzip_bytes,
        "params": model.params,
        "nonzeros": row.nonzeros,
        "macs": model.macs,
        "p50": latency.p50 if latency else None,
        "p90": latency.p90 if latency else None,
        "peak": result.memory.peak_rss,
        "energy": row.energy[0] if row.energy else None,
        "removed": row.connections_removed,
        "saved": row.time_saved.estimate if row.time_saved else None,
        "speed": row.time_ratio.estimate if row.time_ratio else None,
    }


def group_title(group: Group) -> str:
    """``digits_cnn.tflite (source 3093585a011d)``."""
    return f"{group.name} (source {group.source[:12]})"


# --------------------------------------------------------------------------- formats


def _md(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def to_markdown(groups: Sequence[Group]) -> str:
    """One GitHub-flavoured markdown table per source model."""
    parts = []
    for group in groups:
        unit = latency_unit(group.rows)
        names, keys = titles(unit), visible_columns(group.rows)
        lines = [f"### {_md(group_title(group))}", ""]
        lines.append("| " + " | ".join(names[key] for key in keys) + " |")
        lines.append("|" + "".join("---:|" if key in NUMERIC else "---|" for key in keys))
        for row in group.rows:
            text = cells(row, unit)
            lines.append("| " + " | ".join(_md(text[key]) for key in keys) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) if parts else "no results to tabulate\n"


CSV_COLUMNS = (
    "source_sha256",
    "source",
    "variant",
    "kind",
    "model",
    "sha256",
    "device",
    "runtime",
    "job_id",
    "status",
    "runs",
    "top1",
    "top1_change",
    "top1_change_lo",
    "top1_change_hi",
    "size_bytes",
    "gzip_bytes",
    "params",
    "nonzeros",
    "macs",
    "p50_ms",
    "p50_ci_lo",
    "p50_ci_hi",
    "p90_ms",
    "peak_rss_mb",
    "mj_per_inference",
    "connections_removed",
    "time_ratio",
    "time_ratio_lo",
    "time_ratio_hi",
    "time_saved",
    "flags",
)
"""Columns of ``--format csv``: raw numbers (fractions, bytes, ms), one row per cell."""


def _csv_row(group: Group, row: Row) -> dict[str, Any]:
    result, model, latency = row.result, row.result.model, row.result.latency
    change, ratio = row.top1_change, row.time_ratio
    return {
        "source_sha256": group.source,
        "source": group.name,
        "variant": row.variant,
        "kind": row.kind,
        "model": model.name,
        "sha256": model.sha256,
        "device": result.device.id,
        "runtime": row.runtime,
        "job_id": result.job_id,
        "status": result.status,
        "runs": len(row.runs),
        "top1": result.accuracy.top1 if result.accuracy else None,
        "top1_change": change.estimate if change else None,
        "top1_change_lo": change.ci95[0] if change and change.ci95 else None,
        "top1_change_hi": change.ci95[1] if change and change.ci95 else None,
        "size_bytes": model.size_bytes,
        "gzip_bytes": model.gzip_bytes,
        "params": model.params,
        "nonzeros": row.nonzeros,
        "macs": model.macs,
        "p50_ms": latency.p50 if latency else None,
        "p50_ci_lo": latency.ci95_p50.lo if latency and latency.ci95_p50 else None,
        "p50_ci_hi": latency.ci95_p50.hi if latency and latency.ci95_p50 else None,
        "p90_ms": latency.p90 if latency else None,
        "peak_rss_mb": result.memory.peak_rss,
        "mj_per_inference": row.energy[0] if row.energy else None,
        "connections_removed": row.connections_removed,
        "time_ratio": ratio.estimate if ratio else None,
        "time_ratio_lo": ratio.ci95[0] if ratio and ratio.ci95 else None,
        "time_ratio_hi": ratio.ci95[1] if ratio and ratio.ci95 else None,
        "time_saved": row.time_saved.estimate if row.time_saved else None,
        "flags": " ".join(row.flags),
    }


def rows_json(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Every cell as a JSON-ready object of :data:`CSV_COLUMNS` (raw numbers)."""
    return [_csv_row(group, row) for group in groups for row in group.rows]


def to_csv(groups: Sequence[Group]) -> str:
    """Every cell of every group as one csv row of :data:`CSV_COLUMNS`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for group in groups:
        for row in group.rows:
            writer.writerow({k: "" if v is None else v for k, v in _csv_row(group, row).items()})
    return out.getvalue()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "−": "--",
    "–": "--",
    "×": r"$\times$",
    "Δ": r"$\Delta$",
    "µ": r"$\mu$",
    "≥": r"$\geq$",
    "—": "---",
}

LATEX_COLUMNS = (
    "variant",
    "device",
    "top1",
    "top1_change",
    "size",
    "gzip",
    "nonzeros",
    "macs",
    "p50",
    "peak",
    "removed",
    "saved",
)
"""The columns a paper's table has room for (the csv has every figure)."""


def latex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX table cell (pdflatex: no raw Unicode symbols)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(groups: Sequence[Group]) -> str:
    """One ``booktabs`` table per source model (``\\usepackage{booktabs}``)."""
    parts = []
    for group in groups:
        unit = latency_unit(group.rows)
        names = titles(unit)
        spec = "".join("r" if key in NUMERIC else "l" for key in LATEX_COLUMNS)
        lines = [
            "\\begin{table}",
            "\\centering",
            f"\\caption{{{latex_escape(group_title(group))}}}",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            " & ".join(latex_escape(names[key]) for key in LATEX_COLUMNS) + " \\\\",
            "\\midrule",
        ]
        for row in group.rows:
            text = cells(row, unit)
            lines.append(" & ".join(latex_escape(text[key]) for key in LATEX_COLUMNS) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) if parts else "% no results to tabulate\n"


__all__ = [
    "COLUMNS",
    "CSV_COLUMNS",
    "KIND_ORDER",
    "Change",
    "Group",
    "Row",
    "cells",
    "group_title",
    "latency_unit",
    "latex_escape",
    "read_all",
    "rows_json",
    "select_model",
    "sort_keys",
    "study",
    "titles",
    "to_csv",
    "to_latex",
    "to_markdown",
    "visible_columns",
    "with_variants",
]

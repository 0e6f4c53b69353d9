"""The study report as one self-contained, offline HTML file.

Everything is inside the file: the study table per source model (sortable: a few
lines of inline JavaScript), the plots as inline SVG (:mod:`hostctl.report_plots`),
the devices, and the raw result documents as JSON (``<script type="application/json"
id="edgeprof-results">``). Nothing is fetched: no stylesheet, font, script or image
from anywhere, and a Content-Security-Policy of ``default-src 'none'`` makes the
browser refuse any request the page might still try. Laid out for a 1280 px window
and for print (A4 landscape).

Pure code (no typer, no rich): ``hostctl report --html`` and ``hostctl study --html``
call :func:`write_html`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hostctl import format as fmt
from hostctl.errors import HostctlError
from hostctl.report import (
    NUMERIC,
    Group,
    Row,
    cells,
    group_title,
    latency_unit,
    read_all,
    sort_keys,
    study,
    titles,
    visible_columns,
)
from protocol.result import Result

RESULTS_ELEMENT_ID = "edgeprof-results"
"""Id of the ``<script type="application/json">`` holding the result documents."""

COLUMN_HELP = {
    "variant": "The compression setup: fp32 (the source, NQ), f16, blq (dynamic-range int8), "
    "wo8 (int8 weight-only), fiq (full integer, calibrated), prnNN / prqNN (pruned to NN% "
    "zeros; prq then int8).",
    "top1": "Top-1 accuracy on the --eval data, measured on the device.",
    "top1_change": "Top-1 of the variant minus the fp32's on the same device, in percentage "
    "points, with its 95% CI (paired on per-sample correctness when both ran the same data).",
    "size": "Size of the model file.",
    "gzip": "Size of the model file gzipped (gzip -6): pruned zeros compress away.",
    "params": "Stored weight elements (profiler.analysis).",
    "nonzeros": "Weight elements that are not exactly zero: params × (1 − sparsity).",
    "macs": "Multiply-accumulates of one inference.",
    "p50": "Median latency of the steady state with its distribution-free 95% CI.",
    "p90": "90th percentile latency.",
    "peak": "Peak resident memory of the worker process (MiB).",
    "energy": "Energy per inference (mJ) with its 95% CI, where the board measures its power.",
    "removed": "Connections removed: 1 − non-zeros / the fp32's non-zeros.",
    "saved": "Time saved: 1 − p50 ratio against the fp32 on the same device, with its 95% CI "
    "(profiler.compare: over runs, or block medians within the runs).",
    "speed": "The p50 ratio against the fp32 on the same device, in words.",
    "flags": "Result flags (unstable, drift, throttled, ...) and error codes.",
}

_CSS = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --head: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  color: var(--ink); margin: 0 auto; padding: 16px 20px 40px; max-width: 1240px; }
h1 { font-size: 24px; margin: 4px 0; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta, .note, figcaption p, .missing { color: var(--muted); }
.sha { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; color: var(--muted); }
nav ul { margin: 4px 0; padding-left: 20px; }
a { color: var(--accent); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 5px; vertical-align: top; }
th { background: var(--head); text-align: left; font-weight: 600; position: relative; }
table.sortable th { cursor: pointer; user-select: none; padding-right: 14px; }
table.sortable th::after { content: "↕"; position: absolute; right: 3px; color: #aab; }
table.sortable th[aria-sort="ascending"]::after { content: "▲"; color: var(--ink); }
table.sortable th[aria-sort="descending"]::after { content: "▼"; color: var(--ink); }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
td .ci { display: block; color: var(--muted); font-size: 11px; }
td.flags { color: #9a6700; max-width: 150px; }
tr.error td { background: #fff5f5; }
tr.baseline td:first-child { font-weight: 600; }
figure.plot { margin: 18px 0; break-inside: avoid; page-break-inside: avoid; }
figure.plot figcaption { font-weight: 600; margin-bottom: 4px; }
figure.plot figcaption p { font-weight: normal; margin: 2px 0 0; }
svg.plot-svg { width: 100%; height: auto; display: block; }
.missing::before { content: "not plotted: "; font-weight: 600; }
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  table { font-size: 8pt; }
  .table-wrap { overflow: visible; }
  table.sortable th { cursor: auto; }
  table.sortable th::after { content: none; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""

_JS = """
(function () {
  function key(cell, numeric) {
    var raw = cell.getAttribute("data-v");
    if (numeric) { return raw === null || raw === "" ? NaN : parseFloat(raw); }
    return (raw === null ? cell.textContent : raw).trim().toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      function sort() {
        var numeric = th.classList.contains("num");
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
          if (numeric) {
            if (isNaN(x) && isNaN(y)) { return 0; }
            if (isNaN(x)) { return 1; }
            if (isNaN(y)) { return -1; }
            return dir * (x - y);
          }
          return dir * (x < y ? -1 : x > y ? 1 : 0);
        });
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
})();
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell_html(text: str) -> str:
    """A cell's text, its bracketed interval on a line of its own."""
    main, bracket, rest = text.partition(" [")
    if not bracket:
        return _e(text)
    return f'{_e(main)}<span class="ci">[{_e(rest)}</span>'


def _notes(row: Row) -> dict[str, str]:
    """Tooltips: how each comparison was made (or why it has no interval)."""
    out = {}
    if row.top1_change is not None:
        out["top1_change"] = row.top1_change.method
    if row.time_ratio is not None:
        out["saved"] = out["speed"] = row.time_ratio.method
    if not row.result.ok and row.result.error is not None:
        out["flags"] = row.result.error.message
    return out


def _table(group: Group, anchor: str) -> str:
    unit = latency_unit(group.rows)
    names, columns = titles(unit), visible_columns(group.rows)
    head = "".join(
        f'<th scope="col" class="{"num" if key in NUMERIC else "text"}" '
        f'title="{_e(COLUMN_HELP.get(key, names[key]))}">{_e(names[key])}</th>'
        for key in columns
    )
    body = []
    for row in group.rows:
        text, keys, notes = cells(row, unit), sort_keys(row), _notes(row)
        tds = []
        for key in columns:
            attrs = []
            if key in NUMERIC:
                value = keys.get(key)
                attrs.append('class="num"')
                attrs.append(f'data-v="{"" if value is None else repr(float(value))}"')
            elif key == "flags":
                attrs.append('class="flags"')
            if key in notes:
                attrs.append(f'title="{_e(notes[key])}"')
            tds.append(f"<td {' '.join(attrs)}>{_cell_html(text[key])}</td>")
        classes = " ".join(
            c for c, on in (("baseline", row.is_baseline), ("error", not row.result.ok)) if on
        )
        job = _e(row.result.job_id or "")
        body.append(f'<tr class="{classes}" data-job="{job}">{"".join(tds)}</tr>')
    return (
        f'<div class="table-wrap"><table class="study sortable" id="{anchor}-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _plots(group: Group, salt: str) -> str:
    from hostctl.report_plots import Missing, group_plots

    parts = []
    for plot in group_plots(group, salt):
        if isinstance(plot, Missing):
            parts.append(
                f'<p class="missing" data-plot="{_e(plot.key)}">{_e(plot.title)}: '
                f"{_e(plot.reason)}</p>"
            )
            continue
        parts.append(
            f'<figure class="plot" data-plot="{_e(plot.key)}"><figcaption>{_e(plot.title)}'
            f"<p>{_e(plot.caption)}</p></figcaption>{plot.svg}</figure>"
        )
    return "\n".join(parts)


def _devices(results: Sequence[Result]) -> str:
    seen: dict[str, Result] = {}
    for result in results:
        if result.device.id is not None:
            seen[result.device.id] = result  # the newest describes it
    if not seen:
        return ""
    rows = []
    for device_id in sorted(seen):
        d = seen[device_id].device
        runtimes = sorted(
            {
                " ".join(p for p in (r.runtime.name, r.runtime.version) if p)
                for r in results
                if r.device.id == device_id and r.runtime.name
            }
        )
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_e(v)}</td>"
                for v in (
                    device_id,
                    d.board or d.machine or fmt.DASH,
                    d.cpu or fmt.DASH,
                    fmt.text(d.cores),
                    fmt.text(round(d.ram_mb)) if d.ram_mb is not None else fmt.DASH,
                    d.os or fmt.DASH,
                    ", ".join(runtimes) or fmt.DASH,
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("device", "board", "CPU", "cores", "RAM MB", "OS", "runtimes")
    )
    return (
        '<h2 id="devices">Devices</h2><div class="table-wrap"><table class="devices">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _runs(results: Sequence[Result]) -> str:
    rows = []
    for r in results:
        status = "ok" if r.ok else f"error: {r.error.code if r.error else 'error'}"
        values = (
            r.job_id or fmt.DASH,
            r.created_at or fmt.DASH,
            r.label or fmt.DASH,
            r.device.id or fmt.DASH,
            r.model.name or fmt.DASH,
            (r.model.sha256 or "")[:12] or fmt.DASH,
            status,
        )
        rows.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in values) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("job", "created", "label", "device", "model", "sha256", "status")
    )
    return (
        '<div class="table-wrap"><table class="runs sortable">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as null: the embedded JSON stays valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_script(docs: Sequence[Mapping[str, Any]]) -> str:
    # "<", ">" and "&" escaped: no document text can close the script element.
    text = json.dumps(_finite(list(docs)), sort_keys=True, allow_nan=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{RESULTS_ELEMENT_ID}">{text}</script>'


def _jsonable(docs: Iterable[Mapping[str, Any] | Result]) -> list[Mapping[str, Any]]:
    return [d.raw if isinstance(d, Result) else d for d in docs]


def render_html(
    docs: Iterable[Mapping[str, Any] | Result],
    *,
    title: str = "edgeprof study",
    subtitle: str | None = None,
    generated_at: _dt.datetime | None = None,
) -> str:
    """The whole page for ``docs`` (result documents, or Results already read)."""
    from hostctl import __version__

    raw = _jsonable(docs)
    results = read_all(raw)
    groups = study(results)
    moment = (generated_at or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    devices = sorted({r.device.id for r in results if r.device.id})
    # One salt per page, from its content: ids inside the SVGs differ between figures
    # and stay the same for the same results.
    salt = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
    meta = (
        f"{len(results)} result(s) of {len(groups)} source model(s) on {len(devices)} "
        f"device(s) · generated {moment} by edgeprof {__version__}"
    )
    nav = "".join(
        f'<li><a href="#source-{i}">{_e(group_title(g))}</a></li>' for i, g in enumerate(groups)
    )
    sections = []
    for i, group in enumerate(groups):
        anchor = f"source-{i}"
        sections.append(
            f'<section class="group" id="{anchor}" data-source="{_e(group.source)}">'
            f'<h2>{_e(group.name)} <span class="sha">source {_e(group.source[:16])}</span></h2>'
            f"{_table(group, anchor)}"
            '<p class="note">Each row is one variant on one device; comparisons are against '
            "the fp32 on the same device. Hover a column title for what it means, a "
            "comparison for how it was made; click a title to sort.</p>"
            f"{_plots(group, f'{salt}-{i}')}</section>"
        )
    if not sections:
        sections.append('<p class="missing">no readable results match the selection</p>')
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="generator" content="edgeprof">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(subtitle)}</p>' if subtitle else "",
        f'<p class="meta">{_e(meta)}</p></header>',
        f'<nav><ul>{nav}<li><a href="#devices">Devices</a></li>'
        '<li><a href="#runs">Result documents</a></li></ul></nav>'
        if groups
        else "",
        *sections,
        _devices(results),
        '<h2 id="runs">Result documents</h2>',
        '<p class="note">Every result above, as stored. The documents themselves are in this '
        f"file, as JSON in the element <code>script#{RESULTS_ELEMENT_ID}</code> "
        "(a list of edgeprof.result/1 documents).</p>",
        _runs(results),
        _json_script(raw),
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_html(
    path: Path,
    docs: Iterable[Mapping[str, Any] | Result],
    *,
    title: str = "edgeprof study",
    subtitle: str | None = None,
) -> Path:
    """Write the report to ``path`` (HostctlError when it cannot be written)."""
    page = render_html(docs, title=title, subtitle=subtitle)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise HostctlError(f"cannot write the report {path}: {exc.strerror or exc}") from None
    return path


def report_available() -> str | None:
    """None when the HTML report can be made here, else what to install (one line)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return "the HTML report draws its plots with matplotlib: pip install 'edgeprof[report]'"
    return None


__all__ = ["RESULTS_ELEMENT_ID", "render_html", "report_available", "write_html"]

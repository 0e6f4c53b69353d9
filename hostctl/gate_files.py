"""The gate's files for CI: JUnit XML (one testcase per device x model x metric)
and a markdown summary for a CI job page. Pure code: text in, text out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from hostctl.gate import METRIC_NAMES, figure_text, summary, why

if TYPE_CHECKING:
    from hostctl.gate import GateReport


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str | None) -> str | None:
    """What XML 1.0 cannot hold (control characters, lone surrogates) as U+FFFD."""
    return None if text is None else _NOT_XML.sub("\ufffd", text)


def junit_xml(report: GateReport, *, inconclusive: str = "exit-3") -> str:
    """JUnit XML: FAIL is a ``<failure>`` with the figures; INCONCLUSIVE is a
    ``<failure>`` under ``--inconclusive fail``, else ``<skipped>`` with the reason;
    an unmatched subject is an ``<error>`` (the gate could not check it)."""
    suite = ET.Element("testsuite", name="edgeprof check")
    failures = errors = skipped = 0
    for c in report.comparisons:
        title = str(c.subject.get("title") or "")
        device = c.subject.get("device")
        classname = f"edgeprof.{device}" if isinstance(device, str) else "edgeprof"
        case = ET.SubElement(
            suite,
            "testcase",
            classname=classname,
            name=f"{title} · {METRIC_NAMES.get(c.metric, c.metric)}",
        )
        line = summary(c)
        detail = "\n".join(
            part
            for part in (
                line,
                f"baseline {figure_text(c, c.baseline)} (n = {c.n_baseline}), "
                f"candidate {figure_text(c, c.candidate)} (n = {c.n_candidate})",
                f"method: {c.method}",
                why(c),
            )
            if part
        )
        if c.verdict == "FAIL" or (c.verdict == "INCONCLUSIVE" and inconclusive == "fail"):
            failures += 1
            ET.SubElement(case, "failure", message=line, type=str(c.verdict)).text = detail
        elif c.verdict == "INCONCLUSIVE":
            skipped += 1
            ET.SubElement(case, "skipped", message=line).text = detail
        ET.SubElement(case, "system-out").text = detail
    for u in report.unmatched:
        errors += 1
        case = ET.SubElement(
            suite,
            "testcase",
            classname="edgeprof",
            name=f"unmatched {u.side}: " + " · ".join(u.subject.values()),
        )
        ET.SubElement(case, "error", message=u.line(), type="UNMATCHED").text = u.line()
    for line in report.lost:
        errors += 1
        case = ET.SubElement(suite, "testcase", classname="edgeprof", name=f"lost: {line}")
        ET.SubElement(case, "error", message=line, type="LOST").text = line
    total = len(report.comparisons) + len(report.unmatched) + len(report.lost)
    suite.set("tests", str(total))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    for element in suite.iter():
        element.text = _xml_safe(element.text)
        for name, value in element.attrib.items():
            element.set(name, _xml_safe(value) or "")
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def markdown_summary(report: GateReport) -> str:
    """A summary for a CI job page: the verdict, a table, the notes."""
    verdict = report.verdict
    heading = f"## edgeprof check: {verdict}" if verdict else "## edgeprof compare"
    lines = [heading, ""]
    if report.sides:
        lines.append(
            f"baseline `{_md(report.sides.get('baseline', ''))}` · "
            f"candidate `{_md(report.sides.get('candidate', ''))}`"
        )
        lines.append("")
    cols = ["subject", "metric", "baseline", "candidate", "change [95% CI]"]
    if verdict:
        cols += ["verdict", "limit"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|")
    from hostctl.gate import effect_text, limit_text

    for c in report.comparisons:
        row = [
            _md(str(c.subject.get("title") or "")),
            METRIC_NAMES.get(c.metric, c.metric),
            figure_text(c, c.baseline),
            figure_text(c, c.candidate),
            _md(effect_text(c)),
        ]
        if verdict:
            mark = {"FAIL": "❌ FAIL", "PASS": "✅ PASS"}.get(str(c.verdict), "❔ INCONCLUSIVE")
            row += [mark, limit_text(c).removeprefix("limit ")]
        lines.append("| " + " | ".join(row) + " |")
    notes = [
        f"- {METRIC_NAMES.get(c.metric, c.metric)} on {_md(str(c.subject.get('title')))}: {_md(w)}"
        for c in report.comparisons
        if (w := why(c))
    ]
    notes += [f"- {_md(u.line())}" for u in report.unmatched]
    notes += [f"- lost: {_md(line)}" for line in report.lost]
    if report.live:
        live = report.live
        notes.append(
            f"- live: {live.get('rounds')} round(s), {live.get('pairs_per_device')} ABBA pairs "
            f"per device, {live.get('elapsed_s')} s; {live.get('stopped')}"
        )
    if notes:
        lines += ["", *notes]
    if verdict:
        lines += [
            "",
            "Verdicts: FAIL when the interval lies wholly above the limit, PASS when wholly "
            "below, INCONCLUSIVE otherwise; Holm's method across the check keeps the "
            "family-wise error at 5 %.",
        ]
    return "\n".join(lines) + "\n"

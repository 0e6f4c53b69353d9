"""hostctl.report_plots: the ECDF's log axis reads in plain numbers at any span."""

from __future__ import annotations

import re

from hostctl import report
from hostctl.report_plots import Plot, ecdf
from protocol.result import encode_samples
from tests.hostctl.test_report import _doc


def _tick_labels(svg: str) -> set[str]:
    return {t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}


def _ecdf_of(low_us: float, high_us: float) -> set[str]:
    """The x-axis labels of the ECDF of one run whose samples go from low to high µs."""
    n = 2000
    ratio = high_us / low_us
    samples = [round(low_us * 1000 * ratio ** (i / (n - 1))) for i in range(n)]
    doc = _doc("fp32")
    doc["samples"] = encode_samples(samples)
    doc["latency_ms"] = {"p50": low_us / 1000 * ratio**0.5}
    plot = ecdf(report.study([doc])[0], "salt")
    assert isinstance(plot, Plot)
    return _tick_labels(plot.svg)


def test_ecdf_log_axis_labels_one_two_five_over_two_decades_and_decades_beyond() -> None:
    narrow = _ecdf_of(2.0, 150.0)  # < 2 decades: 1-2-5 steps
    assert {"5", "10", "20", "50", "100"} <= narrow
    wide = _ecdf_of(2.0, 8000.0)  # ~3.6 decades: one label per decade, none collide
    assert {"10", "100", "1000"} <= wide
    assert not wide & {"20", "50", "200", "500", "2000", "5000"}
    assert not any("×" in label or "10^" in label for label in wide | narrow)

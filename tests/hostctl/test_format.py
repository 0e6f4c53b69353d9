"""hostctl.format: one way to write every number."""

from __future__ import annotations

from hostctl import format as fmt
from protocol.result import Interval


def test_latencies_keep_three_significant_digits_in_the_unit_that_fits() -> None:
    assert fmt.latency(0.00639) == "6.39 µs"
    assert fmt.latency(0.5) == "500 µs"
    assert fmt.latency(1.2345) == "1.23 ms"
    assert fmt.latency(12.3456) == "12.3 ms"
    assert fmt.latency(1234.5) == "1234 ms"
    assert fmt.latency(12_000.0) == "12.0 s"
    assert fmt.latency(None) == fmt.latency(float("nan")) == fmt.latency("1") == "—"


def test_an_interval_shares_its_values_unit() -> None:
    assert fmt.latency_ci(0.00639, [0.00638, 0.00641]) == "6.39 µs [6.38–6.41]"
    assert fmt.latency_ci(1.2345, Interval(1.2, 1.3)) == "1.23 ms [1.20–1.30]"
    assert fmt.interval([1.2345, 1.3456]) == "[1.23–1.35]"
    assert fmt.interval(None) == fmt.interval([2, 1]) == fmt.interval("x") == ""


def test_sizes_counts_and_percentages() -> None:
    assert fmt.size(816) == "816 B"
    assert fmt.size(17_510) == "17.1 KiB"
    assert fmt.size(5 * 2**20) == "5.0 MiB"
    assert fmt.count(3978) == "3,978"
    assert fmt.percent(0.9123) == "91.2%"
    assert fmt.points(-0.012) == "−1.2 pt" and fmt.points(0.004) == "+0.4 pt"
    assert fmt.mib(56.56) == "56.6"


def test_macs_say_lower_bound_or_unknown_never_zero() -> None:
    assert fmt.macs(13_110_000) == "13.1 M"
    assert fmt.macs(13_110_000, complete=False) == "≥ 13.1 M"
    assert fmt.macs(0, complete=False) == "unknown"
    assert fmt.macs(None) == "unknown"


def test_ratios_read_as_words_that_agree_with_their_numbers() -> None:
    assert fmt.ratio(1.31, [1.25, 1.38]) == "1.31× slower [1.25–1.38]"
    assert fmt.ratio(0.5, [0.4, 0.625]) == "2.00× faster [1.60–2.50]"
    assert fmt.ratio(1.001) == "same"
    assert fmt.ratio(1.2, higher="larger", lower="smaller") == "1.20× larger"
    assert fmt.ratio(None) == fmt.ratio(0) == "—"
    # an interval holding 1 has no direction: the ratio as it is, not "1.43× faster [0.79–2.44]"
    assert fmt.ratio(0.7, [0.41, 1.27], undirected=True) == "0.70× [0.41–1.27]"
    assert fmt.ratio(1.01, [0.99, 1.05], undirected=True) == "1.01× [0.99–1.05]"
    assert fmt.ratio(0.7, [0.41, 1.27]) == "1.43× faster [0.79–2.44]"  # study tables
    # a bound the limit's precision would show equal to the limit gets one more decimal
    assert fmt.ratio(1.01, [0.99, 1.0471], limit=1.05, undirected=True) == "1.01× [0.990–1.047]"
    assert fmt.ratio(1.01, [0.99, 1.0246], limit=1.025, undirected=True) == (
        "1.01× [0.9900–1.0246]"
    )
    assert fmt.limit_digits(1.05) == 2 and fmt.limit_digits(1.025) == 3
    assert fmt.ratio(1.2, [1.0522, 1.3], limit=1.05) == "1.20× slower [1.052–1.300]"
    assert fmt.ratio(1.2, [1.1, 1.3], limit=1.05) == "1.20× slower [1.10–1.30]"


def test_shapes() -> None:
    assert fmt.shapes({"x": (1, 3, 48, 320)}) == "x 1×3×48×320"
    assert fmt.shapes({"a": (1, 10), "sr": ()}) == "a 1×10, sr scalar"
    assert fmt.shapes({}) == "—"

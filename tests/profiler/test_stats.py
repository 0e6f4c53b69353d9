"""Latency statistics against textbook values and exact binomial computations."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from profiler import stats

MS = 1_000_000  # ns per ms


def _coverage(n: int, q: float, lo: int, hi: int) -> Fraction:
    """Exact P(lo <= B <= hi - 1) for B ~ Binomial(n, q), from math.comb."""
    fq = Fraction(q).limit_denominator(1000)
    return sum(
        (Fraction(math.comb(n, k)) * fq**k * (1 - fq) ** (n - k) for k in range(lo, hi)),
        Fraction(0),
    )


# ---------------------------------------------------------------- percentiles / moments


def test_percentiles_of_1_to_100_follow_hyndman_fan_type_7() -> None:
    # Textbook (NumPy/R default) values for 1..100 given in ms.
    result = stats.latency_stats([i * MS for i in range(1, 101)])
    assert result["n"] == 100
    assert result["min"] == 1.0 and result["max"] == 100.0
    assert result["p50"] == pytest.approx(50.5)
    assert result["p90"] == pytest.approx(90.1)
    assert result["p95"] == pytest.approx(95.05)
    assert result["p99"] is None  # 100 samples cannot locate p99 (needs 299)
    assert result["mean"] == pytest.approx(50.5)
    # Sample std of 1..n is sqrt(n(n+1)/12).
    assert result["std"] == pytest.approx(math.sqrt(100 * 101 / 12))
    assert result["cov"] == pytest.approx(math.sqrt(100 * 101 / 12) / 50.5)


def test_sample_standard_deviation_uses_n_minus_1() -> None:
    # 2,4,4,4,5,5,7,9: population std 2, sample std sqrt(32/7).
    result = stats.latency_stats([v * MS for v in (2, 4, 4, 4, 5, 5, 7, 9)])
    assert result["std"] == pytest.approx(math.sqrt(32 / 7))
    assert result["mean"] == pytest.approx(5.0)


def test_nanoseconds_become_milliseconds() -> None:
    result = stats.latency_stats([1_500_000] * 10)
    assert result["p50"] == pytest.approx(1.5)
    assert result["std"] == 0.0 and result["cov"] == 0.0


def test_single_sample_has_no_spread_and_no_percentiles() -> None:
    result = stats.latency_stats([2 * MS])
    assert result["min"] == result["max"] == result["mean"] == 2.0
    assert result["std"] is None and result["cov"] is None
    assert result["p50"] is None and result["ci95_p50"] is None


def test_empty_samples_raise() -> None:
    with pytest.raises(ValueError):
        stats.latency_stats([])


@pytest.mark.parametrize(("q", "n_min"), [(0.5, 6), (0.9, 29), (0.95, 59), (0.99, 299)])
def test_percentile_withheld_until_a_95_percent_ci_exists(q: float, n_min: int) -> None:
    assert stats.min_samples_for(q) == n_min
    assert 1 - q**n_min - (1 - q) ** n_min >= 0.95
    assert 1 - q ** (n_min - 1) - (1 - q) ** (n_min - 1) < 0.95
    key = f"p{round(q * 100)}"
    assert stats.latency_stats(list(range(MS, MS + n_min - 1)))[key] is None
    assert stats.latency_stats(list(range(MS, MS + n_min)))[key] is not None


# ---------------------------------------------------------------- confidence intervals


@pytest.mark.parametrize(
    ("n", "ranks"),
    # Published 95% CI ranks for the median (e.g. Conover, Practical Nonparametric
    # Statistics, table A3): n=10 -> x(2), x(9); n=20 -> x(6), x(15).
    [(6, (1, 6)), (10, (2, 9)), (20, (6, 15))],
)
def test_median_ci_ranks_match_tables(n: int, ranks: tuple[int, int]) -> None:
    assert stats.quantile_ci_ranks(n, 0.5) == ranks


@pytest.mark.parametrize("n", [6, 7, 11, 29, 30, 57, 100, 151])
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_ci_ranks_are_the_shortest_with_exact_95_percent_coverage(n: int, q: float) -> None:
    ranks = stats.quantile_ci_ranks(n, q)
    if not stats.quantile_estimable(n, q):
        assert ranks is None
        return
    assert ranks is not None
    lo, hi = ranks
    assert 1 <= lo < hi <= n
    assert _coverage(n, q, lo, hi) >= Fraction(95, 100)
    width = hi - lo
    # No interval one rank narrower reaches 95% (brute force over all positions).
    for a in range(1, n - width + 2):
        assert _coverage(n, q, a, a + width - 1) < Fraction(95, 100)


def test_large_n_ci_is_close_to_the_normal_approximation() -> None:
    n, q = 100_000, 0.9
    ranks = stats.quantile_ci_ranks(n, q)
    assert ranks is not None
    sd = math.sqrt(n * q * (1 - q))
    assert ranks[0] == pytest.approx(n * q - 1.96 * sd, abs=3)
    assert ranks[1] == pytest.approx(n * q + 1.96 * sd, abs=3)


def test_ci_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = random.Random(1234)
    true_median = math.log(2)  # of Exponential(1)
    hits = 0
    trials = 1000
    for _ in range(trials):
        xs = [int(rng.expovariate(1.0) * MS) for _ in range(40)]
        lo, hi = stats.latency_stats(xs)["ci95_p50"]
        hits += lo <= true_median <= hi
    assert hits / trials >= 0.93


def test_ci_brackets_the_estimate() -> None:
    rng = random.Random(7)
    xs = [int(rng.gauss(10, 1) * MS) for _ in range(500)]
    result = stats.latency_stats(xs)
    for key in ("p50", "p90"):
        lo, hi = result[f"ci95_{key}"]
        assert lo <= result[key] <= hi


# ---------------------------------------------------------------- drift


def _noise(n: int, seed: int = 0, mean_ms: float = 1.0, sd: float = 0.02) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.gauss(mean_ms, sd * mean_ms) * MS) for _ in range(n)]


def test_mann_kendall_exact_p_values() -> None:
    # Strictly monotone k points: only 2 of k! orderings are as extreme.
    s, p = stats.mann_kendall([1, 2, 3, 4])
    assert s == 6 and p == pytest.approx(2 / 24)
    assert stats.mann_kendall([5, 4, 3, 2, 1, 0])[1] == pytest.approx(2 / 720)
    s, p = stats.mann_kendall([1, 3, 2, 4])
    assert s == 4 and p == pytest.approx(2 * 4 / 24)  # 1 + 3 orderings with <= 1 inversion


def test_stationary_noise_is_not_drift() -> None:
    for seed in range(5):
        result = stats.detect_drift(_noise(1000, seed))
        assert result["drift"] is False
        assert abs(result["change_pct"]) < 2


def test_ramp_is_drift() -> None:
    samples = [int(s * (1 + 0.2 * i / 1000)) for i, s in enumerate(_noise(1000))]
    result = stats.detect_drift(samples)
    assert result["drift"] is True
    assert result["change_pct"] == pytest.approx(13.3, abs=2)
    assert result["p_value"] < 0.001


def test_step_up_halfway_is_drift() -> None:
    samples = _noise(500, 1) + _noise(500, 2, mean_ms=1.3)
    assert stats.detect_drift(samples)["drift"] is True


def test_tiny_significant_trend_is_not_drift() -> None:
    samples = [int(s * (1 + 0.02 * i / 2000)) for i, s in enumerate(_noise(2000, sd=0.001))]
    result = stats.detect_drift(samples)
    assert result["p_value"] < 0.05
    assert result["drift"] is False


def test_too_few_samples_are_not_tested() -> None:
    result = stats.detect_drift([MS, 2 * MS, 3 * MS])
    assert result["drift"] is False and result["p_value"] is None


# ---------------------------------------------------------------- flags


def _pi(now: int = 0, since: int = 0) -> dict[str, object]:
    from profiler.environment import decode_pi_throttled

    return {"pi_throttled": decode_pi_throttled(now | since << 16)}


def test_stable_run_has_no_flags() -> None:
    samples = _noise(300)
    assert stats.stability_flags(samples, None, _pi(), _pi()) == []


def test_short_run_is_flagged_few_runs() -> None:
    assert stats.stability_flags(_noise(50), None, None, None) == ["few_runs"]


def test_noisy_run_is_unstable_high_cov() -> None:
    samples = _noise(300, sd=0.3)
    result = stats.latency_stats(samples)
    assert result["cov"] > stats.HIGH_COV
    assert stats.stability_flags(samples, result, None, None) == ["unstable", "high_cov"]


def test_throttled_device_is_unstable_throttled() -> None:
    flags = stats.stability_flags(_noise(300), None, _pi(), _pi(now=0b100, since=0b100))
    assert flags == ["unstable", "throttled"]
    flags = stats.stability_flags(_noise(300), None, {}, {"throttled": True})
    assert flags == ["unstable", "throttled"]


def test_throttle_since_boot_before_the_run_does_not_count() -> None:
    assert stats.stability_flags(_noise(300), None, _pi(since=0b1), _pi(since=0b1)) == []


def test_drifting_short_run_gets_ordered_flags() -> None:
    samples = [int(s * (1 + 0.5 * i / 60)) for i, s in enumerate(_noise(60))]
    flags = stats.stability_flags(samples, None, None, None)
    assert flags[:2] == ["unstable", "drift"]
    assert flags[-1] == "few_runs"
    assert len(flags) == len(set(flags))


def test_one_preemption_spike_does_not_make_a_fast_model_unstable() -> None:
    # A 6 µs model with one 4 ms preemption: plain CoV is huge, the runs agree.
    rng = random.Random(1)
    samples = [6_000 + rng.randint(-100, 100) for _ in range(2000)]
    samples[700] = 4_000_000
    result = stats.latency_stats(samples)
    assert result["cov"] > 1.0
    assert result["cov_robust"] < 0.05
    assert "high_cov" not in stats.stability_flags(samples, result, None, None)


def test_widely_spread_latencies_are_high_cov() -> None:
    # Two regimes, 1 ms and 2 ms, interleaved: a spread every run shows.
    samples = [1_000_000 if i % 2 else 2_000_000 for i in range(400)]
    result = stats.latency_stats(samples)
    flags = stats.stability_flags(samples, result, None, None)
    assert result["cov_robust"] > 0.10
    assert flags[:1] == ["unstable"] and "high_cov" in flags

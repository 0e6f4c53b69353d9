"""Latency statistics of one profiling run: percentiles with distribution-free
confidence intervals, drift detection and stability flags (the samples'
encoding lives with the result document, in protocol.result).

Pure standard library on purpose: this runs in the light parent process (and in
hostctl), which must not import NumPy. The methods are described precisely in
``docs/measurement.md``; the short version:

* percentiles use Hyndman & Fan definition 7 (linear interpolation between
  order statistics, the default of NumPy, R and Excel's ``PERCENTILE.INC``);
* a percentile q is reported only when a distribution-free 95% confidence
  interval for it exists, i.e. ``1 - q**n - (1 - q)**n >= 0.95``;
* the 95% CI of a percentile is ``[x_(l), x_(u)]`` with ranks chosen from the
  exact Binomial(n, q) distribution (shortest interval, then most balanced tails);
* drift is a Mann-Kendall trend test on block medians plus a practical
  magnitude threshold on the change between the first and last third.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
"""Coverage of every confidence interval reported here."""

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
)
"""Percentiles reported in ``latency_ms`` (key, quantile)."""

HIGH_COV = 0.10
"""Robust coefficient of variation above which a run is flagged ``high_cov`` and ``unstable``.

The flag uses ``cov_robust`` (1.4826·MAD / median: equal to std/mean for normal
data) rather than ``cov``: on a model of a few microseconds, one preemption of a
few milliseconds makes std/mean several hundred percent although every other run
agrees; that says nothing about the model and would flag every fast model."""

_MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a normal sample -> sigma

FEW_RUNS = 100
"""Fewer steady-state samples than this are flagged ``few_runs``."""

DRIFT_ALPHA = 0.05
"""Significance level of the Mann-Kendall trend test."""

DRIFT_MIN_CHANGE_PCT = 5.0
"""A significant trend counts as drift only if latency changed at least this much (%)."""

DRIFT_MIN_SAMPLES = 30
"""Below this many samples drift is not tested (too few blocks for a trend test)."""

DRIFT_MAX_BLOCKS = 20
"""Samples are summarised as at most this many consecutive block medians."""

DRIFT_BLOCK_MIN = 5
"""Each block holds at least this many samples."""


_NS_PER_MS = 1_000_000.0
_EPS = 1e-12  # tolerance of coverage comparisons against floating-point rounding


# --------------------------------------------------------------------------- percentiles


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Hyndman-Fan type 7 percentile of already sorted values, ``0 <= q <= 1``.

    ``h = (n - 1) * q``; the result interpolates linearly between the order
    statistics ``x[floor(h)]`` and ``x[floor(h) + 1]`` (0-based).
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    frac = h - lo
    return float(sorted_values[lo]) + frac * (float(sorted_values[hi]) - float(sorted_values[lo]))


def quantile_estimable(n: int, q: float, confidence: float = CONFIDENCE) -> bool:
    """True when a distribution-free CI for quantile q exists with n samples.

    The widest possible interval ``[x_(1), x_(n)]`` covers the quantile with
    probability ``1 - q**n - (1 - q)**n``; if even that is below the
    confidence level, n samples cannot locate the quantile and it is withheld
    (p50 needs n >= 6, p90 n >= 29, p95 n >= 59, p99 n >= 299).
    """
    if n < 2 or not 0.0 < q < 1.0:
        return False
    return 1.0 - q**n - (1.0 - q) ** n >= confidence - _EPS


def min_samples_for(q: float, confidence: float = CONFIDENCE) -> int:
    """Smallest n for which :func:`quantile_estimable` holds."""
    n = 2
    while not quantile_estimable(n, q, confidence):
        n += 1
    return n


def _binom_logpmf(k: int, n: int, log_q: float, log_1q: float, log_nfact: float) -> float:
    return log_nfact - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_1q


def quantile_ci_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` of a distribution-free CI ``[x_(l), x_(u)]`` for quantile q.

    For a continuous distribution, ``P(x_(l) <= xi_q < x_(u)) = P(l <= B <= u - 1)``
    with ``B ~ Binomial(n, q)``. Among all ``1 <= l < u <= n`` whose coverage is
    at least ``confidence`` this returns the one with the fewest ranks between
    them, then the most balanced tail probabilities, then the highest coverage.
    The binomial probabilities are exact (log-space via ``lgamma``); the search
    is restricted to ``n*q +- 12`` standard deviations, outside of which the
    probability mass is below 1e-30. Returns None when no interval reaches the
    confidence level (see :func:`quantile_estimable`).
    """
    if not quantile_estimable(n, q, confidence):
        return None
    sd = math.sqrt(n * q * (1.0 - q))
    k_lo = max(0, math.floor(n * q - 12 * sd) - 1)
    k_hi = min(n, math.ceil(n * q + 12 * sd) + 1)
    log_q, log_1q, log_nfact = math.log(q), math.log1p(-q), math.lgamma(n + 1)
    pmf = [math.exp(_binom_logpmf(k, n, log_q, log_1q, log_nfact)) for k in range(k_lo, k_hi + 1)]
    # cum[i] = P(k_lo <= B < k_lo + i); the mass outside [k_lo, k_hi] is negligible
    # but is accounted for in the tails below so that balance is computed honestly.
    cum = [0.0]
    for p in pmf:
        cum.append(cum[-1] + p)
    total = cum[-1]

    def mass(a: int, b: int) -> float:  # P(a <= B <= b) for k_lo <= a <= b <= k_hi
        return cum[b - k_lo + 1] - cum[a - k_lo]

    best: tuple[int, float, float, int, int] | None = None
    # B ranges over l..u-1 with 1 <= l and u <= n, i.e. k in [1, n-1].
    first, last = max(1, k_lo), min(n - 1, k_hi)
    b = first
    for a in range(first, last + 1):
        b = max(b, a)
        while b <= last and mass(a, b) < confidence - _EPS:
            b += 1
        if b > last:
            break
        cover = mass(a, b)
        lower_tail = mass(k_lo, a - 1) if a > k_lo else 0.0
        upper_tail = max(0.0, total - lower_tail - cover)
        key = (b - a, abs(lower_tail - upper_tail), -cover, a, b)
        if best is None or key < best:
            best = key
    if best is None:  # unreachable when quantile_estimable holds; kept defensive
        return None
    _, _, _, a, b = best
    return a, b + 1


def _ci(sorted_ms: Sequence[float], q: float) -> list[float] | None:
    ranks = quantile_ci_ranks(len(sorted_ms), q)
    if ranks is None:
        return None
    lo, hi = ranks
    return [_ns(sorted_ms[lo - 1]), _ns(sorted_ms[hi - 1])]


def _ns(ms: float) -> float:
    # The samples are integer ns: digits below 1 ns (1e-6 ms) are float noise.
    return round(ms, 6)


def latency_stats(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Summary statistics of steady-state latencies, in milliseconds.

    Returns ``{n, min, p50, p90, p95, p99, max, mean, std, cov, cov_robust,
    ci95_p50, ci95_p90}``.
    ``std`` is the sample standard deviation (n - 1 denominator; None for n = 1),
    ``cov = std / mean``; ``cov_robust = 1.4826 * MAD / median``. A percentile that n samples cannot estimate (see
    :func:`quantile_estimable`) is None, and so is its CI.

    Raises ValueError on an empty sequence.
    """
    n = len(samples_ns)
    if n == 0:
        raise ValueError("no latency samples: the steady state recorded no runs")
    ms = sorted(s / _NS_PER_MS for s in samples_ns)
    mean = math.fsum(ms) / n
    std: float | None = None
    cov: float | None = None
    if n >= 2:
        # Two-pass with fsum: exact enough and far faster than statistics.stdev
        # (which uses Fractions) on 10^5 samples.
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in ms) / (n - 1))
        cov = std / mean if mean > 0 else None
    out: dict[str, Any] = {"n": n, "min": _ns(ms[0])}
    for key, q in PERCENTILES:
        out[key] = _ns(percentile(ms, q)) if quantile_estimable(n, q) else None
    out.update(
        {
            "max": _ns(ms[-1]),
            "mean": _ns(mean),
            "std": std,
            "cov": cov,
            "cov_robust": _robust_cov(ms),
            "ci95_p50": _ci(ms, 0.50),
            "ci95_p90": _ci(ms, 0.90),
        }
    )
    return out


def _robust_cov(sorted_ms: Sequence[float]) -> float | None:
    """1.4826 * median absolute deviation / median, or None when undefined."""
    if len(sorted_ms) < 2:
        return None
    median = percentile(sorted_ms, 0.5)
    if median <= 0:
        return None
    deviations = sorted(abs(x - median) for x in sorted_ms)
    return _MAD_TO_SIGMA * percentile(deviations, 0.5) / median


# --------------------------------------------------------------------------- samples


# --------------------------------------------------------------------------- drift


def _median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 0.5)


def block_medians(samples: Sequence[float], max_blocks: int = DRIFT_MAX_BLOCKS) -> list[float]:
    """Medians of consecutive, (nearly) equal-sized blocks of the samples, in order.

    Block medians damp the short-range autocorrelation of latency samples
    (which would inflate a trend test run on raw samples) and its outliers.
    """
    k = min(max_blocks, len(samples) // DRIFT_BLOCK_MIN)
    if k < 1:
        return []
    n = len(samples)
    return [_median(samples[i * n // k : (i + 1) * n // k]) for i in range(k)]


def _mahonian(k: int) -> list[int]:
    """Counts of permutations of k items by number of inversions (OEIS A008302)."""
    counts = [1]
    for m in range(2, k + 1):
        new = [0] * (len(counts) + m - 1)
        for i, c in enumerate(counts):
            for j in range(m):
                new[i + j] += c
        counts = new
    return counts


def mann_kendall(values: Sequence[float]) -> tuple[int, float]:
    """Mann-Kendall trend statistic S and its two-sided p-value.

    Without ties the p-value is exact (S = C(k,2) - 2 * inversions, and the
    null distribution of inversions is given by Mahonian numbers). With ties
    it uses the normal approximation with tie-corrected variance and a
    continuity correction of 1.
    """
    k = len(values)
    s = 0
    for i in range(k - 1):
        for j in range(i + 1, k):
            d = values[j] - values[i]
            s += (d > 0) - (d < 0)
    if len(set(values)) == k:
        counts = _mahonian(k)
        total = math.factorial(k)
        pairs = k * (k - 1) // 2
        # S = pairs - 2*inv, so |S| >= |s|  <=>  inv <= (pairs-|s|)/2 or inv >= (pairs+|s|)/2.
        lo_inv = (pairs - abs(s)) // 2
        tail = sum(counts[: lo_inv + 1])
        p = min(1.0, 2.0 * tail / total)  # symmetric distribution
        return s, p
    ties: dict[float, int] = {}
    for v in values:
        ties[v] = ties.get(v, 0) + 1
    var = (k * (k - 1) * (2 * k + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties.values())) / 18
    if var <= 0:
        return s, 1.0
    z = (abs(s) - 1) / math.sqrt(var) if s != 0 else 0.0
    p = math.erfc(max(z, 0.0) / math.sqrt(2.0))
    return s, min(1.0, p)


def detect_drift(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Test whether latency trends up or down over the run (in measurement order).

    The samples are cut into at most 20 consecutive blocks of at least 5 and a
    two-sided Mann-Kendall test is run on the block medians. ``change_pct`` is
    the median of the last third of the samples relative to the median of the
    first third, in percent. Drift is reported when ``p < 0.05`` *and*
    ``|change_pct| >= 5``: a statistically clear but tiny trend is not drift.
    Fewer than 30 samples are not tested (``p_value`` and ``blocks`` None,
    drift False). Returns ``{drift, change_pct, p_value, method, blocks}``;
    the runner stores it as ``latency_ms.drift``.
    """
    n = len(samples_ns)
    method = "mann-kendall on block medians"
    third = n // 3
    change = 0.0
    if third >= 1:
        first = _median([float(s) for s in samples_ns[:third]])
        last = _median([float(s) for s in samples_ns[n - third :]])
        change = (last - first) / first * 100.0 if first > 0 else 0.0
    if n < DRIFT_MIN_SAMPLES:
        return {
            "drift": False,
            "change_pct": change,
            "p_value": None,
            "method": method,
            "blocks": None,
        }
    medians = block_medians([float(s) for s in samples_ns])
    _, p = mann_kendall(medians)
    drift = p < DRIFT_ALPHA and abs(change) >= DRIFT_MIN_CHANGE_PCT
    return {
        "drift": drift,
        "change_pct": change,
        "p_value": p,
        "method": method,
        "blocks": len(medians),
    }


# --------------------------------------------------------------------------- flags


def _throttled(env_before: Mapping[str, Any] | None, env_after: Mapping[str, Any] | None) -> bool:
    # Imported lazily: environment is heavier (subprocess, sysfs) and stats must
    # stay usable on documents alone.
    from profiler.environment import throttled_between

    for env in (env_before, env_after):
        if env is not None and env.get("throttled") is True:
            return True
    return throttled_between(env_before or {}, env_after or {}) is True


def stability_flags(
    samples_ns: Sequence[int],
    stats: Mapping[str, Any] | None,
    env_before: Mapping[str, Any] | None,
    env_after: Mapping[str, Any] | None,
    drift: Mapping[str, Any] | None = None,
) -> list[str]:
    """Flags describing how trustworthy a run's latency numbers are.

    In this order, without duplicates:
    ``unstable`` (any of throttled, drift, high_cov), ``throttled`` (the device
    throttled during the run, see :func:`profiler.environment.throttled_between`),
    ``drift`` (:func:`detect_drift`), ``high_cov`` (robust CoV > 0.10, see
    :data:`HIGH_COV`),
    ``few_runs`` (n < 100). ``stats`` is :func:`latency_stats` of the samples
    (computed when None); ``env_before``/``env_after`` are
    :func:`profiler.environment.snapshot` documents (or None when not captured).
    ``drift`` is :func:`detect_drift` of the samples when the caller already has
    it (the runner reports it too), else it is computed here.
    """
    flags: list[str] = []
    if not samples_ns:
        return flags
    if stats is None:
        stats = latency_stats(samples_ns)
    throttled = _throttled(env_before, env_after)
    if drift is None:
        drift = detect_drift(samples_ns)
    drifting = bool(drift["drift"])
    cov = stats.get("cov_robust", stats.get("cov"))
    high_cov = cov is not None and cov > HIGH_COV
    if throttled or drifting or high_cov:
        flags.append("unstable")
    if throttled:
        flags.append("throttled")
    if drifting:
        flags.append("drift")
    if high_cov:
        flags.append("high_cov")
    n = stats.get("n", len(samples_ns))
    if n < FEW_RUNS:
        flags.append("few_runs")
    return list(dict.fromkeys(flags))

"""Two-sample comparisons for the regression gate: effects with confidence
intervals, p-values dual to those intervals, Holm's step-down across one check,
and PASS / FAIL / INCONCLUSIVE verdicts against a declared tolerance.

Pure standard library plus ``protocol.result``: every metric function takes each
side's runs as result documents or :class:`protocol.result.Result` objects and
reads them through :func:`protocol.result.read_result` (a document that is not a
readable result is left out and counted as ``unreadable``). hostctl imports this
module lazily, ``bench.agreement`` too. The
method is described for users in ``docs/gate.md``; in short:

* **The unit of replication is a run** (one fresh worker process). Latency
  samples inside a run are autocorrelated, so treating them as independent
  would call any tiny difference significant. With enough runs on each side
  (:func:`runs_suffice`: at least 4 and 4) the effect is the **Hodges-Lehmann
  ratio** of the per-run values (the median of all candidate/baseline ratios of
  runs) with the distribution-free interval that inverts the **Mann-Whitney**
  rank-sum test (Bauer 1972; Hollander & Wolfe, *Nonparametric Statistical
  Methods*, 3rd ed., §4.3), computed on log values so a shift is a ratio.
* With too few runs (typically a single run a side) it falls back to **block
  statistics inside the runs**: each run's samples are cut into at most 20
  consecutive blocks and the block medians (or block p90s) are the replicates.
  That covers within-run noise only, not run-to-run variation; the comparison
  says so (``method``).
* ABBA-interleaved pairs of runs (``paired=True``) use the per-pair ratios:
  their median with the distribution-free sign-test interval.
* Every interval is dual to a p-value of "effect = limit": the (1 - a) interval
  excludes the limit exactly when p <= a. Holm's method on those p-values
  across all comparisons of one check decides which verdicts stand; a rejected
  hypothesis is FAIL when the interval lies above the limit, PASS when below
  (directional decisions after Holm keep the family-wise rate of wrong
  verdicts, false FAIL included, at alpha for independent tests: Finner 1999;
  Guo & Romano 2015).
* Accuracy is non-inferiority on the drop in top-1 (baseline - candidate):
  paired on per-sample correctness when both sides were evaluated on the same
  data (Tango's score interval; the exact McNemar p-value of "no change" is
  reported beside it), else independent proportions (Miettinen-Nurminen).
* Model size is exact: no interval, no part of the Holm family.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Protocol

from protocol.result import AccuracySection, Result, ResultError, read_result

ALPHA = 0.05
"""Family-wise error rate of one check's verdicts (Holm)."""

CONFIDENCE = 0.95
"""Confidence of the interval every comparison reports as ``ci95``."""

PASS = "PASS"
FAIL = "FAIL"
INCONCLUSIVE = "INCONCLUSIVE"

RATIO = "ratio"
"""A comparison whose effect is candidate / baseline (limit 1 + delta)."""
DROP = "drop"
"""A comparison whose effect is baseline - candidate (limit: the largest drop allowed)."""

EXCLUDING_FLAGS = ("throttled", "drift")
"""Runs flagged with any of these are left out of latency comparisons (and counted)."""

BLOCKS = 20
"""At most this many blocks per run when block statistics stand in for runs."""
BLOCK_MIN = 10
"""Each block holds at least this many samples."""

EXACT_MAX_PAIRS = 2500
"""Up to this many pairs (m * n) the Mann-Whitney distribution is exact; beyond,
the normal approximation (continuity-corrected) is used."""

EXACT_MAX_SIGNED = 200
"""Up to this many pairs the signed-rank distribution is exact; beyond, normal."""

_EPS = 1e-9  # tolerance of tail-probability comparisons against float rounding
_NORMAL = NormalDist()


# --------------------------------------------------------------------------- Holm


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    With p-values sorted ascending, ``p~(j) = max over i <= j of min(1, (m - i + 1) p(i))``;
    hypothesis j is rejected at family-wise level alpha exactly when
    ``p~(j) <= alpha``.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def holm_reject(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Which hypotheses Holm's method rejects at family-wise level ``alpha``."""
    return [p <= alpha * (1 + _EPS) for p in holm_adjust(p_values)]


# --------------------------------------------------------------------------- null distributions


@functools.lru_cache(maxsize=128)
def _rank_sum_cdf(m: int, n: int) -> tuple[float, ...]:
    """``P(U <= u)`` for u = 0..m*n, U the Mann-Whitney statistic of m and n values
    under the null (no ties), exactly.

    The counts of arrangements by U are the coefficients of the Gaussian binomial
    ``prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)``: multiply by each numerator,
    divide by each denominator (both O(m*n)).
    """
    size = m * n + 1
    counts = [0] * size
    counts[0] = 1
    for i in range(1, m + 1):
        shift = n + i
        for u in range(size - 1, shift - 1, -1):  # * (1 - q^(n+i))
            counts[u] -= counts[u - shift]
        for u in range(i, size):  # / (1 - q^i)
            counts[u] += counts[u - i]
    total = math.comb(m + n, m)
    cdf: list[float] = []
    running = 0
    for c in counts:
        running += c
        cdf.append(running / total)
    return tuple(cdf)


def rank_sum_tail(m: int, n: int, u: int) -> float:
    """``P(U <= u)`` under the null for the Mann-Whitney U of samples of m and n.

    Exact up to :data:`EXACT_MAX_PAIRS` pairs, else the normal approximation with
    continuity correction (mean m*n/2, variance m*n*(m+n+1)/12).
    """
    if u < 0:
        return 0.0
    if u >= m * n:
        return 1.0
    if m * n <= EXACT_MAX_PAIRS:
        return _rank_sum_cdf(min(m, n), max(m, n))[u]
    mean = m * n / 2.0
    sd = math.sqrt(m * n * (m + n + 1) / 12.0)
    return _NORMAL.cdf((u + 0.5 - mean) / sd)


def sign_tail(n: int, k: int) -> float:
    """``P(B <= k)`` for B ~ Binomial(n, 1/2), exactly."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return math.fsum(math.comb(n, i) for i in range(k + 1)) / 2.0**n


@functools.lru_cache(maxsize=64)
def _signed_rank_cdf(n: int) -> tuple[float, ...]:
    """``P(T <= t)`` for t = 0..n(n+1)/2, T the Wilcoxon signed-rank statistic of n
    pairs under the null (symmetric about zero, no ties), exactly: the counts of
    subsets of {1..n} by their sum."""
    size = n * (n + 1) // 2 + 1
    counts = [0] * size
    counts[0] = 1
    top = 0
    for i in range(1, n + 1):
        top += i
        for t in range(top, i - 1, -1):
            counts[t] += counts[t - i]
    total = 2.0**n
    cdf: list[float] = []
    running = 0
    for c in counts:
        running += c
        cdf.append(running / total)
    return tuple(cdf)


def signed_rank_tail(n: int, t: int) -> float:
    """``P(T <= t)`` under the null for the Wilcoxon signed-rank statistic of n pairs.

    Exact up to :data:`EXACT_MAX_SIGNED` pairs, else the normal approximation with
    continuity correction (mean n(n+1)/4, variance n(n+1)(2n+1)/24).
    """
    if t < 0:
        return 0.0
    total = n * (n + 1) // 2
    if t >= total:
        return 1.0
    if n <= EXACT_MAX_SIGNED:
        return _signed_rank_cdf(n)[t]
    mean = total / 2.0
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
    return _NORMAL.cdf((t + 0.5 - mean) / sd)


def _rank_of_interval(tail: Callable[[int], float], top: int, alpha: float) -> int | None:
    """Largest k >= 1 with ``tail(k - 1) <= alpha / 2``, k <= top; None when there is none."""
    if tail(0) > alpha / 2 * (1 + _EPS):
        return None
    lo, hi = 1, top
    while lo < hi:  # tail is non-decreasing: bisect for the last k that qualifies
        mid = (lo + hi + 1) // 2
        if tail(mid - 1) <= alpha / 2 * (1 + _EPS):
            lo = mid
        else:
            hi = mid - 1
    return lo


def runs_suffice(m: int, n: int, confidence: float = CONFIDENCE) -> bool:
    """True when m and n runs can give a distribution-free interval at ``confidence``.

    The widest interval, min..max of the pairwise ratios, has coverage
    ``1 - 2 / C(m+n, m)``: at 95 % that needs 4 and 4 runs (or 3 and 5).
    """
    return m >= 1 and n >= 1 and rank_sum_tail(m, n, 0) <= (1 - confidence) / 2 * (1 + _EPS)


# --------------------------------------------------------------------------- estimators


class Estimator(Protocol):
    """An effect estimate whose interval can be had at any confidence level."""

    estimate: float
    method: str

    def interval(self, confidence: float) -> tuple[float, float] | None:
        """The two-sided interval at ``confidence`` (None when the data cannot give one)."""

    def p_value(self, null: float) -> float:
        """Two-sided p-value of "effect == null", dual to :meth:`interval`."""


@dataclass(frozen=True)
class Interval:
    """A distribution-free interval and the coverage it actually has (>= the nominal)."""

    low: float
    high: float
    coverage: float


class _LogShift:
    """What the two rank estimators share: ``points``, sorted values on the log
    scale whose k-th smallest and k-th largest bound the interval, and ``_tail``,
    the null distribution of the count of points beyond a hypothesised shift."""

    points: list[float]

    def _tail(self, count: int) -> float:
        raise NotImplementedError

    def interval(self, confidence: float) -> tuple[float, float] | None:
        total = len(self.points)
        k = _rank_of_interval(self._tail, (total + 1) // 2, 1 - confidence)
        if k is None:
            return None
        return math.exp(self.points[k - 1]), math.exp(self.points[total - k])

    def p_value(self, null: float) -> float:
        s0 = math.log(null)
        below = _count_le(self.points, s0)
        above = len(self.points) - _count_lt(self.points, s0)
        return min(1.0, 2.0 * self._tail(min(below, above)))


class RankShift(_LogShift):
    """Two independent samples: the ratio y/x as a shift of logs (Hodges-Lehmann), its
    interval by inverting the Mann-Whitney test (Bauer 1972).

    The interval ``[d(k), d(mn+1-k)]`` of the ordered m*n pairwise log ratios
    covers the true shift with probability ``1 - 2 P(U <= k-1)`` for continuous
    data differing by a shift; k is the largest rank keeping that >= confidence.
    Ties are counted against rejection (a pairwise ratio equal to the limit
    counts on both sides), so the test stays dual to the closed interval.
    """

    def __init__(self, baseline: Sequence[float], candidate: Sequence[float], method: str) -> None:
        if not baseline or not candidate:
            raise ValueError("a rank comparison needs values on both sides")
        if min(baseline) <= 0 or min(candidate) <= 0:
            raise ValueError("ratios need positive values")
        self.m, self.n = len(baseline), len(candidate)
        logs_x = [math.log(v) for v in baseline]
        # the m*n pairwise log ratios
        self.points = sorted(math.log(y) - x for y in candidate for x in logs_x)
        self.estimate = math.exp(_median(self.points))
        self.method = method
        self.n_baseline, self.n_candidate = self.m, self.n

    def _tail(self, count: int) -> float:
        return rank_sum_tail(self.m, self.n, count)


class SignShift:
    """Paired values: the median of the per-pair ratios with the sign-test interval.

    ``[r(k), r(n+1-k)]`` of the n ordered ratios covers the true median ratio
    with probability ``1 - 2 P(B <= k-1)``, B ~ Binomial(n, 1/2), whatever the
    distribution of the ratios.
    """

    def __init__(self, ratios: Sequence[float], method: str = "sign test on paired ratios") -> None:
        if not ratios:
            raise ValueError("a paired comparison needs at least one pair")
        if min(ratios) <= 0:
            raise ValueError("ratios need positive values")
        self.ratios = sorted(ratios)
        self.estimate = _median(self.ratios)
        self.method = method
        self.n_baseline = self.n_candidate = len(ratios)

    def _tail(self, k: int) -> float:
        return sign_tail(len(self.ratios), k)

    def interval(self, confidence: float) -> tuple[float, float] | None:
        n = len(self.ratios)
        k = _rank_of_interval(self._tail, (n + 1) // 2, 1 - confidence)
        if k is None:
            return None
        return self.ratios[k - 1], self.ratios[n - k]

    def coverage(self, confidence: float) -> float | None:
        """The actual coverage of :meth:`interval` at ``confidence`` (None without one)."""
        k = _rank_of_interval(self._tail, (len(self.ratios) + 1) // 2, 1 - confidence)
        return None if k is None else 1.0 - 2.0 * self._tail(k - 1)

    def p_value(self, null: float) -> float:
        below = _count_le(self.ratios, null)
        above = len(self.ratios) - _count_lt(self.ratios, null)
        return min(1.0, 2.0 * self._tail(min(below, above)))


class SignedRankShift(_LogShift):
    """Paired values: the ratio as the Hodges-Lehmann pseudo-median of the per-pair
    log ratios (the median of their n(n+1)/2 Walsh averages), with the interval that
    inverts the Wilcoxon signed-rank test (Hollander & Wolfe, §3.2).

    ``[w(k), w(N+1-k)]`` of the N ordered Walsh averages covers the true shift
    with probability ``1 - 2 P(T <= k-1)`` when the pair log ratios are symmetric
    about it. ABBA interleaving makes them so under "no difference" (each pair is
    exchangeable: the two models swap places every other pair); for a real
    slowdown it assumes the noise of a pair is symmetric on the log scale. It
    needs as many pairs as the sign test (6 at 95 %) but uses the sizes of the
    ratios, not only their signs, so it decides sooner. Ties count against
    rejection, as in :class:`RankShift`.
    """

    def __init__(
        self, ratios: Sequence[float], method: str = "signed-rank on paired ratios"
    ) -> None:
        if not ratios:
            raise ValueError("a paired comparison needs at least one pair")
        if min(ratios) <= 0:
            raise ValueError("ratios need positive values")
        logs = [math.log(r) for r in ratios]
        n = len(logs)
        self.n = n
        # the n(n+1)/2 Walsh averages of the pair log ratios
        self.points = sorted((logs[i] + logs[j]) / 2.0 for i in range(n) for j in range(i, n))
        self.estimate = math.exp(_median(self.points))
        self.method = method
        self.n_baseline = self.n_candidate = n

    def _tail(self, count: int) -> float:
        return signed_rank_tail(self.n, count)


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval | None:
    """Distribution-free interval of the median of ``values`` (sign test), or None
    when n is too small for ``confidence`` (n < 6 at 95 %)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None

    def tail(k: int) -> float:
        return sign_tail(n, k)

    k = _rank_of_interval(tail, (n + 1) // 2, 1 - confidence)
    if k is None:
        return None
    return Interval(ordered[k - 1], ordered[n - k], 1.0 - 2.0 * tail(k - 1))


def _count_le(ordered: Sequence[float], value: float) -> int:
    return bisect.bisect_right(ordered, value)


def _count_lt(ordered: Sequence[float], value: float) -> int:
    return bisect.bisect_left(ordered, value)


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def _z(confidence: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2.0)


def _two_sided(z: float) -> float:
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def _solve_decreasing(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """x in [lo, hi] with f(x) = target for a non-increasing f (clamped to the ends)."""
    if f(lo) <= target:
        return lo
    if f(hi) >= target:
        return hi
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


class _ScoreInterval:
    """A difference of proportions whose interval inverts a score statistic that
    decreases in the hypothesised difference: {d : |score(d)| <= z}."""

    estimate: float

    def score(self, delta: float) -> float:
        raise NotImplementedError

    def interval(self, confidence: float) -> tuple[float, float] | None:
        z = _z(confidence)
        lower = _solve_decreasing(self.score, z, -1.0, 1.0)
        upper = _solve_decreasing(self.score, -z, -1.0, 1.0)
        return lower, upper

    def p_value(self, null: float) -> float:
        return _two_sided(self.score(null))


class PairedProportions(_ScoreInterval):
    """Drop in accuracy on the same samples: ``(b - c) / n`` with Tango's score
    interval (Tango 1998, Statistics in Medicine 17:891-908).

    b = samples the baseline got right and the candidate wrong, c = the reverse,
    n = all samples. At a drop of 0 the score statistic is McNemar's
    ``(b - c) / sqrt(b + c)``; :func:`mcnemar_exact` gives the exact p-value of
    "no change" beside it.
    """

    method = "paired on per-sample correctness (Tango score interval)"

    def __init__(self, b: int, c: int, n: int) -> None:
        if n <= 0 or b < 0 or c < 0 or b + c > n:
            raise ValueError(f"inconsistent paired counts b={b}, c={c}, n={n}")
        self.b, self.c, self.n = b, c, n
        self.estimate = (b - c) / n
        self.n_baseline = self.n_candidate = n

    def score(self, delta: float) -> float:
        """Tango's score statistic for "drop = delta" (decreasing in delta)."""
        b, c, n = self.b, self.c, self.n
        a2 = 2.0 * n
        b2 = -b - c + (2.0 * n - b + c) * delta
        c2 = -c * delta * (1.0 - delta)
        q21 = (math.sqrt(max(b2 * b2 - 4.0 * a2 * c2, 0.0)) - b2) / (2.0 * a2)
        variance = n * (2.0 * q21 + delta * (1.0 - delta))
        numerator = b - c - n * delta
        if variance <= 0.0:
            return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
        return numerator / math.sqrt(variance)


class IndependentProportions(_ScoreInterval):
    """Drop in accuracy between independent evaluations, ``p1 - p2``, with the
    Miettinen-Nurminen score interval (Miettinen & Nurminen 1985, Statistics in
    Medicine 4:213-226; restricted maximum likelihood in closed form as in
    Farrington & Manning 1990, Statistics in Medicine 9:1447-1454)."""

    method = "independent proportions (Miettinen-Nurminen score interval)"

    def __init__(self, x1: int, n1: int, x2: int, n2: int) -> None:
        if n1 <= 0 or n2 <= 0 or not (0 <= x1 <= n1) or not (0 <= x2 <= n2):
            raise ValueError(f"inconsistent counts {x1}/{n1}, {x2}/{n2}")
        self.x1, self.n1, self.x2, self.n2 = x1, n1, x2, n2
        self.estimate = x1 / n1 - x2 / n2
        self.n_baseline, self.n_candidate = n1, n2

    def _restricted(self, delta: float) -> tuple[float, float]:
        """MLE of (p1, p2) under p1 - p2 = delta."""
        n1, n2 = float(self.n1), float(self.n2)
        p1, p2 = self.x1 / n1, self.x2 / n2
        theta = n2 / n1
        a = 1.0 + theta
        b = -(1.0 + theta + p1 + theta * p2 + delta * (theta + 2.0))
        c = delta * delta + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p2
        d = -p1 * delta * (1.0 + delta)
        v = b**3 / (27.0 * a**3) - b * c / (6.0 * a * a) + d / (2.0 * a)
        u_sq = b * b / (9.0 * a * a) - c / (3.0 * a)
        u = math.copysign(math.sqrt(max(u_sq, 0.0)), v) if v != 0 else math.sqrt(max(u_sq, 0.0))
        if u == 0.0:
            r1 = -b / (3.0 * a)
        else:
            w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3.0
            r1 = 2.0 * u * math.cos(w) - b / (3.0 * a)
        r1 = min(1.0, max(0.0, r1))
        r2 = min(1.0, max(0.0, r1 - delta))
        return r1, r2

    def score(self, delta: float) -> float:
        """The Miettinen-Nurminen score statistic for "p1 - p2 = delta"."""
        n1, n2 = self.n1, self.n2
        r1, r2 = self._restricted(delta)
        variance = (r1 * (1 - r1) / n1 + r2 * (1 - r2) / n2) * (n1 + n2) / (n1 + n2 - 1)
        numerator = self.estimate - delta
        if variance <= 0.0:
            return 0.0 if abs(numerator) < 1e-15 else math.copysign(math.inf, numerator)
        return numerator / math.sqrt(variance)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact (conditional) two-sided McNemar p-value: ``2 P(X <= min(b, c))``,
    X ~ Binomial(b + c, 1/2), capped at 1 (1 when there is no discordant pair)."""
    if b + c == 0:
        return 1.0
    return min(1.0, 2.0 * sign_tail(b + c, min(b, c)))


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """One metric of one subject (device x model), before and after :func:`decide`.

    ``kind`` is :data:`RATIO` (effect = candidate / baseline, FAIL above
    ``limit`` = 1 + delta) or :data:`DROP` (effect = baseline - candidate, FAIL
    above ``limit`` = the largest drop allowed).
    """

    metric: str
    kind: str
    limit: float
    estimate: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    """Two-sided p-value of "effect == limit"; None when untested (exact, or no data)."""
    method: str
    baseline: float | None
    """The baseline's figure (median over its runs) in the metric's unit."""
    candidate: float | None
    n_baseline: int = 0
    n_candidate: int = 0
    excluded: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Runs left out, by side then reason (error, throttled, drift, no_value)."""
    note: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    subject: Mapping[str, Any] = field(default_factory=dict)
    """What was compared (device, model, runtime...): set by the caller."""
    exact: bool = False
    """True for figures without measurement noise (model size): decided directly."""
    verdict: str | None = None
    p_adjusted: float | None = None
    decision_confidence: float | None = None
    ci_decision: tuple[float, float] | None = None
    """The interval at Holm's level for this comparison: the verdict is where it lies."""
    estimator: Estimator | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, without the estimator."""
        return {
            "metric": self.metric,
            "kind": self.kind,
            "subject": dict(self.subject),
            "limit": self.limit,
            "estimate": self.estimate,
            "ci95": list(self.ci95) if self.ci95 is not None else None,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "decision_confidence": self.decision_confidence,
            "ci_decision": list(self.ci_decision) if self.ci_decision is not None else None,
            "verdict": self.verdict,
            "method": self.method,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "n_baseline": self.n_baseline,
            "n_candidate": self.n_candidate,
            "excluded": {side: dict(v) for side, v in self.excluded.items()},
            "note": self.note,
            "details": dict(self.details),
        }


def _comparison(
    metric: str,
    kind: str,
    limit: float,
    estimator: Estimator | None,
    *,
    method: str | None = None,
    baseline: float | None,
    candidate: float | None,
    excluded: Mapping[str, Mapping[str, int]] | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Comparison:
    ci = estimator.interval(CONFIDENCE) if estimator is not None else None
    p = estimator.p_value(limit) if estimator is not None else None
    if estimator is not None and ci is None and note is None:
        note = "too few values for a 95 % interval"
    return Comparison(
        metric=metric,
        kind=kind,
        limit=limit,
        estimate=estimator.estimate if estimator is not None else None,
        ci95=ci,
        p_value=p,
        method=method or (estimator.method if estimator is not None else "none"),
        baseline=baseline,
        candidate=candidate,
        n_baseline=getattr(estimator, "n_baseline", 0),
        n_candidate=getattr(estimator, "n_candidate", 0),
        excluded=excluded or {},
        note=note,
        details=details or {},
        estimator=estimator,
    )


Runs = Sequence["Result | Mapping[str, Any] | None"]
"""One side's runs: result documents, or Results already read (None: unreadable)."""


def _read(docs: Runs) -> list[Result | None]:
    """Each run read through :func:`protocol.result.read_result` (once: a Result
    passes through), None for what is not a readable result; order kept."""
    out: list[Result | None] = []
    for doc in docs:
        if doc is None or isinstance(doc, Result):
            out.append(doc)
            continue
        try:
            out.append(read_result(doc))
        except ResultError:
            out.append(None)
    return out


FIGURE_RANGE = (1e-9, 1e12)
"""Figures (ms, MB, bytes) outside this range are readings gone wrong, not data:
left out as ``no_value`` (their logarithms would also overflow an interval)."""


def _positive(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value if FIGURE_RANGE[0] < value < FIGURE_RANGE[1] else None


def _exclusion(run: Result, flags: Iterable[str]) -> str | None:
    if not run.ok:
        return "error"
    for flag in flags:
        if flag in run.flags:
            return flag
    return None


def _select(
    runs: Sequence[Result | None],
    value: Callable[[Result], float | None],
    flags: Iterable[str],
) -> tuple[list[Result], list[float], dict[str, int]]:
    """The usable runs of one side, their values, and the counts of the others by reason
    (unreadable, error, a flag of ``flags``, no_value)."""
    kept: list[Result] = []
    values: list[float] = []
    excluded: dict[str, int] = {}
    flags = tuple(flags)
    for run in runs:
        reason = "unreadable" if run is None else _exclusion(run, flags)
        figure = value(run) if run is not None and reason is None else None
        if figure is None or run is None:
            reason = reason or "no_value"
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        kept.append(run)
        values.append(figure)
    return kept, values, excluded


def _block_values(runs: Iterable[Result], q: float) -> list[float]:
    """Block quantiles (ms) of every run's recorded samples, pooled (see :data:`BLOCKS`)."""
    from profiler.stats import percentile

    out: list[float] = []
    for run in runs:
        samples = run.samples() or []
        n = len(samples)
        k = min(BLOCKS, n // BLOCK_MIN)
        for i in range(k):
            block = sorted(samples[i * n // k : (i + 1) * n // k])
            value = percentile(block, q) / 1e6
            if value > 0:
                out.append(value)
    return out


_QUANTILES = {"p50": 0.5, "p90": 0.9}


def compare_latency(
    baseline: Runs,
    candidate: Runs,
    *,
    percentile: str = "p50",
    max_regression: float = 0.05,
    paired: bool = False,
) -> Comparison:
    """Latency ``percentile`` ("p50" | "p90") of candidate / baseline runs.

    Runs that failed, or are flagged throttled or drift, are left out and
    counted in ``excluded``. ``paired`` means baseline[i] and candidate[i] ran
    next to each other (ABBA): the per-pair ratios are used, and with fewer than
    6 usable pairs there is no interval (never an unpaired fallback, which would
    let drift between rounds into the effect). Unpaired: the per-run values when
    :func:`runs_suffice`, else block statistics inside the runs (the method says
    which).
    """
    if percentile not in _QUANTILES:
        raise ValueError(f"percentile must be one of {', '.join(_QUANTILES)}")
    q = _QUANTILES[percentile]
    metric = f"latency_{percentile}"
    limit = 1.0 + max_regression

    def value(run: Result) -> float | None:
        latency = run.latency
        return _positive(getattr(latency, percentile)) if latency is not None else None

    runs_a, runs_b = _read(baseline), _read(candidate)
    kept_a, xs, out_a = _select(runs_a, value, EXCLUDING_FLAGS)
    kept_b, ys, out_b = _select(runs_b, value, EXCLUDING_FLAGS)
    excluded = {"baseline": out_a, "candidate": out_b}
    base_fig = _median(sorted(xs)) if xs else None
    cand_fig = _median(sorted(ys)) if ys else None
    common: dict[str, Any] = {"baseline": base_fig, "candidate": cand_fig, "excluded": excluded}
    if not xs or not ys:
        side = "baseline" if not xs else "candidate"
        return _comparison(
            metric, RATIO, limit, None, note=f"no usable {side} run", method="none", **common
        )
    if paired:
        pairs = _usable_pairs(runs_a, runs_b, value)
        if len(pairs) >= 6:
            ratios = [y / x for x, y in pairs]
            return _comparison(
                metric,
                RATIO,
                limit,
                SignedRankShift(
                    ratios,
                    f"Hodges-Lehmann over {len(ratios)} interleaved pairs (signed-rank interval)",
                ),
                details={"runs": [len(xs), len(ys)], "pairs": len(ratios)},
                **common,
            )
        # Never fall back to comparing the runs unpaired: the pairing is what keeps
        # the machine's drift between rounds out of the effect. More rounds decide.
        lost = min(len(runs_a), len(runs_b)) - len(pairs)
        return _comparison(
            metric,
            RATIO,
            limit,
            None,
            method="none",
            note=f"{len(pairs)} usable interleaved pairs, 6 needed for an interval "
            f"({lost} of the pairs with both results lost to failed or flagged runs)",
            details={"runs": [len(xs), len(ys)], "pairs": len(pairs)},
            **common,
        )
    if runs_suffice(len(xs), len(ys)):
        estimator: Estimator = RankShift(
            xs, ys, f"Hodges-Lehmann over runs ({len(xs)} vs {len(ys)}, Mann-Whitney interval)"
        )
        return _comparison(
            metric, RATIO, limit, estimator, details={"runs": [len(xs), len(ys)]}, **common
        )
    block_x, block_y = _block_values(kept_a, q), _block_values(kept_b, q)
    what = "block medians" if percentile == "p50" else f"block {percentile}s"
    runs = {"runs": [len(xs), len(ys)], "blocks": [len(block_x), len(block_y)]}
    if not block_x or not block_y:
        return _comparison(
            metric,
            RATIO,
            limit,
            None,
            method="none",
            note=f"{len(xs)} vs {len(ys)} runs are too few for an interval over runs "
            "(4 a side needed) and the results carry no samples",
            details=runs,
            **common,
        )
    estimator = RankShift(
        block_x,
        block_y,
        f"{what} within runs ({len(block_x)} vs {len(block_y)} blocks of "
        f"{len(xs)} vs {len(ys)} runs): covers within-run noise only",
    )
    return _comparison(
        metric,
        RATIO,
        limit,
        estimator,
        note="too few runs for an interval over runs: blocks inside the runs stand in",
        details=runs,
        **common,
    )


def _usable_pairs(
    baseline: Sequence[Result | None],
    candidate: Sequence[Result | None],
    value: Callable[[Result], float | None],
) -> list[tuple[float, float]]:
    pairs: list[tuple[float, float]] = []
    for a, b in zip(baseline, candidate, strict=False):
        if (
            a is None
            or b is None
            or _exclusion(a, EXCLUDING_FLAGS)
            or _exclusion(b, EXCLUDING_FLAGS)
        ):
            continue
        x, y = value(a), value(b)
        if x is not None and y is not None:
            pairs.append((x, y))
    return pairs


def compare_per_run(
    baseline: Runs,
    candidate: Runs,
    *,
    metric: str,
    value: Callable[[Result], float | None],
    max_growth: float = 0.0,
    what: str | None = None,
) -> Comparison:
    """A figure each run has once (peak RSS, init, first inference), candidate /
    baseline over runs: only failed runs are left out (throttling or drift of the
    steady state do not make these figures wrong). A run has one such value, so an
    interval needs 4 runs a side."""
    _, xs, out_a = _select(_read(baseline), lambda r: _positive(value(r)), ())
    _, ys, out_b = _select(_read(candidate), lambda r: _positive(value(r)), ())
    common: dict[str, Any] = {
        "baseline": _median(sorted(xs)) if xs else None,
        "candidate": _median(sorted(ys)) if ys else None,
        "excluded": {"baseline": out_a, "candidate": out_b},
    }
    limit = 1.0 + max_growth
    if not xs or not ys:
        side = "baseline" if not xs else "candidate"
        return _comparison(
            metric, RATIO, limit, None, method="none", note=f"no {side} run has it", **common
        )
    if not runs_suffice(len(xs), len(ys)):
        return _comparison(
            metric,
            RATIO,
            limit,
            None,
            method="none",
            note=f"{len(xs)} vs {len(ys)} runs: {what or metric} needs 4 runs a side "
            "for an interval",
            details={"runs": [len(xs), len(ys)]},
            **common,
        )
    estimator = RankShift(
        xs, ys, f"Hodges-Lehmann over runs ({len(xs)} vs {len(ys)}, Mann-Whitney interval)"
    )
    return _comparison(
        metric, RATIO, limit, estimator, details={"runs": [len(xs), len(ys)]}, **common
    )


def compare_memory(
    baseline: Runs,
    candidate: Runs,
    *,
    max_growth: float = 0.10,
) -> Comparison:
    """Peak RSS of candidate / baseline runs (see :func:`compare_per_run`)."""
    return compare_per_run(
        baseline,
        candidate,
        metric="peak_rss",
        value=lambda run: run.memory.peak_rss,
        max_growth=max_growth,
        what="peak RSS",
    )


def compare_init(baseline: Runs, candidate: Runs, *, max_growth: float = 0.0) -> Comparison:
    """Init (load) time of candidate / baseline runs."""
    return compare_per_run(
        baseline,
        candidate,
        metric="init_ms",
        value=lambda run: run.init_ms,
        max_growth=max_growth,
        what="init time",
    )


def compare_first_inference(
    baseline: Runs, candidate: Runs, *, max_growth: float = 0.0
) -> Comparison:
    """First (cold) inference time of candidate / baseline runs."""
    return compare_per_run(
        baseline,
        candidate,
        metric="first_inference_ms",
        value=lambda run: run.first_inference_ms,
        max_growth=max_growth,
        what="first inference",
    )


def _first_accuracy(docs: Runs) -> AccuracySection | None:
    for run in _read(docs):
        acc = run.accuracy if run is not None and run.ok else None
        if acc is not None and acc.top1 is not None and acc.n:
            return acc
    return None


def compare_accuracy(
    baseline: Runs,
    candidate: Runs,
    *,
    max_drop: float = 0.01,
) -> Comparison:
    """Non-inferiority of top-1: the drop baseline - candidate (a fraction) against
    ``max_drop``. Repeated evaluations of one model on one data set are the same
    figure, not replicates: the first evaluated run of each side is used.
    Paired when both carry per-sample correctness of the same data (same
    ``data_sha256`` and n), else independent proportions."""
    a, b = _first_accuracy(baseline), _first_accuracy(candidate)
    figures: dict[str, Any] = {
        "baseline": a.top1 if a else None,
        "candidate": b.top1 if b else None,
    }
    if a is None or b is None:
        side = "baseline" if a is None else "candidate"
        return _comparison(
            "accuracy_top1",
            DROP,
            max_drop,
            None,
            method="none",
            note=f"no {side} run was evaluated (--eval)",
            **figures,
        )
    same_data = a.data_sha256 is not None and a.data_sha256 == b.data_sha256 and a.n == b.n
    ca, cb = (a.correct(), b.correct()) if same_data else (None, None)
    if ca is not None and cb is not None and len(ca) == len(cb):
        lost = sum(1 for x, y in zip(ca, cb, strict=True) if x and not y)
        gained = sum(1 for x, y in zip(ca, cb, strict=True) if y and not x)
        estimator: Estimator = PairedProportions(lost, gained, len(ca))
        details = {
            "lost": lost,
            "gained": gained,
            "n": len(ca),
            "mcnemar_exact_p": mcnemar_exact(lost, gained),
        }
        return _comparison("accuracy_top1", DROP, max_drop, estimator, details=details, **figures)
    n1, n2 = int(a.n or 0), int(b.n or 0)
    x1, x2 = round((a.top1 or 0.0) * n1), round((b.top1 or 0.0) * n2)
    note = None if same_data else "evaluated on different data (or its hash is unknown)"
    estimator = IndependentProportions(x1, n1, x2, n2)
    return _comparison(
        "accuracy_top1",
        DROP,
        max_drop,
        estimator,
        note=note,
        details={"correct": [x1, x2], "n": [n1, n2]},
        **figures,
    )


def compare_size(
    baseline: Runs,
    candidate: Runs,
    *,
    max_growth: float = 0.0,
) -> Comparison:
    """Model file size, candidate / baseline: exact, FAIL when above 1 + ``max_growth``."""

    def size(docs: Runs) -> float | None:
        for run in _read(docs):
            if run is not None and run.model.size_bytes is not None and run.model.size_bytes > 0:
                return float(run.model.size_bytes)
        return None

    x, y = size(baseline), size(candidate)
    limit = 1.0 + max_growth
    if x is None or y is None:
        return Comparison(
            "model_size",
            RATIO,
            limit,
            None,
            None,
            None,
            "none",
            x,
            y,
            note="model size unknown",
            exact=True,
        )
    ratio = y / x
    return Comparison(
        "model_size",
        RATIO,
        limit,
        ratio,
        (ratio, ratio),
        None,
        "exact (file sizes)",
        x,
        y,
        n_baseline=1,
        n_candidate=1,
        exact=True,
    )


def compare_failures(baseline: Runs, candidate: Runs) -> Comparison:
    """Runs that failed (status error), as fractions of each side's runs: exact, FAIL
    when the candidate fails more often than the baseline. A crash is a regression
    however fast the runs that survived were."""

    def fraction(docs: Runs) -> tuple[float | None, int, int]:
        runs = [r for r in _read(docs) if r is not None]
        failed = sum(1 for r in runs if not r.ok)
        return (failed / len(runs) if runs else None), failed, len(runs)

    (x, fa, na), (y, fb, nb) = fraction(baseline), fraction(candidate)
    return Comparison(
        "failed_runs",
        DROP,
        x if x is not None else 0.0,
        y,
        (y, y) if y is not None else None,
        None,
        "exact (runs that failed)",
        x,
        y,
        n_baseline=na,
        n_candidate=nb,
        exact=True,
        details={"failed": [fa, fb], "runs": [na, nb]},
        note=f"{fb} of {nb} candidate runs failed, {fa} of {na} baseline runs"
        if fa or fb
        else None,
    )


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Tolerances:
    """The limits of one check; a metric whose limit is None is not compared."""

    max_regression: float = 0.05
    """Largest latency slowdown allowed (0.05: 5 %), for p50 and p90."""
    percentiles: tuple[str, ...] = ("p50", "p90")
    max_memory_growth: float | None = None
    """Largest peak-RSS growth allowed (0.10: 10 %)."""
    max_accuracy_drop: float | None = None
    """Largest top-1 drop allowed, as a fraction (0.01: 1 point)."""
    max_size_growth: float | None = None
    """Largest model-size growth allowed (0.0: not a byte bigger)."""
    per_percentile: Mapping[str, float] = field(default_factory=dict)
    """A latency limit of its own for some percentiles (``{"p90": 0.10}``)."""

    def regression_limit(self, percentile: str) -> float:
        """The largest slowdown allowed for ``percentile``."""
        return self.per_percentile.get(percentile, self.max_regression)


def compare_sides(
    baseline: Runs,
    candidate: Runs,
    tolerances: Tolerances = Tolerances(),
    *,
    subject: Mapping[str, Any] | None = None,
    paired: bool = False,
) -> list[Comparison]:
    """Every metric ``tolerances`` asks for, for one subject's two sets of runs."""
    baseline, candidate = _read(baseline), _read(candidate)  # once for every metric
    out = [
        compare_latency(
            baseline,
            candidate,
            percentile=p,
            max_regression=tolerances.regression_limit(p),
            paired=paired,
        )
        for p in tolerances.percentiles
    ]
    if tolerances.max_memory_growth is not None:
        out.append(compare_memory(baseline, candidate, max_growth=tolerances.max_memory_growth))
    if tolerances.max_accuracy_drop is not None:
        out.append(compare_accuracy(baseline, candidate, max_drop=tolerances.max_accuracy_drop))
    if tolerances.max_size_growth is not None:
        out.append(compare_size(baseline, candidate, max_growth=tolerances.max_size_growth))
    if any(r is not None and not r.ok for r in (*baseline, *candidate)):
        out.append(compare_failures(baseline, candidate))
    return [replace(c, subject=dict(subject or {})) for c in out]


def decide(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Verdicts for every comparison of one check, Holm's method across them.

    Tested comparisons (those with a p-value) form the family. With p-values
    ranked ascending, the comparison at rank j is judged on its interval at
    confidence ``1 - alpha / (m - j + 1)`` (``ci_decision``): FAIL when it lies
    wholly above the limit, PASS when wholly below, provided every
    comparison ranked before it was decided too (step-down); otherwise
    INCONCLUSIVE. That is exactly "Holm-adjusted p <= alpha", and with one
    comparison it is "the 95 % interval lies above / below the limit". Exact
    comparisons (model size) are decided on their value; comparisons without
    an interval are INCONCLUSIVE.
    """
    tested = [
        (i, c.p_value)
        for i, c in enumerate(comparisons)
        if c.p_value is not None and not c.exact and c.estimator is not None
    ]
    m = len(tested)
    adjusted_of = dict(
        zip((i for i, _ in tested), holm_adjust([p for _, p in tested]), strict=True)
    )
    # Holm's level at each rank: alpha / m for the smallest p-value, ... alpha for the largest.
    ranked = sorted(tested, key=lambda item: item[1])
    level = {i: 1.0 - alpha / (m - rank) for rank, (i, _) in enumerate(ranked)}
    out: list[Comparison] = []
    for i, c in enumerate(comparisons):
        if c.exact:
            verdict = (
                INCONCLUSIVE if c.estimate is None else (FAIL if c.estimate > c.limit else PASS)
            )
            out.append(replace(c, verdict=verdict))
            continue
        if i not in adjusted_of or c.estimator is None:
            out.append(replace(c, verdict=INCONCLUSIVE))
            continue
        confidence = level[i]
        ci = c.estimator.interval(confidence)
        verdict = INCONCLUSIVE
        if adjusted_of[i] <= alpha * (1 + _EPS) and ci is not None:
            if ci[0] > c.limit:
                verdict = FAIL
            elif ci[1] < c.limit:
                verdict = PASS
        out.append(
            replace(
                c,
                verdict=verdict,
                p_adjusted=adjusted_of[i],
                decision_confidence=confidence,
                ci_decision=ci,
            )
        )
    return out


def overall(comparisons: Sequence[Comparison]) -> str:
    """FAIL if any verdict is FAIL, else INCONCLUSIVE if any is, else PASS."""
    verdicts = {c.verdict for c in comparisons}
    if FAIL in verdicts:
        return FAIL
    if INCONCLUSIVE in verdicts or None in verdicts:
        return INCONCLUSIVE
    return PASS

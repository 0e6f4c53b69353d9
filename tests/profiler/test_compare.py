"""The gate's statistics (profiler.compare) against textbook cases and simulated
data with known effects: interval coverage, Holm's family-wise error, verdicts."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from profiler import compare
from protocol.result import encode_correct, encode_samples

# ---------------------------------------------------------------- textbook cases


def test_holm_worked_example() -> None:
    # The worked example of the Wikipedia article "Holm-Bonferroni method":
    # p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05 -> H1 and H4 rejected, the
    # step-down stops at 0.03 > 0.05 / 2. Adjusted p-values 0.03, 0.06, 0.06, 0.02.
    p = [0.01, 0.04, 0.03, 0.005]
    assert compare.holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert compare.holm_reject(p) == [True, False, False, True]


def test_holm_is_bonferroni_at_the_first_step_and_never_exceeds_one() -> None:
    # 3 x 0.01; then max(0.03, 2 x 0.02); then max(0.04, 1 x 0.035): monotone.
    assert compare.holm_adjust([0.01, 0.02, 0.035]) == pytest.approx([0.03, 0.04, 0.04])
    assert compare.holm_adjust([0.6, 0.7]) == [1.0, 1.0]
    assert compare.holm_adjust([]) == []


def test_mann_whitney_matches_hollander_wolfe_permeability_example() -> None:
    # Hollander & Wolfe (1973), p. 69 (the example of R's wilcox.test): permeability
    # constants x (10 at term) vs y (5 at 12-26 weeks); U = #(x > y) = 35 and the
    # exact one-sided P(U >= 35) = 0.1272.
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    u = sum(1 for a in x for b in y if a > b)
    assert u == 35
    assert 1 - compare.rank_sum_tail(10, 5, u - 1) == pytest.approx(0.1272, abs=5e-5)


def test_mann_whitney_critical_value_of_the_tables() -> None:
    # Published tables: for n1 = n2 = 10, two-sided alpha 0.05, reject when U <= 23.
    assert compare.rank_sum_tail(10, 10, 23) <= 0.025 < compare.rank_sum_tail(10, 10, 24)
    # n1 = n2 = 4: the smallest U has probability 1/70 (C(8,4) = 70).
    assert compare.rank_sum_tail(4, 4, 0) == pytest.approx(1 / 70)


def test_normal_approximation_joins_the_exact_distribution() -> None:
    # Just above EXACT_MAX_PAIRS the approximation takes over; it must agree with
    # the exact tail to within a few thousandths where intervals are cut.
    m = n = 50
    exact = compare._rank_sum_cdf(m, n)
    approx_u = [round(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)) for z in (1.96, 2.5)]
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    for u in approx_u:
        normal = compare._NORMAL.cdf((u + 0.5 - m * n / 2) / sd)
        assert normal == pytest.approx(exact[u], abs=2e-3)


def test_exact_mcnemar_of_the_bentur_example() -> None:
    # Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, example of
    # Bentur et al. (2009): 1 discordant pair one way, 7 the other (n = 21). Exact
    # conditional McNemar p = 0.070 (= 18/256); the asymptotic statistic
    # (b - c)^2 / (b + c) = 4.5, p = 0.034.
    assert compare.mcnemar_exact(1, 7) == pytest.approx(18 / 256)
    tango = compare.PairedProportions(1, 7, 21)
    # Tango's score statistic at "no difference" is McNemar's (b - c) / sqrt(b + c).
    assert tango.score(0.0) == pytest.approx(-6 / math.sqrt(8))
    assert tango.p_value(0.0) == pytest.approx(0.0339, abs=1e-4)
    lo, hi = tango.interval(0.95)  # type: ignore[misc]
    assert tango.estimate == pytest.approx(-6 / 21)
    assert lo < tango.estimate < hi < 0
    # The bounds are where the score statistic crosses -+1.96.
    assert tango.score(lo) == pytest.approx(1.959964, abs=1e-5)
    assert tango.score(hi) == pytest.approx(-1.959964, abs=1e-5)


def test_mcnemar_without_discordant_pairs_finds_nothing() -> None:
    assert compare.mcnemar_exact(0, 0) == 1.0
    lo, hi = compare.PairedProportions(0, 0, 50).interval(0.95)  # type: ignore[misc]
    assert lo < 0 < hi


def test_miettinen_nurminen_matches_newcombe_table() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, example (a)
    # 56/70 - 48/80, method 10 (Miettinen-Nurminen score): 0.0528 to 0.3382.
    est = compare.IndependentProportions(56, 70, 48, 80)
    lo, hi = est.interval(0.95)  # type: ignore[misc]
    assert est.estimate == pytest.approx(0.2)
    assert lo == pytest.approx(0.0528, abs=1e-4)
    assert hi == pytest.approx(0.3382, abs=1e-4)


def test_sign_interval_of_the_median_is_the_textbook_one() -> None:
    # n = 10: the interval between the 2nd and 9th order statistics, coverage
    # 1 - 2 * 11/1024 = 0.9785 (the binomial tables of the sign test).
    values = [float(v) for v in range(1, 11)]
    interval = compare.median_interval(values)
    assert interval == compare.Interval(2.0, 9.0, pytest.approx(1 - 22 / 1024))
    assert compare.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None  # n < 6 at 95 %


def test_signed_rank_matches_hollander_wolfe_depression_example() -> None:
    # Hollander & Wolfe, Example 3.1 (Hamilton scale before/after, n = 9): T+ = 5,
    # two-sided exact p = 0.039, Hodges-Lehmann estimate -0.46, and the 95.1 %
    # interval (-0.786, -0.010). The estimator works on log ratios: feed exp(d).
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    est = compare.SignedRankShift([math.exp(b - a) for a, b in zip(x, y, strict=True)])
    assert math.log(est.estimate) == pytest.approx(-0.46)
    assert est.p_value(1.0) == pytest.approx(0.0390625)
    ci = est.interval(0.95)
    assert ci is not None
    assert [math.log(v) for v in ci] == pytest.approx([-0.786, -0.010])
    # the n = 10 table: P(T <= 8) = 25/1024, the two-sided 5 % critical value
    assert compare.signed_rank_tail(10, 8) == pytest.approx(25 / 1024)


@pytest.mark.parametrize(
    "make",
    [
        lambda: compare.RankShift([1.0, 1.1, 0.9, 1.05, 1.2], [1.3, 1.25, 1.4, 1.2, 1.5], "r"),
        lambda: compare.SignShift([1.1, 0.95, 1.2, 1.3, 1.05, 1.15, 1.02, 0.99, 1.4]),
        lambda: compare.SignedRankShift([1.1, 0.95, 1.2, 1.3, 1.05, 1.15, 1.02, 0.99, 1.4]),
        lambda: compare.PairedProportions(30, 12, 400),
        lambda: compare.IndependentProportions(180, 200, 170, 200),
    ],
)
def test_every_p_value_is_dual_to_its_interval(make: Callable[[], compare.Estimator]) -> None:
    """p(null) <= a exactly when the (1 - a) interval excludes null: the verdict
    read from the interval and the one Holm reaches on p-values always agree."""
    est = make()
    for confidence in (0.8, 0.9, 0.95, 0.99):
        ci = est.interval(confidence)
        assert ci is not None
        for null in [ci[0] * f for f in (0.9, 0.999, 1.001)] + [
            ci[1] * f for f in (0.999, 1.001, 1.1)
        ]:
            if est.estimate < 0.5:  # differences (accuracy), not ratios
                null = null - est.estimate
            excluded = null < ci[0] or null > ci[1]
            if abs(null - ci[0]) < 1e-6 or abs(null - ci[1]) < 1e-6:
                continue  # on the boundary itself
            assert (est.p_value(null) <= 1 - confidence + 1e-9) == excluded, (confidence, null)


# ---------------------------------------------------------------- simulation helpers


def result(
    *,
    p50: float | None,
    p90: float | None = None,
    samples_ns: Sequence[int] | None = None,
    flags: Sequence[str] = (),
    status: str = "ok",
    peak: float | None = 50.0,
    size: int = 1000,
    accuracy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "edgeprof.result/1",
        "status": status,
        "latency_ms": {"p50": p50, "p90": p90 if p90 is not None else p50},
        "memory_mb": {"peak_rss": peak},
        "model": {"size_bytes": size},
        "flags": list(flags),
        "accuracy": accuracy,
    }
    if samples_ns is not None:
        doc["samples"] = encode_samples(samples_ns)
    return doc


def runs(
    rng: random.Random, k: int, ratio: float = 1.0, sigma: float = 0.04
) -> list[dict[str, Any]]:
    """k runs whose p50 varies from run to run (log-normal, sigma) around 10 ms x ratio."""
    return [result(p50=10.0 * ratio * rng.lognormvariate(0, sigma)) for _ in range(k)]


def coverage(
    draws: int, make: Callable[[random.Random], compare.Comparison], truth: float
) -> float:
    rng = random.Random(20260101)
    hit = 0
    for _ in range(draws):
        ci = make(rng).ci95
        assert ci is not None
        hit += ci[0] <= truth <= ci[1]
    return hit / draws


# ---------------------------------------------------------------- coverage


@pytest.mark.parametrize("ratio", [1.0, 1.15])
def test_interval_over_runs_covers_the_true_ratio_95_percent_of_the_time(ratio: float) -> None:
    def draw(rng: random.Random) -> compare.Comparison:
        return compare.compare_latency(runs(rng, 8), runs(rng, 8, ratio), max_regression=0.05)

    assert draw(random.Random(1)).method.startswith("Hodges-Lehmann over runs")
    # Exact for a shift of the log distribution; discreteness makes it >= 95 %.
    assert 0.935 <= coverage(1000, draw, ratio) <= 0.975


@pytest.mark.parametrize("ratio", [1.0, 1.15])
def test_block_interval_of_single_runs_covers_the_true_ratio(ratio: float) -> None:
    # One run a side, 300 independent samples each (gamma, shape 4): the blocks of
    # one run are the replicates; a pure slowdown scales every block median.
    def one_run(rng: random.Random, scale: float) -> dict[str, Any]:
        samples = [int(1e6 * scale * rng.gammavariate(4.0, 0.5)) for _ in range(300)]
        return result(p50=2.0 * scale, samples_ns=samples)

    def draw(rng: random.Random) -> compare.Comparison:
        return compare.compare_latency([one_run(rng, 1.0)], [one_run(rng, ratio)])

    first = draw(random.Random(2))
    assert first.method.startswith("block medians within runs (20 vs 20 blocks of 1 vs 1 runs)")
    assert "within-run noise only" in first.method
    assert 0.93 <= coverage(400, draw, ratio) <= 0.98


def test_paired_rounds_interval_covers_the_true_ratio() -> None:
    def draw(rng: random.Random) -> compare.Comparison:
        base, cand = [], []
        for _ in range(12):  # a machine drifting between rounds hits both sides alike
            machine = rng.lognormvariate(0, 0.2)
            base.append(result(p50=10.0 * machine * rng.lognormvariate(0, 0.03)))
            cand.append(result(p50=11.0 * machine * rng.lognormvariate(0, 0.03)))
        return compare.compare_latency(base, cand, paired=True)

    assert draw(random.Random(3)).method.startswith("Hodges-Lehmann over 12 interleaved pairs")
    assert 0.935 <= coverage(600, draw, 1.1) <= 0.99


def test_paired_accuracy_interval_covers_the_true_drop() -> None:
    # 500 shared samples; the candidate loses 4 % of them and gains 1 %: drop 3 points.
    def draw(rng: random.Random) -> compare.Comparison:
        base = [rng.random() < 0.9 for _ in range(500)]
        cand = []
        for ok in base:
            u = rng.random()
            cand.append((not ok) if (ok and u < 0.04 / 0.9) or (not ok and u < 0.01 / 0.1) else ok)
        return compare.compare_accuracy(
            [result(p50=1.0, accuracy=_accuracy(base))],
            [result(p50=1.0, accuracy=_accuracy(cand))],
            max_drop=0.01,
        )

    assert draw(random.Random(4)).method.startswith("paired on per-sample correctness")
    assert 0.93 <= coverage(600, draw, 0.03) <= 0.97


def test_unpaired_accuracy_interval_covers_the_true_drop() -> None:
    def draw(rng: random.Random) -> compare.Comparison:
        x1 = sum(rng.random() < 0.9 for _ in range(400))
        x2 = sum(rng.random() < 0.85 for _ in range(300))
        return compare.compare_accuracy(
            [result(p50=1.0, accuracy={"top1": x1 / 400, "n": 400})],
            [result(p50=1.0, accuracy={"top1": x2 / 300, "n": 300})],
        )

    assert 0.93 <= coverage(600, draw, 0.05) <= 0.97


def _accuracy(flags: list[bool], sha: str = "d" * 64) -> dict[str, Any]:
    return {
        "top1": sum(flags) / len(flags),
        "n": len(flags),
        "correct": encode_correct(flags),
        "data_sha256": sha,
    }


# ---------------------------------------------------------------- verdicts


def test_family_wise_false_fail_rate_stays_at_five_percent_at_the_boundary() -> None:
    """The hardest case for false FAILs: every comparison of a check sits exactly
    at the limit (1.05 at delta 5 %). Over many checks of 4 comparisons, the
    share of checks with any FAIL stays near or below 5 % with Holm."""
    rng = random.Random(5)
    checks = 400
    failed = 0
    for _ in range(checks):
        comparisons = [
            compare.compare_latency(runs(rng, 10), runs(rng, 10, 1.05), max_regression=0.05)
            for _ in range(4)
        ]
        failed += any(c.verdict == compare.FAIL for c in compare.decide(comparisons))
    # Two-sided tests at 5 %: at most 2.5 % false FAILs expected; allow sampling noise.
    assert failed / checks <= 0.045


def test_a_clear_slowdown_fails_and_a_clear_speedup_passes() -> None:
    rng = random.Random(6)
    slow = compare.compare_latency(runs(rng, 8), runs(rng, 8, 1.3), max_regression=0.05)
    fast = compare.compare_latency(runs(rng, 8), runs(rng, 8, 0.8), max_regression=0.05)
    same = compare.compare_latency(
        runs(rng, 8, sigma=0.02), runs(rng, 8, 1.0, sigma=0.02), max_regression=0.05
    )
    out = compare.decide([slow, fast, same])
    assert [c.verdict for c in out] == [compare.FAIL, compare.PASS, compare.PASS]
    assert out[0].ci_decision is not None and out[0].ci_decision[0] > 1.05
    assert compare.overall(out) == compare.FAIL
    assert compare.overall(out[1:]) == compare.PASS


def test_a_lone_comparison_is_judged_on_its_95_percent_interval() -> None:
    rng = random.Random(7)
    c = compare.decide([compare.compare_latency(runs(rng, 6), runs(rng, 6, 1.2))])[0]
    assert c.decision_confidence == pytest.approx(0.95)
    assert c.ci_decision == c.ci95


def test_holm_holds_back_a_verdict_its_single_interval_would_give() -> None:
    # A borderline slowdown: of the 36 pairwise ratios of 6 vs 6 runs, 3 lie below
    # the limit 1.05, so p = 2 P(U <= 3) = 2 * 7/924 = 0.015: FAIL alone at 95 %,
    # but not among 6 comparisons, where Holm's first threshold is 0.05 / 6.
    rng = random.Random(8)
    values = [10.0, 10.2, 10.4, 10.6, 10.8, 11.0]
    base = [result(p50=v) for v in values]
    cand = [result(p50=v * 1.12) for v in values]
    borderline = compare.compare_latency(base, cand)
    assert borderline.p_value == pytest.approx(14 / 924)
    alone = compare.decide([borderline])[0]
    others = [compare.compare_latency(runs(rng, 6), runs(rng, 6, 1.05)) for _ in range(5)]
    among = compare.decide([borderline, *others])[0]
    assert alone.verdict == compare.FAIL, alone
    assert among.verdict == compare.INCONCLUSIVE
    assert among.p_adjusted is not None and among.p_adjusted > 0.05


def test_throttled_drifting_failed_and_unreadable_runs_are_left_out_and_counted() -> None:
    rng = random.Random(9)
    base = [*runs(rng, 5), result(p50=30.0, flags=["unstable", "throttled"]), {"schema": "x/1"}]
    cand = [*runs(rng, 5), result(p50=30.0, flags=["drift"]), result(p50=None, status="error")]
    c = compare.compare_latency(base, cand)
    assert c.excluded == {
        "baseline": {"throttled": 1, "unreadable": 1},
        "candidate": {"drift": 1, "error": 1},
    }
    assert (c.n_baseline, c.n_candidate) == (5, 5)
    assert c.baseline is not None and c.baseline < 11


def test_too_few_runs_without_samples_is_inconclusive_with_a_reason() -> None:
    c = compare.decide([compare.compare_latency([result(p50=1.0)], [result(p50=2.0)])])[0]
    assert c.verdict == compare.INCONCLUSIVE
    assert c.note is not None and "carry no samples" in c.note


def test_memory_growth_is_judged_over_runs() -> None:
    base = [result(p50=1.0, peak=50.0) for _ in range(5)]
    grown = [result(p50=1.0, peak=60.0) for _ in range(5)]
    same = [result(p50=1.0, peak=50.5) for _ in range(5)]
    out = compare.decide(
        [
            compare.compare_memory(base, grown, max_growth=0.10),
            compare.compare_memory(base, same, max_growth=0.10),
            compare.compare_memory(base[:1], grown[:1], max_growth=0.10),
        ]
    )
    assert [c.verdict for c in out] == [compare.FAIL, compare.PASS, compare.INCONCLUSIVE]
    assert out[0].estimate == pytest.approx(1.2)
    assert out[2].note is not None and "4 runs a side" in out[2].note


def test_accuracy_drop_verdicts_paired_on_the_same_data() -> None:
    rng = random.Random(10)
    base = [rng.random() < 0.9 for _ in range(2000)]
    worse = [ok and rng.random() > 0.06 for ok in base]  # loses ~5.4 points
    same = list(base)
    out = compare.decide(
        [
            compare.compare_accuracy(
                [result(p50=1.0, accuracy=_accuracy(base))],
                [result(p50=1.0, accuracy=_accuracy(worse))],
                max_drop=0.01,
            ),
            compare.compare_accuracy(
                [result(p50=1.0, accuracy=_accuracy(base))],
                [result(p50=1.0, accuracy=_accuracy(same))],
                max_drop=0.01,
            ),
        ]
    )
    assert [c.verdict for c in out] == [compare.FAIL, compare.PASS]
    assert out[0].details["gained"] == 0 and out[0].details["lost"] > 80
    assert out[0].details["mcnemar_exact_p"] < 1e-10
    assert out[1].details["mcnemar_exact_p"] == 1.0


def test_accuracy_on_different_data_is_compared_unpaired_and_says_so() -> None:
    flags = [True] * 90 + [False] * 10
    c = compare.compare_accuracy(
        [result(p50=1.0, accuracy=_accuracy(flags, sha="a" * 64))],
        [result(p50=1.0, accuracy=_accuracy(flags, sha="b" * 64))],
    )
    assert c.method.startswith("independent proportions")
    assert c.note is not None and "different data" in c.note


def test_model_size_is_exact() -> None:
    bigger = compare.compare_size([result(p50=1.0, size=1000)], [result(p50=1.0, size=1001)])
    equal = compare.compare_size([result(p50=1.0, size=1000)], [result(p50=1.0, size=1000)])
    out = compare.decide([bigger, equal])
    assert [c.verdict for c in out] == [compare.FAIL, compare.PASS]
    assert all(c.p_adjusted is None for c in out)  # not part of the Holm family


def test_compare_sides_gives_each_metric_its_own_comparison() -> None:
    rng = random.Random(11)
    tol = compare.Tolerances(max_memory_growth=0.1, max_accuracy_drop=0.01, max_size_growth=0.0)
    out = compare.compare_sides(
        runs(rng, 5), runs(rng, 5), tol, subject={"device": "pi-1", "model": "m.tflite"}
    )
    assert [c.metric for c in out] == [
        "latency_p50",
        "latency_p90",
        "peak_rss",
        "accuracy_top1",
        "model_size",
    ]
    assert all(c.subject == {"device": "pi-1", "model": "m.tflite"} for c in out)
    as_json = [c.to_dict() for c in compare.decide(out)]
    assert as_json[0]["verdict"] in (compare.PASS, compare.INCONCLUSIVE)
    assert as_json[3]["note"] == "no baseline run was evaluated (--eval)"


def test_paired_runs_with_too_few_usable_pairs_are_never_compared_unpaired() -> None:
    base = [result(p50=10.0) for _ in range(8)]
    cand = [result(p50=10.0 * (1.5 if i < 4 else 1.0)) for i in range(8)]
    for run in base[:3]:
        run["flags"] = ["drift"]  # 3 of 8 pairs lost: 5 left
    c = compare.compare_latency(base, cand, paired=True)
    assert c.estimator is None and c.ci95 is None
    assert (
        c.note == "5 usable interleaved pairs, 6 needed for an interval "
        "(3 of the pairs with both results lost to failed or flagged runs)"
    )
    assert compare.decide([c])[0].verdict == "INCONCLUSIVE"

"""The gate's pure part (hostctl.gate, hostctl.gate_files, hostctl.live's plan):
sides, tolerances, pairing, verdicts, exit codes and the CI files, on result
documents made here with known effects."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from hostctl import gate
from hostctl.gate_files import junit_xml, markdown_summary
from hostctl.live import _plan, abba
from protocol.result import read_result


def doc(
    p50: float,
    *,
    device: str = "pi-01",
    model: str = "m.tflite",
    sha: str = "a" * 64,
    runtime: str = "litert",
    threads: int = 4,
    label: str = "v1",
    job: str | None = None,
    size: int = 1000,
    flags: tuple[str, ...] = (),
    status: str = "ok",
) -> dict[str, Any]:
    return {
        "schema": "edgeprof.result/1",
        "status": status,
        "job_id": job or f"{random.getrandbits(48):012x}",
        "label": label,
        "created_at": "2026-12-01T10:00:00Z",
        "device": {"id": device, "tags": ["lab"]},
        "model": {"name": model, "sha256": sha, "size_bytes": size, "format": "tflite"},
        "runtime": {"name": runtime, "version": "2.3.0", "threads": threads},
        "settings": {"runs": 100},
        "latency_ms": {"n": 100, "p50": p50, "p90": p50 * 1.2},
        "init_ms": 10.0,
        "first_inference_ms": 2 * p50,
        "memory_mb": {"peak_rss": 50.0},
        "flags": list(flags),
        "error": None if status == "ok" else {"code": "x", "message": "boom"},
    }


def side(n: int, p50: float, rng: random.Random, **kw: Any) -> list[dict[str, Any]]:
    return [doc(p50 * rng.lognormvariate(0, 0.02), **kw) for _ in range(n)]


def results(docs: list[dict[str, Any]]) -> list[Any]:
    return [read_result(d) for d in docs]


# ---------------------------------------------------------------- sides


def test_a_side_is_a_model_a_json_file_or_a_selection(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    data = tmp_path / "base.json"
    data.write_text("[]")
    live = gate.parse_side(f"{model},runtime=tflite-runtime", "baseline")
    assert (live.kind, live.path, dict(live.filters)) == (
        "live",
        model,
        {"runtime": ("tflite-runtime",)},
    )
    assert gate.parse_side(str(data), "baseline").kind == "json"
    stored = gate.parse_side("label=v1,device=pi-01,device=pi-02", "baseline")
    assert stored.kind == "stored"
    assert dict(stored.filters) == {"label": ("v1",), "device": ("pi-01", "pi-02")}
    assert dict(gate.parse_side("nightly", "baseline").filters) == {"label": ("nightly",)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=red", "unknown selection key 'colour'"),
        ("label=", "label= needs a value"),
        ("label=v1,,device=x", "empty"),
        ("missing.tflite", "missing.tflite: no such file"),
        ("{model},label=v1", "a model file takes only runtime, provider, threads"),
        ("{model},threads=four", "threads= takes a whole number"),
        ("{json},device=pi", "a JSON file of results takes no selection"),
    ],
)
def test_a_bad_side_is_one_line_naming_what_to_give(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "r.json").write_text("[]")
    text = text.format(model=tmp_path / "m.onnx", json=tmp_path / "r.json")
    with pytest.raises(gate.GateUsageError) as err:
        gate.parse_side(text, "candidate")
    assert message in str(err.value)
    assert str(err.value).startswith("candidate ")
    assert "\n" not in str(err.value)


def test_json_sides_read_results_lists_single_documents_and_check_reports(tmp_path: Path) -> None:
    one = doc(1.0)
    (tmp_path / "list.json").write_text(json.dumps([one, one]))
    (tmp_path / "one.json").write_text(json.dumps(one))
    (tmp_path / "check.json").write_text(json.dumps({"runs": {"baseline": [one], "candidate": []}}))
    assert len(gate.read_json_results(tmp_path / "list.json", "baseline")) == 2
    assert len(gate.read_json_results(tmp_path / "one.json", "baseline")) == 1
    assert len(gate.read_json_results(tmp_path / "check.json", "baseline")) == 1
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(gate.GateUsageError, match="not JSON"):
        gate.read_json_results(tmp_path / "bad.json", "baseline")
    (tmp_path / "num.json").write_text("42")
    with pytest.raises(gate.GateUsageError, match="not a list of result documents"):
        gate.read_json_results(tmp_path / "num.json", "baseline")


# ---------------------------------------------------------------- tolerances


def test_tolerances_as_users_write_them() -> None:
    t = gate.build_tolerances(max_regression=["5%"])
    assert t.percentiles == ("p50", "p90") and t.regression_limit("p90") == pytest.approx(0.05)
    t = gate.build_tolerances(max_regression=["3%", "p90=10%"])
    assert t.regression_limit("p50") == pytest.approx(0.03)
    assert t.regression_limit("p90") == pytest.approx(0.10)
    t = gate.build_tolerances(max_regression=["p90=off"], max_accuracy_drop="1pt")
    assert t.percentiles == ("p50",) and t.max_accuracy_drop == pytest.approx(0.01)
    assert gate.build_tolerances(max_memory_growth="10%").max_memory_growth == pytest.approx(0.1)
    for bad, match in (
        (["fast"], "give a percentage like 5%"),
        (["p99=5%"], "'p99' is not p50 or p90"),
        (["p50=off", "p90=off"], "both off"),
        (["-5%"], "between 0% and 1000%"),
    ):
        with pytest.raises(gate.GateUsageError, match=match):
            gate.build_tolerances(max_regression=bad)


# ---------------------------------------------------------------- pairing


def test_pairing_is_per_device_and_settings_and_reports_what_has_no_counterpart() -> None:
    rng = random.Random(1)
    base = side(5, 1.0, rng, device="pi-01") + side(5, 1.0, rng, device="pi-02")
    cand = side(5, 1.0, rng, device="pi-01", sha="b" * 64, model="m2.tflite")
    cand += side(5, 1.0, rng, device="pi-03", sha="b" * 64, model="m2.tflite")
    dims = gate.compared_dimensions(None, None, results(base), results(cand))
    assert dims == ("model",)  # one model a side: the model is what is compared
    subjects, unmatched = gate.pair(results(base), results(cand), dims)
    assert [s.key[0] for s in subjects] == ["pi-01"]
    assert sorted((u.side, u.subject["device"]) for u in unmatched) == [
        ("baseline", "pi-02"),
        ("candidate", "pi-03"),
    ]
    assert "no candidate counterpart" in next(u for u in unmatched if u.side == "baseline").line()
    assert subjects[0].title() == "pi-01 · m.tflite → m2.tflite · litert · 4 threads"


def test_sides_differing_in_a_setting_are_unmatched_with_the_option_that_compares_them() -> None:
    rng = random.Random(2)
    base, cand = results(side(4, 1.0, rng, threads=1)), results(side(4, 1.0, rng, threads=4))
    subjects, unmatched = gate.pair(base, cand, ())
    assert subjects == [] and len(unmatched) == 2
    assert "add --across threads if that is what you compare" in unmatched[0].line()
    subjects, unmatched = gate.pair(base, cand, ("threads",))
    assert len(subjects) == 1 and not unmatched
    assert subjects[0].describe()["threads"] == {"baseline": "1", "candidate": "4"}


def test_selections_naming_different_runtimes_compare_runtimes() -> None:
    a = gate.parse_side("label=r,runtime=litert", "baseline")
    b = gate.parse_side("label=r,runtime=tflite-runtime", "candidate")
    rng = random.Random(3)
    base = results(side(4, 1.0, rng, label="r"))
    cand = results(side(4, 2.5, rng, label="r", runtime="tflite_runtime"))
    dims = gate.compared_dimensions(a, b, base, cand)
    assert "runtime" in dims
    subjects, unmatched = gate.pair(base, cand, dims)
    assert len(subjects) == 1 and not unmatched
    assert "litert → tflite_runtime" in subjects[0].title()


# ---------------------------------------------------------------- verdicts


def _report(base: list[dict[str, Any]], cand: list[dict[str, Any]], **tol: Any) -> gate.GateReport:
    rb, rc = results(base), results(cand)
    dims = gate.compared_dimensions(None, None, rb, rc)
    subjects, unmatched = gate.pair(rb, rc, dims)
    tolerances = gate.build_tolerances(**tol)
    return gate.GateReport(gate.run_check(subjects, tolerances), subjects, unmatched, tolerances)


def test_a_clearly_slower_candidate_fails_with_exit_1_and_a_readable_line() -> None:
    rng = random.Random(4)
    report = _report(side(8, 1.0, rng), side(8, 1.3, rng, sha="b" * 64), max_regression=["5%"])
    assert report.verdict == "FAIL" and report.exit_code() == gate.EXIT_FAIL
    line = gate.summary(report.comparisons[0])
    assert line.startswith("p50 1.3") and "× slower [" in line
    assert line.endswith("FAIL (limit 1.05×)")


def test_the_same_model_passes_and_too_little_data_is_inconclusive_exit_3() -> None:
    rng = random.Random(5)
    same = _report(side(10, 1.0, rng), side(10, 1.0, rng), max_regression=["10%"])
    assert same.verdict == "PASS" and same.exit_code() == gate.EXIT_PASS
    few = _report(side(2, 1.0, rng), side(2, 1.0, rng), max_regression=["10%"])
    assert few.verdict == "INCONCLUSIVE"
    assert few.exit_code() == gate.EXIT_INCONCLUSIVE
    assert few.exit_code("pass") == 0 and few.exit_code("fail") == 1
    reason = gate.why(few.comparisons[0])
    assert reason is not None and "runs are too few for an interval" in reason


def test_an_unmatched_subject_keeps_a_passing_check_from_passing() -> None:
    rng = random.Random(6)
    base = side(10, 1.0, rng) + side(10, 1.0, rng, device="pi-02")
    report = _report(base, side(10, 1.0, rng, sha="b" * 64), max_regression=["10%"])
    assert {c.verdict for c in report.comparisons} == {"PASS"}
    assert report.verdict == "INCONCLUSIVE"
    report.unmatched = []
    assert report.verdict == "PASS"
    report.lost = ["pi-02: no pair of results (timed_out: no result within the timeout)"]
    assert report.verdict == "INCONCLUSIVE"  # a live device that gave nothing
    assert ET.fromstring(junit_xml(report)).get("errors") == "1"


def test_junit_has_one_testcase_per_subject_and_metric_with_the_figures() -> None:
    rng = random.Random(7)
    base = side(8, 1.0, rng) + side(8, 1.0, rng, device="pi-02")
    cand = side(8, 1.5, rng, sha="b" * 64) + side(8, 1.0, rng, device="pi-02", sha="b" * 64)
    report = _report(base, cand, max_regression=["5%"], max_size_growth="0%")
    root = ET.fromstring(junit_xml(report))
    cases = root.findall("testcase")
    assert len(cases) == 6 and root.get("tests") == "6"  # 2 devices x (p50, p90, size)
    failed = [c for c in cases if c.find("failure") is not None]
    assert {c.get("classname") for c in failed} == {"edgeprof.pi-01"}
    assert len(failed) == 2 and root.get("failures") == "2"
    failure = failed[0].find("failure")
    assert failure is not None and "FAIL (limit 1.05×)" in str(failure.get("message"))
    assert "(n = 8), candidate 1.4" in str(failure.text)
    assert "method: Hodges-Lehmann over runs (8 vs 8" in str(failure.text)
    md = markdown_summary(report)
    assert md.startswith("## edgeprof check: FAIL")
    assert "| pi-01 · m.tflite · litert · 4 threads | p50 |" in md
    assert "❌ FAIL" in md and "✅ PASS" in md


def test_the_json_report_keeps_verdicts_tolerances_and_both_sides_runs() -> None:
    rng = random.Random(8)
    report = _report(side(6, 1.0, rng), side(6, 1.3, rng, sha="b" * 64), max_regression=["5%"])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "FAIL" and data["exit_code"] == 1
    assert data["tolerances"]["max_regression"] == {"p50": 0.05, "p90": 0.05}
    assert len(data["runs"]["baseline"]) == 6 and len(data["runs"]["candidate"]) == 6
    assert data["comparisons"][0]["summary"].endswith("FAIL (limit 1.05×)")


def test_compare_reports_every_metric_without_verdicts() -> None:
    rng = random.Random(9)
    base, cand = results(side(6, 1.0, rng)), results(side(6, 2.0, rng, sha="b" * 64))
    subjects, _ = gate.pair(base, cand, ("model",))
    rows = gate.run_compare(subjects)
    assert [r.metric for r in rows] == [
        "latency_p50",
        "latency_p90",
        "peak_rss",
        "init_ms",
        "first_inference_ms",
        "model_size",
    ]
    assert all(r.verdict is None for r in rows)
    first = next(r for r in rows if r.metric == "first_inference_ms")
    assert gate.effect_text(first).startswith("2.0")
    assert gate.summary(first).startswith("first inference 2.0")


# ---------------------------------------------------------------- live plan


def test_live_rounds_interleave_abba_and_send_a_shared_file_once(tmp_path: Path) -> None:
    assert abba(0, 4) == list("ABBAABBA")
    assert abba(1, 2) == list("BAAB")  # a later round goes on with the pattern
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    from hostctl.live import LiveSide

    models, settings, plan = _plan(
        abba(0, 2), LiveSide(a, {"runs": 5}), LiveSide(b, {"runs": 5}), "L"
    )
    assert models == [a, b] and settings == [{"runs": 5}]
    assert plan == [
        (0, 0, "L:baseline"),
        (1, 0, "L:candidate"),
        (1, 0, "L:candidate"),
        (0, 0, "L:baseline"),
    ]
    # one file on two runtimes: one model sent, two settings
    models, settings, plan = _plan(
        abba(0, 1),
        LiveSide(a, {"runtime": "litert"}),
        LiveSide(a, {"runtime": "tflite-runtime"}),
        "L",
    )
    assert models == [a] and len(settings) == 2
    assert plan == [(0, 0, "L:baseline"), (0, 1, "L:candidate")]


# ---------------------------------------------------------------- what review found


def test_a_filter_on_one_side_only_narrows_it_and_pools_nothing() -> None:
    a = gate.parse_side("label=v1,runtime=litert", "baseline")
    b = gate.parse_side("label=v2", "candidate")
    rng = random.Random(10)
    base = results(side(4, 1.0, rng, label="v1"))
    cand = results(
        side(4, 1.0, rng, label="v2") + side(4, 2.5, rng, label="v2", runtime="tflite_runtime")
    )
    dims = gate.compared_dimensions(a, b, base, cand)
    assert "runtime" not in dims
    subjects, unmatched = gate.pair(base, cand, dims)
    assert len(subjects) == 1 and len(subjects[0].candidate) == 4  # litert with litert only
    assert [u.subject["runtime"] for u in unmatched] == ["tflite_runtime"]


def test_a_candidate_whose_runs_crash_fails_however_fast_the_rest_was() -> None:
    rng = random.Random(11)
    cand = side(12, 1.0, rng, sha="b" * 64)
    for d in cand[:3]:
        d["status"], d["error"], d["latency_ms"] = "error", {"code": "crash", "message": "x"}, None
    report = _report(side(12, 1.0, rng), cand, max_regression=["10%"])
    failed = next(c for c in report.comparisons if c.metric == "failed_runs")
    assert failed.verdict == "FAIL" and report.exit_code() == gate.EXIT_FAIL
    assert gate.effect_text(failed) == "3 of 12 failed (baseline 0 of 12)"
    clean = _report(side(6, 1.0, rng), side(6, 1.0, rng, sha="b" * 64), max_regression=["10%"])
    assert "failed_runs" not in {c.metric for c in clean.comparisons}  # no row without failures


def test_names_no_console_or_xml_can_take_are_replaced_and_junit_stays_parseable() -> None:
    rng = random.Random(12)
    evil = "m\x01\ud800[red].tflite"
    report = _report(
        side(6, 1.0, rng, model=evil), side(6, 1.5, rng, model="c.tflite", sha="b" * 64)
    )
    root = ET.fromstring(junit_xml(report))  # well-formed
    assert all("\x01" not in str(c.get("name")) for c in root.iter("testcase"))
    assert "[red]" in str(report.comparisons[0].subject["title"])
    markdown_summary(report).encode("utf-8")  # no lone surrogate left


def test_hostile_json_sides_and_absurd_figures_are_one_line_not_a_crash(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(gate.GateUsageError, match=r"not JSON|nested too deeply"):
        gate.read_json_results(deep, "baseline")
    base = [doc(1e-300) for _ in range(5)] + [doc(1.0) for _ in range(5)]
    cand = [doc(1e300, sha="b" * 64) for _ in range(5)] + [doc(1.0, sha="b" * 64)] * 5
    for d in cand:
        d["init_ms"] = 5e-324
    report = _report(base, cand)
    p50 = report.comparisons[0]
    assert p50.excluded["baseline"]["no_value"] == 5 and p50.excluded["candidate"]["no_value"] == 5
    subjects, _ = gate.pair(results(base), results(cand), ("model",))
    gate.run_compare(subjects)  # no OverflowError


def test_live_pairs_map_back_to_their_sides_and_lost_runs_are_named(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from hostctl.fleet import Failure
    from hostctl.live import LiveOutcome, _pairs_of, _subjects

    order = abba(0, 2)  # A B B A
    docs = [doc(1.0, job="a1"), doc(2.0, job="b1", sha="b" * 64), None, doc(1.0, job="a2")]
    jobs = [SimpleNamespace(device_id="pi-01", result=d) for d in docs]
    pairs, apart = _pairs_of(jobs, order)  # type: ignore[arg-type]
    assert apart == {"pi-01": 0}
    assert [(a and a["job_id"], b and b["job_id"]) for a, b in pairs["pi-01"]] == [
        ("a1", "b1"),
        ("a2", None),  # the second B timed out: that pair is incomplete
    ]
    (subject,) = _subjects(pairs)
    assert [r.job_id for r in subject.baseline] == ["a1"] and subject.paired
    outcome = LiveOutcome([subject], [], failures=[
        Failure("pi-01", "b.onnx", "timed_out", "no result within the timeout"),
        Failure("pi-02", "a.onnx", "failed", "worker crashed"),
    ])  # fmt: skip
    lines = outcome.lost_lines()
    assert lines[0].startswith("pi-01: 1 run(s) without a result (timed_out")
    assert lines[1].startswith("pi-02: no pair of results (failed: worker crashed")


def test_a_pair_whose_runs_did_not_run_back_to_back_is_left_out_and_counted() -> None:
    """An agent runs a job once its files are there: a model it holds runs at once
    while the other downloads. A "pair" with other runs between its two is not a pair."""
    from types import SimpleNamespace

    from hostctl.live import LiveOutcome, _pairs_of, _subjects

    def run(value: float, job: str, started: float, sha: str = "a" * 64) -> dict[str, Any]:
        d = doc(value, job=job, sha=sha)
        d["env"] = {"before": {"time": started}}
        return d

    b = "b" * 64
    # A B B A A B B A sent, but every A ran first (B was downloading): no pair is one
    starts = {"a1": 1, "a2": 2, "a3": 3, "a4": 4, "b1": 5, "b2": 6, "b3": 7, "b4": 8}
    sent = ["a1", "b1", "b2", "a2", "a3", "b3", "b4", "a4"]

    def jobs() -> list[Any]:
        return [
            SimpleNamespace(
                device_id="pi-01",
                result=run(
                    1.0 if j[0] == "a" else 2.0, j, starts[j], "a" * 64 if j[0] == "a" else b
                ),
            )
            for j in sent
        ]

    pairs, apart = _pairs_of(jobs(), abba(0, 4))
    assert apart == {"pi-01": 4} and _subjects(pairs) == []
    outcome = LiveOutcome([], [], not_back_to_back=apart)
    assert outcome.lost_lines() == [
        "pi-01: no pair of results (4 pair(s) left out: their runs did not run back to back, "
        "as when the device lacked a model's file)"
    ]
    # the last two pairs overlap (a3 b3 with a4 between; b4 a4 with b3 between)
    starts = {"a1": 1, "b1": 2, "b2": 3, "a2": 4, "a3": 5, "a4": 6, "b3": 7, "b4": 8}
    pairs, apart = _pairs_of(jobs(), abba(0, 4))
    kept = [(x and x["job_id"], y and y["job_id"]) for x, y in pairs["pi-01"]]
    assert apart == {"pi-01": 2}
    assert kept == [("a1", "b1"), ("a2", "b2"), (None, None), (None, None)]
    (subject,) = _subjects(pairs)
    assert [r.job_id for r in subject.candidate] == ["b1", "b2"]
    # in the order they were sent, every pair stays
    starts = {j: i for i, j in enumerate(sent)}
    pairs, apart = _pairs_of(jobs(), abba(0, 4))
    assert apart == {"pi-01": 0} and len(_subjects(pairs)[0].baseline) == 4
    # the device's monotonic clock, where every run records it, over a wall clock that
    # stepped (NTP on a board without a real-time clock) between b1 and b2
    stepped = jobs()
    for i, job in enumerate(stepped):
        job.result["phases"] = {"steady": {"clock": "CLOCK_MONOTONIC", "start_ns": i * 10**9}}
        job.result["env"]["before"]["time"] = i + (0 if i < 2 else -100)
    pairs, apart = _pairs_of(stepped, abba(0, 4))
    assert apart == {"pi-01": 0}


def test_the_first_round_has_enough_pairs_for_its_first_look() -> None:
    from hostctl.live import FIRST_PAIRS, fewest_pairs

    assert fewest_pairs(2, 0.025) == FIRST_PAIRS == 8  # p50 + p90 on one device
    assert fewest_pairs(4, 0.025) == 9  # two devices: 2 / 2**8 > 0.025 / 4
    assert 2 / 2 ** fewest_pairs(20, 0.025) <= 0.025 / 20 < 2 / 2 ** (fewest_pairs(20, 0.025) - 1)


def _live(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Any,
    **kw: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """run_live over a stand-in for the fleet's push (a unit test of the rounds):
    ``make(device, model_index, label)`` gives each job's result document, or None for
    a job that gave none (a timed-out Failure)."""
    from types import SimpleNamespace

    import hostctl.fleet
    from hostctl.fleet import Failure, PushOutcome
    from hostctl.live import LiveSide, run_live
    from profiler.compare import Tolerances

    calls: list[dict[str, Any]] = []
    clock = iter(range(10**6))

    def fake_push(*_: Any, **push_kw: Any) -> PushOutcome:
        calls.append(push_kw)
        tagged = push_kw["tags"] == ("lab",)
        targets = ["pi-01", "pi-02"] if tagged else list(push_kw["devices"])
        jobs, failures = [], []
        for device in targets:
            for m, _s, job_label in push_kw["plan"]:
                d = make(device, m, job_label)
                if d is None:  # as fleet.push: the job is there, without a result
                    failures.append(Failure(device, "ab"[m] + ".onnx", "timed_out", "no result"))
                else:
                    d["env"] = {"before": {"time": float(next(clock))}}
                jobs.append(SimpleNamespace(device_id=device, result=d))
        docs = [j.result for j in jobs if j.result is not None]
        return PushOutcome(docs, failures, jobs)  # type: ignore[arg-type]

    monkeypatch.setattr(hostctl.fleet, "push", fake_push)
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    options: dict[str, Any] = {
        "tolerances": Tolerances(),
        "devices": ("pi-01",),
        "label": "L",
        "budget_s": 60,
        "round_timeout": 60,
        **kw,
    }
    outcome = run_live(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        baseline=LiveSide(a, {"runs": 50}),
        candidate=LiveSide(b, {"runs": 50}),
        **options,
    )
    return outcome, calls


def test_a_live_check_warms_up_then_sends_its_rounds_to_the_devices_the_warm_up_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up goes to the tag, the rounds to the two devices it reached, sized for
    both; a warm-up run without a result is named, not a lost run."""
    from hostctl.live import fewest_pairs
    from profiler.compare import FAIL

    def make(device: str, m: int, label: str) -> dict[str, Any] | None:
        if label.endswith(":warmup") and device == "pi-02" and m == 1:
            return None
        return doc(1.0 if m == 0 else 1.5, device=device, sha="ab"[m] * 64)

    outcome, calls = _live(tmp_path, monkeypatch, make, devices=(), tags=("lab",))
    warm, first = calls[0], calls[1]
    assert warm["tags"] == ("lab",) and [p[2] for p in warm["plan"]] == ["L:warmup"] * 2
    assert warm["settings"][0]["runs"] == 1 and warm["settings"][0]["min_seconds"] == 0
    assert first["devices"] == ["pi-01", "pi-02"] and first["tags"] == ()
    assert not first["all_devices"]
    assert len(first["plan"]) == 2 * fewest_pairs(4, 0.025) == 18  # 9 pairs, 2 devices
    assert {p[2] for p in first["plan"]} == {"L:baseline", "L:candidate"}
    assert [f.device_id for f in outcome.warmup_failures] == ["pi-02"]
    assert outcome.lost_lines() == [] and outcome.stopped == "a comparison FAILed"
    assert {c.verdict for c in outcome.comparisons} == {FAIL}
    assert outcome.summary()["warmup_failures"][0]["state"] == "timed_out"


def test_a_baseline_that_fails_its_warm_up_stops_the_check_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure every run would repeat: no rounds, no budget spent, one line (exit 2).
    A crash may not repeat: the rounds go on and measure."""
    from hostctl.errors import HostctlError

    def failing(code: str, message: str) -> Any:
        def make(device: str, m: int, label: str) -> dict[str, Any] | None:
            d = doc(1.0 + m, device=device, sha="ab"[m] * 64)
            if m == 0 and label.endswith(":warmup"):
                d.update(status="error", error={"code": code, "message": message})
            return d

        return make

    hostile = "no such input 'x'\n\x1b[31mFAKE: every check PASSED" + "!" * 500
    with pytest.raises(HostctlError) as err:
        _live(tmp_path, monkeypatch, failing("bad_input", hostile))
    line = str(err.value)
    assert "the baseline failed on pi-01 in the warm-up (bad_input: no such input 'x'…)" in line
    assert "\n" not in line and "FAKE" not in line
    outcome, calls = _live(tmp_path, monkeypatch, failing("crashed", "worker died [SIGKILL]"))
    assert len(calls) == 2 and outcome.stopped == "a comparison FAILed"


def test_rounds_stop_when_only_top1_is_undecided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Top-1 comes from one evaluated run a side: more rounds cannot narrow it."""
    from profiler.compare import INCONCLUSIVE, PASS, Tolerances

    def make(device: str, m: int, label: str) -> dict[str, Any] | None:
        d = doc(1.0 + 0.001 * m, device=device, sha="ab"[m] * 64)
        d["accuracy"] = {"top1": 0.5, "n": 40}
        return d

    tolerances = Tolerances(max_regression=0.5, max_accuracy_drop=0.01)
    outcome, calls = _live(tmp_path, monkeypatch, make, tolerances=tolerances, budget_s=10**6)
    verdicts = {c.metric: c.verdict for c in outcome.comparisons}
    assert verdicts["accuracy_top1"] == INCONCLUSIVE
    assert verdicts["latency_p50"] == PASS
    assert len(calls) == 2  # the warm-up and one round
    assert outcome.stopped.startswith("more rounds would hardly decide accuracy_top1")


def test_a_bare_fraction_is_not_taken_for_a_tolerance() -> None:
    assert gate.parse_percent("5", "--max-regression") == pytest.approx(0.05)
    assert gate.parse_percent("2.5%", "--max-regression") == pytest.approx(0.025)
    assert gate.parse_percent("2.5", "--max-regression") == pytest.approx(0.025)
    with pytest.raises(gate.GateUsageError, match="between 0% and 1000%"):
        gate.parse_percent("-1", "--max-regression")
    for text in ("0.05", "1.05"):
        with pytest.raises(gate.GateUsageError, match=r"with its % sign, e\.g\. 5%"):
            gate.parse_percent(text, "--max-regression")
    with pytest.raises(gate.GateUsageError, match="one value per option"):
        gate.build_tolerances(max_regression=["5%,p90=10%"])


def test_a_typo_in_a_model_side_names_the_settings_a_model_file_takes(tmp_path: Path) -> None:
    model = tmp_path / "a.onnx"
    model.write_bytes(b"x")
    with pytest.raises(gate.GateUsageError) as err:
        gate.parse_side(f"{model},thread=1", "baseline")
    assert "unknown setting of a model file 'thread' (keys: runtime, provider, threads)" in str(
        err.value
    )
    with pytest.raises(gate.GateUsageError, match="unknown selection key 'lable'"):
        gate.parse_side("lable=x", "baseline")


def test_a_live_accuracy_limit_without_eval_data_is_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hostctl.cli import app

    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    argv = ["--db", str(tmp_path / "r.sqlite"), "check", "-b", str(a), "-c", str(b),
            "--device", "pi-01", "--max-accuracy-drop", "1pt"]  # fmt: skip
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 2, out.output
    assert "--max-accuracy-drop: a live check measures top-1 only with --eval" in out.stderr


def test_a_check_that_cannot_run_says_why_in_its_json_too(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from hostctl.cli import app

    db = ["--db", str(tmp_path / "r.sqlite")]
    out = CliRunner().invoke(app, [*db, "check", "-b", "lable=x", "-c", "label=y", "--json"])
    assert out.exit_code == 2
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "ERROR" and doc["exit_code"] == 2
    assert doc["schema"] == "edgeprof.check/1" and "unknown selection key 'lable'" in doc["error"]
    assert "unknown selection key 'lable'" in out.stderr  # and the line on stderr, as always
    out = CliRunner().invoke(app, [*db, "compare", "nothing", "here", "--json"])
    assert out.exit_code == 2 and json.loads(out.stdout)["schema"] == "edgeprof.compare/1"
    out = CliRunner().invoke(app, [*db, "compare", "nothing", "here"])
    assert out.exit_code == 2 and out.stdout == ""

"""End to end: `hostctl check` and `hostctl compare` with a real Mosquitto, a real
agent as a separate process and hostctl as a subprocess. A live check runs the
two models interleaved (ABBA) on the device; stored and JSON-file sides read
what such runs left; a pair that does not match is reported, never compared;
a PostgreSQL store serves a check like the SQLite one.

The model pair is made here: MatMul chains of 8 and 16 layers (the candidate
does twice the work). The A/A check uses a tolerance of 25 %: on a shared 2-vCPU
CI runner, run-to-run noise of such 30 µs models is several percent, and
docs/gate.md says to choose the tolerance from A/A runs on your own devices.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostctl.live import abba
from modelkit.onnx_build import build_onnx_matmul_chain
from tests.integration.fleet_support import TINY, Fleet, online_fleet

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEVICE = "gate-dev"
FAST = ["--runs", "20", "--warmup", "2", "--warmup-seconds", "0", "--min-seconds", "0.2"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with online_fleet(tmp_path_factory.mktemp("fleet-gate"), {DEVICE: ["lab"]}) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("chains")
    files = {}
    for layers in (8, 16):
        path = out / f"chain{layers}.onnx"
        path.write_bytes(build_onnx_matmul_chain(layers))
        files[path.stem] = path
    return files


def _check(fleet: Fleet, *args: str, timeout: float = 400.0) -> tuple[int, dict[str, Any], str]:
    done = fleet.host.run("check", *args, "--json", timeout=timeout)
    data = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, data, done.stderr


def _slower(chains: dict[str, Path]) -> list[str]:
    """A live check of chain16 (twice the work) against chain8 on the test device."""
    return ["-b", str(chains["chain8"]), "-c", str(chains["chain16"]), "--device", DEVICE]


def _results(fleet: Fleet, *args: str) -> list[dict[str, Any]]:
    done = fleet.host.run("results", "--no-collect", *args, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert isinstance(data, list)
    return data


@pytest.fixture(scope="module")
def aa_check(fleet: Fleet, chains: dict[str, Path]) -> dict[str, Any]:
    """One live A/A check (the same file on both sides), kept for the tests that read
    what it stored."""
    code, data, err = _check(
        fleet,
        "--baseline", str(chains["chain8"]),
        "--candidate", str(chains["chain8"]),
        "--device", DEVICE,
        "--max-regression", "25%",
        "--budget", "4m",
        "--label", "aa",
        *FAST,
    )  # fmt: skip
    return {"code": code, "data": data, "stderr": err}


def _figures(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (c["metric"], c["estimate"], c["ci95"], c["verdict"], c["n_baseline"], c["n_candidate"])
        for c in data["comparisons"]
    ]


def test_a_live_check_of_a_clearly_slower_candidate_fails_with_exit_1_and_a_junit_failure(
    fleet: Fleet, chains: dict[str, Path], tmp_path: Path
) -> None:
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    code, data, err = _check(
        fleet, *_slower(chains), "--junit", str(junit), "--markdown", str(markdown), *FAST
    )
    assert code == 1, err
    assert data["verdict"] == "FAIL"
    p50 = next(c for c in data["comparisons"] if c["metric"] == "latency_p50")
    assert p50["verdict"] == "FAIL" and p50["ci95"][0] > 1.05
    assert p50["subject"]["model"] == {"baseline": "chain8.onnx", "candidate": "chain16.onnx"}
    # a clear slowdown stops the rounds (the first, or a later one when drifting runs
    # left too few pairs): both models ran interleaved, 8, 16 or 32 ABBA pairs
    assert data["live"]["stopped"] == "a comparison FAILed"
    assert data["live"]["pairs_per_device"] in (8, 16, 32)
    runs = data["live"]["pairs_per_device"]
    assert len(data["runs"]["baseline"]) == len(data["runs"]["candidate"]) == runs
    # ... and ran in the order they were sent, although chain16 had to be transferred
    # first (a warm-up run of each side brings the files; stored, never compared)
    started = sorted(
        (doc["env"]["before"]["time"], role)
        for role in ("baseline", "candidate")
        for doc in data["runs"][role]
    )
    sides = "".join("A" if role == "baseline" else "B" for _, role in started)
    assert sides == "".join(abba(0, runs)), sides
    assert data["live"]["pairs_not_back_to_back"] == 0
    warm = _results(fleet, "--label", f"{data['live']['label']}:warmup")
    assert sorted(r["model"]["name"] for r in warm) == ["chain16.onnx", "chain8.onnx"]
    root = ET.parse(junit).getroot()
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert failures and root.get("failures") == str(len(failures))
    message = str(failures[0].find("failure").get("message"))  # type: ignore[union-attr]
    assert "× slower [" in message and "FAIL (limit 1.05×)" in message
    assert markdown.read_text().startswith("## edgeprof check: FAIL")


def test_a_live_a_a_check_passes(aa_check: dict[str, Any]) -> None:
    data = aa_check["data"]
    assert aa_check["code"] == 0, aa_check["stderr"]
    assert data["verdict"] == "PASS"
    assert {c["metric"] for c in data["comparisons"]} == {"latency_p50", "latency_p90"}
    for c in data["comparisons"]:
        assert c["ci95"][0] < 1.0 < c["ci95"][1] or abs(c["estimate"] - 1.0) < 0.1
        assert "interleaved pairs (signed-rank interval)" in c["method"]
    assert data["live"]["label"] == "aa"


def test_a_stored_selection_and_a_json_artifact_check_like_the_live_runs(
    fleet: Fleet, aa_check: dict[str, Any], tmp_path: Path
) -> None:
    assert aa_check["code"] == 0, aa_check["stderr"]
    n = len(aa_check["data"]["runs"]["baseline"])
    # Unpaired now: run-to-run noise of a loaded runner no longer cancels out, so
    # the same runs may not decide (PASS or INCONCLUSIVE), but never FAIL.
    code, data, err = _check(
        fleet, "-b", "label=aa:baseline", "-c", "label=aa:candidate", "--max-regression", "25%"
    )
    assert (code, data["verdict"]) in ((0, "PASS"), (3, "INCONCLUSIVE")), err
    assert data["unmatched"] == []
    for c in data["comparisons"]:  # the runs, unpaired now (drifting runs left out)
        assert c["method"].startswith("Hodges-Lehmann over runs") and c["n_baseline"] <= n
    # the baseline as a CI artifact: `results --json` written to a file
    stored = fleet.host.run("results", "--no-collect", "--json", "--label", "aa:baseline")
    assert stored.returncode == 0, stored.stderr
    artifact = tmp_path / "baseline.json"
    artifact.write_text(stored.stdout)
    code, from_file, err = _check(
        fleet, "-b", str(artifact), "-c", "label=aa:candidate", "--max-regression", "25%"
    )
    assert code in (0, 3), err
    assert _figures(from_file) == _figures(data)  # the artifact holds the very same runs
    # and `compare` lays every metric side by side, without a verdict
    shown = fleet.host.run("compare", str(artifact), "label=aa:candidate", "--json")
    assert shown.returncode == 0, shown.stderr
    metrics = [c["metric"] for c in json.loads(shown.stdout)["comparisons"]]
    assert metrics[:6] == [
        "latency_p50",
        "latency_p90",
        "peak_rss",
        "init_ms",
        "first_inference_ms",
        "model_size",
    ]
    table = fleet.host.run("compare", str(artifact), "label=aa:candidate")
    assert table.returncode == 0, table.stderr
    assert "first inference" in table.stdout and "chain8.onnx" in table.stdout


def test_a_pair_that_does_not_match_is_reported_not_compared(
    fleet: Fleet, chains: dict[str, Path]
) -> None:
    for threads in ("1", "2"):
        pushed = fleet.host.run(
            "push", str(chains["chain8"]), "-d", DEVICE, "--threads", threads, "--repeat", "2",
            "--label", f"t{threads}", *TINY, "--timeout", "90", "--json",
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        runs = json.loads(pushed.stdout)  # --repeat: two runs, each its own job and worker
        assert len(runs) == 2 and len({r["job_id"] for r in runs}) == 2
    code, data, err = _check(fleet, "-b", "label=t1", "-c", "label=t2")
    assert code == 2 and data["verdict"] == "ERROR" and data["error"].startswith("nothing to")
    (line,) = [x for x in err.splitlines() if x.strip()]
    assert line.startswith("error: nothing to compare")
    assert "threads (1 vs 2)" in line and "--across threads" in line
    code, data, err = _check(fleet, "-b", "label=t1", "-c", "label=t2", "--across", "threads")
    assert code == 3, err  # two runs a side, too short for blocks: no interval
    assert data["comparisons"][0]["subject"]["threads"] == {"baseline": "1", "candidate": "2"}
    assert data["unmatched"] == []
    code, _, err = _check(fleet, "-b", "label=nope", "-c", "label=t2")
    assert code == 2 and "label=nope: no stored result matches" in err


def test_a_postgresql_store_serves_a_check(
    fleet: Fleet, aa_check: dict[str, Any], postgres_db: str
) -> None:
    from hostctl.store import ResultStore
    from tests.support.postgres import reset

    reset(postgres_db)
    with ResultStore(postgres_db) as store:
        for role in ("baseline", "candidate"):
            for doc in aa_check["data"]["runs"][role]:
                assert store.add(doc)
    args = ("-b", "label=aa:baseline", "-c", "label=aa:candidate", "--max-regression", "25%")
    done = fleet.host.run("--db", postgres_db, "check", *args, "--json")
    assert done.returncode in (0, 3), done.stderr
    in_postgres = json.loads(done.stdout)
    n = len(aa_check["data"]["runs"]["baseline"])
    assert all(0 < c["n_baseline"] <= n for c in in_postgres["comparisons"])
    # the same behaviour as the SQLite store the fleet's host uses
    code, in_sqlite, err = _check(fleet, *args)
    assert code == done.returncode, err
    assert _figures(in_postgres) == _figures(in_sqlite)
    reset(postgres_db)


def test_a_baseline_that_cannot_run_stops_the_check_after_the_warm_up(
    fleet: Fleet, chains: dict[str, Path], tmp_path: Path
) -> None:
    """Eval data that does not fit the model: every run would fail, so the check says so
    after the warm-up (exit 2, the device's reason) instead of spending its budget."""
    import numpy as np

    data = tmp_path / "digits.npz"
    np.savez(data, x=np.zeros((10, 8, 8, 1), np.float32), y=np.zeros(10, np.int64))
    code, _, err = _check(
        fleet, *_slower(chains), "--eval", str(data), "--budget", "10m", *FAST, timeout=120
    )
    assert code == 2, err
    assert f"the baseline failed on {DEVICE} in the warm-up (" in err
    assert "fix the model or the options" in err

"""`hostctl study` end to end: a real Mosquitto, two real agents, hostctl as a
subprocess; and the same study on this machine, without a broker."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from modelkit import demo_digits
from tests.integration.fleet_support import TINY, Watcher, online_fleet, subprocess_env
from tests.support.broker import MosquittoBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KINDS = "fp32,blq,fiq,prn"
"""Four of the six kinds: the test covers quantized, calibrated and pruned variants
in half the time of all six."""


def _study_args(tmp_path: Path, *extra: str, kinds: str = KINDS) -> list[str]:
    return [
        "study",
        str(demo_digits.model_path("tflite")),
        "--eval",
        str(demo_digits.eval_path()),
        "--calibration",
        str(demo_digits.calibration_path()),
        "--only",
        kinds,
        "--out",
        str(tmp_path / "variants"),
        *TINY,
        *extra,
    ]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_study_on_two_agents_pushes_each_variant_once_and_groups_them_under_the_source(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    source = _sha(demo_digits.model_path("tflite"))
    html = tmp_path / "s1.html"
    with online_fleet(tmp_path, {"pi-a": ["lab"], "pi-b": ["lab"]}, broker=mosquitto) as fleet:
        watcher = Watcher(mosquitto.port, "edgeprof/v1/blob/#")
        try:
            done = fleet.host.run(
                *_study_args(tmp_path, "--tag", "lab", "--label", "s1", "--html", str(html)),
                timeout=300,
            )
            chunks = [t for t in watcher.topics() if not t.endswith("/request")]
        finally:
            watcher.close()
        assert done.returncode == 0, done.stderr
        stored = fleet.host.run("results", "--no-collect", "--label", "s1", "--json")
    docs = json.loads(stored.stdout)
    assert len(docs) == 8 and all(d["status"] == "ok" for d in docs)
    by = {(d["model"]["variant"]["kind"], d["device"]["id"]): d for d in docs}
    assert sorted(by) == sorted((k, dev) for k in KINDS.split(",") for dev in ("pi-a", "pi-b"))
    # The host attached each variant's recipe: every result names the source it came from.
    assert {d["model"]["variant"]["source_sha256"] for d in docs} == {source}
    assert by["fiq", "pi-a"]["model"]["variant"]["recipe"]["calibration_sha256"] == _sha(
        demo_digits.calibration_path()
    )
    # Top-1 was measured on the devices, on the held-out digits.
    for (kind, _device), doc in by.items():
        top1 = doc["accuracy"]["top1"]
        assert (top1 > 0.97) if kind in ("fp32", "blq", "fiq") else (top1 > 0.85), (kind, top1)
    # Each file (4 variants and the eval data) went out once for both devices.
    files = [tmp_path / "variants" / f"digits_cnn.{n}.tflite" for n in ("fp32", "blq", "fiq")]
    files += [tmp_path / "variants" / "digits_cnn.prn50.tflite", demo_digits.eval_path()]
    per_file = Counter(topic.split("/")[3] for topic in chunks)
    assert per_file == {_sha(f): -(-f.stat().st_size // (64 * 1024)) for f in files}
    # The study table: every variant on both devices, against the fp32 of each.
    out = done.stdout
    assert "digits_cnn.tflite (source" in out and out.count("baseline") >= 2
    assert all(f" {tag} " in out for tag in ("fp32", "blq", "fiq", "prn50"))
    assert "pi-a" in out and "pi-b" in out
    page = html.read_text()
    assert "edgeprof-results" in page and page.count('data-plot="') >= 5


def test_study_without_targets_runs_each_variant_here_in_a_fresh_worker(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "results.sqlite"
    html = tmp_path / "study.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hostctl",
            "--db",
            str(db),
            *_study_args(tmp_path, "--html", str(html), "--json", kinds="fp32,prq"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    docs = json.loads(done.stdout)
    assert [d["model"]["variant"]["kind"] for d in docs] == ["fp32", "prq"]
    label = docs[0]["label"]
    assert label.startswith("study-digits_cnn-") and {d["label"] for d in docs} == {label}
    assert all(d["status"] == "ok" and d["accuracy"]["n"] == 360 for d in docs)
    assert docs[1]["model"]["sparsity"] > 0.45  # prq50: pruned, then int8
    assert docs[1]["model"]["gzip_bytes"] < docs[0]["model"]["gzip_bytes"]
    assert html.is_file() and "edgeprof-results" in html.read_text()
    report = subprocess.run(
        [sys.executable, "-m", "hostctl", "--db", str(db), "report", "--label", label, "-f", "csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    rows = report.stdout.splitlines()
    assert rows[0].startswith("source_sha256,") and len(rows) == 3

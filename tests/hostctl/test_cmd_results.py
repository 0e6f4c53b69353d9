"""`hostctl results` as a user manages stored results: filters, show, rm, prune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hostctl.cli import app
from hostctl.store import ResultStore
from protocol.result import RESULT_SCHEMA

runner = CliRunner()


def _doc(
    job: str, model: str, status: str = "ok", created: str = "2026-11-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "schema": RESULT_SCHEMA,
        "status": status,
        "job_id": job,
        "label": "study",
        "created_at": created,
        "device": {"id": "pi[5]"},
        "model": {"name": model, "sha256": "cd" * 32, "size_bytes": 1000},
        "runtime": {"name": "litert", "version": "2.3.0", "threads": 4},
        "latency_ms": {"n": 100, "p50": 1.5, "ci95_p50": [1.4, 1.6], "p90": 1.8}
        if status == "ok"
        else None,
        "flags": [],
        "error": None
        if status == "ok"
        else {"code": "crashed", "message": "worker crashed [SIGSEGV]"},
    }


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        store.add(_doc("job-a", "mobilenet_int8.tflite", created="2026-11-01T10:00:00Z"))
        store.add(_doc("job-b", "mobilenet_fp32.tflite", created="2026-11-20T10:00:00Z"))
        store.add(_doc("job-c", "mobilenet_int8.tflite", "error", created="2026-11-25T10:00:00Z"))
    return path


def _jobs(db: Path, *args: str) -> list[str]:
    out = runner.invoke(app, ["--db", str(db), "results", "--no-collect", "--json", *args])
    assert out.exit_code == 0, out.stderr
    return [d["job_id"] for d in json.loads(out.stdout)]


def test_filters_by_status_time_and_name_without_extension(db: Path) -> None:
    assert _jobs(db, "--status", "ok") == ["job-a", "job-b"]
    assert _jobs(db, "--status", "error") == ["job-c"]
    assert _jobs(db, "--since", "2026-11-15") == ["job-b", "job-c"]
    assert _jobs(db, "--until", "2026-11-15") == ["job-a"]
    assert _jobs(db, "--model", "mobilenet_int8") == ["job-a", "job-c"]
    assert _jobs(db, "--model", "mobilenet_int8.tflite", "--status", "ok") == ["job-a"]


def test_a_bad_time_is_one_line(db: Path) -> None:
    out = runner.invoke(
        app, ["--db", str(db), "results", "--no-collect", "--since", "yesterday-ish"]
    )
    assert out.exit_code == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--since" in lines[0]


def test_the_table_shows_job_ids_to_act_on(db: Path) -> None:
    out = runner.invoke(app, ["--db", str(db), "results", "--no-collect"], env={"COLUMNS": "120"})
    assert out.exit_code == 0
    assert "job-a" in out.stdout and "pi[5]" in out.stdout


def test_markdown_leaves_errors_out_unless_asked(db: Path) -> None:
    base = ["--db", str(db), "results", "--no-collect", "--format", "markdown"]
    plain = runner.invoke(app, base).stdout
    assert "error: crashed" not in plain and plain.count("mobilenet_") == 2
    assert "error: crashed" in runner.invoke(app, [*base, "--include-errors"]).stdout


def test_show_prints_the_full_panel_of_one_result(db: Path) -> None:
    out = runner.invoke(app, ["--db", str(db), "results", "show", "job-c"], env={"COLUMNS": "160"})
    assert out.exit_code == 0, out.stderr
    assert "worker crashed [SIGSEGV]" in out.stdout and "job-c" in out.stdout
    doc = runner.invoke(app, ["--db", str(db), "results", "show", "job-a", "--json"])
    assert json.loads(doc.stdout)["job_id"] == "job-a"
    missing = runner.invoke(app, ["--db", str(db), "results", "show", "nope"])
    assert missing.exit_code == 1 and "no stored result of job nope" in missing.stderr


def test_rm_removes_named_results_and_names_unknown_ones(db: Path) -> None:
    out = runner.invoke(app, ["--db", str(db), "results", "rm", "job-a", "ghost"])
    assert out.exit_code == 1
    assert "1 result(s) removed" in out.stderr and "ghost" in out.stderr
    assert _jobs(db) == ["job-b", "job-c"]


def test_prune_errors_removes_only_error_results(db: Path) -> None:
    out = runner.invoke(app, ["--db", str(db), "results", "prune", "--errors"])
    assert out.exit_code == 0 and "1 error result(s) removed" in out.stderr
    assert _jobs(db) == ["job-a", "job-b"]
    bare = runner.invoke(app, ["--db", str(db), "results", "prune"])
    assert bare.exit_code == 2 and "--errors" in bare.stderr


def test_a_check_label_alone_points_to_its_baseline_and_candidate_labels(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        for i, role in enumerate(("baseline", "candidate", "warmup")):
            store.add({**_doc(f"job-{i}", "m.onnx"), "label": f"live1:{role}"})
    out = runner.invoke(app, ["--db", str(path), "results", "--no-collect", "--label", "live1"])
    assert out.exit_code == 0
    assert "no stored results match" in out.stderr
    assert "--label live1:baseline and --label live1:candidate" in out.stderr

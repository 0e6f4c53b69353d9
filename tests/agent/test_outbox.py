"""Outbox: results stay on disk until acknowledged."""

from __future__ import annotations

from pathlib import Path

from agent.outbox import Outbox
from protocol.messages import JobResult


def _result(job_id: str) -> JobResult:
    return JobResult(
        "dev1", job_id, {"schema": "edgeprof.result/1", "status": "ok", "job_id": job_id}
    )


def test_results_survive_a_restart_until_removed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put(_result("job-a"))
    outbox.put(_result("job-b"))
    reopened = Outbox(tmp_path)
    assert sorted(r.job_id for r in reopened.pending()) == ["job-a", "job-b"]
    assert "job-a" in reopened
    assert reopened.remove("job-a")
    assert not reopened.remove("job-a")
    assert [r.job_id for r in Outbox(tmp_path).pending()] == ["job-b"]


def test_no_temporary_files_and_no_path_from_job_ids(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put(_result("job-a"))
    assert [p.name for p in tmp_path.iterdir()] == ["job-a.json"]
    assert "../job-a" not in outbox
    assert not outbox.remove("../../etc/passwd")


def test_unreadable_entry_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "job-x.json").write_text("{torn")
    outbox = Outbox(tmp_path)
    assert outbox.pending() == []
    assert not (tmp_path / "job-x.json").exists()

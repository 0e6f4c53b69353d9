"""`hostctl jobs` and the journal's view of jobs (pending, finished, lost), and what
`hostctl cancel` decides before it connects (unknown jobs, finished ones)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from hostctl.cli import app
from hostctl.control import cancel_targets, job_views
from hostctl.store import ResultStore
from tests.support.payloads import result_document

runner = CliRunner()


def _journal(store: ResultStore, job: str, device: str, *, expires_in: float) -> None:
    now = time.time()
    store.journal_job(job_id=job, device_id=device, model_name=f"{job}.onnx", sha256=None,
                      label="l", settings={}, sent_at=now, expires_at=now + expires_in)  # fmt: skip


def _store(tmp_path: Path) -> ResultStore:
    store = ResultStore(tmp_path / "r.sqlite")
    _journal(store, "running1", "pi-1", expires_in=600)
    _journal(store, "gone0001", "pi-1", expires_in=-1)  # its hostctl died; past expiry
    _journal(store, "done0001", "pi-2", expires_in=-1)  # expired, but its result came
    store.add_received(result_document("pi-2", "done0001"))
    _journal(store, "failed01", "pi-2", expires_in=600)
    store.update_job("failed01", "pi-2", "rejected", "bad signature")
    return store


def test_jobs_are_pending_finished_or_lost(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        status = {v.entry.job_id: v.status for v in job_views(store)}
        assert status == {"running1": "pending", "gone0001": "lost", "done0001": "finished",
                          "failed01": "finished"}  # fmt: skip
        assert [v.entry.job_id for v in job_views(store, statuses=["lost"])] == ["gone0001"]
        assert [v.entry.job_id for v in job_views(store, device="pi-2", limit=1)] == ["failed01"]


def test_jobs_json_and_table(tmp_path: Path) -> None:
    _store(tmp_path).close()
    db = str(tmp_path / "r.sqlite")
    done = runner.invoke(app, ["--db", db, "jobs", "--json"])
    assert done.exit_code == 0, done.output
    jobs = {j["job_id"]: j for j in json.loads(done.stdout)}
    assert jobs["done0001"]["result"] == {"status": "ok", "error": None}
    assert jobs["gone0001"]["result"] is None and jobs["gone0001"]["status"] == "lost"
    assert jobs["failed01"]["reason"] == "bad signature"
    lost = runner.invoke(app, ["--db", db, "jobs", "--lost", "--json"])
    assert [j["job_id"] for j in json.loads(lost.stdout)] == ["gone0001"]
    table = runner.invoke(app, ["--db", db, "jobs"])
    assert table.exit_code == 0 and "gone0001" in table.stdout and "lost" in table.stdout
    empty = runner.invoke(app, ["--db", str(tmp_path / "new.sqlite"), "jobs"])
    assert empty.exit_code == 0 and "no journaled jobs" in empty.output


def test_cancel_says_in_one_line_what_it_cannot_cancel(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        targets, decided = cancel_targets(store, ["running1", "done0001", "nosuch01"])
        assert [t.job_id for t in targets] == ["running1"]
        assert [(d.job_id, d.outcome) for d in decided] == [("done0001", "finished"),
                                                            ("nosuch01", "unknown")]  # fmt: skip
    # Nothing to send: no broker needed to say so.
    done = runner.invoke(app, ["--db", str(tmp_path / "r.sqlite"), "--broker",
                               "mqtt://127.0.0.1:9", "cancel", "nosuch01", "done0001"])  # fmt: skip
    assert done.exit_code == 1
    lines = done.output.strip().splitlines()
    assert any("no job nosuch01 in this host's journal" in line for line in lines), lines
    assert any("done0001" in line and "finished" in line for line in lines), lines

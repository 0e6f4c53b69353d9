"""ResultStore: dedupe by job id, filters, schema versioning, unusable files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hostctl.errors import HostctlError
from hostctl.store import SCHEMA_VERSION, ResultStore


def doc(
    job_id: str | None,
    *,
    device: str = "pi-1",
    model: str = "m.tflite",
    label: str | None = None,
    created: str = "2026-01-01T00:00:00Z",
    sha: str = "ab" * 32,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schema": "edgeprof.result/1",
        "status": "ok",
        "label": label,
        "created_at": created,
        "device": {"id": device},
        "model": {"name": model, "sha256": sha},
        "extra_key_from_the_future": [1, 2, 3],
    }
    if job_id is not None:
        out["job_id"] = job_id
    return out


def test_a_result_is_stored_once_and_kept_whole(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert store.add(doc("job1")) is True
        assert store.add(doc("job1")) is False
        assert store.count() == 1
        assert store.get("job1") == doc("job1")


def test_results_without_job_id_get_distinct_generated_ids(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert store.add(doc(None))
        assert store.add(doc(None))
        ids = [d["job_id"] for d in store.query()]
    assert len(set(ids)) == 2
    assert all(i.startswith("local-") for i in ids)


def test_filters_and_limit_keep_the_newest(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.add(
            doc("a", device="pi-1", model="a.tflite", label="base", created="2026-01-01T00:00:01Z")
        )
        store.add(
            doc("b", device="pi-2", model="a.tflite", label="int8", created="2026-01-01T00:00:02Z")
        )
        store.add(
            doc(
                "c",
                device="pi-1",
                model="b.onnx",
                label="int8",
                created="2026-01-01T00:00:03Z",
                sha="cd" * 32,
            )
        )
        assert [d["job_id"] for d in store.query(device="pi-1")] == ["a", "c"]
        assert [d["job_id"] for d in store.query(model="a.tflite")] == ["a", "b"]
        assert [d["job_id"] for d in store.query(model="cdcd")] == ["c"]
        assert [d["job_id"] for d in store.query(label="int8")] == ["b", "c"]
        assert [d["job_id"] for d in store.query(limit=2)] == ["b", "c"]
        assert store.query(device="nope") == []


def test_store_survives_reopen_and_records_its_version(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.add(doc("x"))
    with ResultStore(path) as store:
        assert store.count() == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.close()
    with pytest.raises(HostctlError, match="newer edgeprof"):
        ResultStore(path)


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HostctlError, match="--db"):
        ResultStore(path)

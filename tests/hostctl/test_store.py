"""ResultStore on SQLite and on a real PostgreSQL server, the same suite for both:
keyed by (job, device), filters, delete/prune, the job journal, schema versions."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostctl.errors import HostctlError
from hostctl.store import SCHEMA_VERSION, ResultStore, redact_url

Opener = Callable[[], ResultStore]


@pytest.fixture
def open_store(store_db: str) -> Iterator[Opener]:
    opened: list[ResultStore] = []

    def opener() -> ResultStore:
        opened.append(ResultStore(store_db))
        return opened[-1]

    yield opener
    for store in opened:
        store.close()


def doc(
    job_id: str | None,
    *,
    device: str = "pi-1",
    model: str = "m.tflite",
    label: str | None = None,
    created: str = "2026-01-01T00:00:00Z",
    sha: str = "ab" * 32,
    status: str = "ok",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schema": "edgeprof.result/1",
        "status": status,
        "label": label,
        "created_at": created,
        "device": {"id": device},
        "model": {"name": model, "sha256": sha},
        "extra_key_from_the_future": [1, 2, 3],
    }
    if job_id is not None:
        out["job_id"] = job_id
    return out


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["job_id"] for d in docs]


# ---------------------------------------------------------------- results


def test_a_result_is_stored_once_and_kept_whole(open_store: Opener) -> None:
    store = open_store()
    assert store.add(doc("job1")) is True
    assert store.add(doc("job1")) is False
    assert store.count() == 1
    assert store.get("job1") == doc("job1")


def test_results_are_keyed_by_job_and_device(open_store: Opener) -> None:
    # Another device naming the same job id neither replaces nor hides the first result.
    store = open_store()
    assert store.add(doc("job1", device="pi-1", label="real"))
    assert store.add(doc("job1", device="pi-evil", label="forged"))
    assert store.count() == 2
    assert store.get("job1", "pi-1")["label"] == "real"  # type: ignore[index]
    assert store.get("job1", "pi-evil")["label"] == "forged"  # type: ignore[index]
    assert store.get("job1")["label"] == "real"  # type: ignore[index]  # first stored
    assert store.get("job1", "pi-2") is None


def test_a_received_result_is_new_then_the_same_and_a_different_one_is_an_event(
    open_store: Opener,
) -> None:
    store = open_store()
    assert store.add_received(doc("job1", label="real")) == "new"
    assert store.add_received(doc("job1", label="real")) == "same"
    assert store.add_received(doc("job1", label="other")) == "conflict"
    assert store.add_received(doc("job1", label="other")) == "conflict"  # kept once
    assert store.count() == 1 and store.get("job1", "pi-1")["label"] == "real"  # type: ignore[index]
    (event,) = store.result_events(job_ids=["job1"])
    assert (event["device_id"], event["kind"]) == ("pi-1", "conflict")
    assert event["document"]["label"] == "other"
    # A flood of different results is bounded; what is not kept is said so.
    outcomes = [store.add_received(doc("job1", label=f"x{i}")) for i in range(40)]
    assert outcomes.count("refused") == 40 - 15
    assert len(store.result_events()) == 16
    # Removing the job's results removes its events too.
    assert store.delete(["job1"]) == 1
    assert store.result_events() == []
    with pytest.raises(ValueError, match="job id"):
        store.add_received(doc(None))


def test_results_without_job_id_get_distinct_generated_ids(open_store: Opener) -> None:
    store = open_store()
    assert store.add(doc(None))
    assert store.add(doc(None))
    got = ids(store.query())
    assert len(set(got)) == 2
    assert all(i.startswith("local-") for i in got)


def test_filters_and_limit_keep_the_newest(open_store: Opener) -> None:
    store = open_store()
    store.add(
        doc("a", device="pi-1", model="a.tflite", label="base", created="2026-01-01T00:00:01Z")
    )
    store.add(doc("b", device="pi-2", model="a.onnx", label="int8", created="2026-01-01T00:00:02Z"))
    store.add(
        doc(
            "c",
            device="pi-1",
            model="b.onnx",
            label="int8",
            created="2026-01-01T00:00:03Z",
            sha="cd" * 32,
            status="error",
        )
    )
    assert ids(store.query(device="pi-1")) == ["a", "c"]
    assert ids(store.query(model="a.tflite")) == ["a"]
    assert ids(store.query(model="a")) == ["a", "b"]  # without the extension
    assert ids(store.query(model="cdcd")) == ["c"]  # a SHA-256 prefix
    assert ids(store.query(model="CDCD")) == ["c"]
    assert store.query(model="c") == []  # too short to be a hash prefix
    assert ids(store.query(label="int8")) == ["b", "c"]
    assert ids(store.query(status="error")) == ["c"]
    assert ids(store.query(status="ok", label="int8")) == ["b"]
    assert ids(store.query(job_ids=["c", "a", "zz"])) == ["a", "c"]
    assert store.query(job_ids=[]) == []
    assert ids(store.query(limit=2)) == ["b", "c"]
    assert store.query(device="nope") == []


def test_time_filters_take_dates_times_and_offsets(open_store: Opener) -> None:
    store = open_store()
    store.add(doc("old", created="2025-12-31T23:59:59Z"))
    store.add(doc("mid", created="2026-01-01T12:00:00Z"))
    store.add(doc("new", created="2026-01-02T08:00:00+02:00"))  # 06:00 UTC
    assert ids(store.query(since="2026-01-01")) == ["mid", "new"]
    assert ids(store.query(until="2026-01-01T12:00:00Z")) == ["old", "mid"]  # inclusive
    assert ids(store.query(since="2026-01-02T05:00:00", until="2026-01-02T07:00Z")) == ["new"]
    with pytest.raises(HostctlError, match="--since 'yesterday' is not a time"):
        store.query(since="yesterday")


def test_results_are_ordered_by_creation_time_not_arrival(open_store: Opener) -> None:
    store = open_store()
    store.add(doc("late", created="2026-01-01T00:00:09Z"))
    store.add(doc("early", created="2026-01-01T00:00:01Z"))
    store.add(doc("same-1", created="2026-01-01T00:00:05Z"))
    store.add(doc("same-2", created="2026-01-01T00:00:05Z"))  # a tie: arrival order
    assert ids(store.query()) == ["early", "same-1", "same-2", "late"]


def test_delete_and_prune_errors(open_store: Opener) -> None:
    store = open_store()
    store.add(doc("keep"))
    store.add(doc("gone", device="pi-1"))
    store.add(doc("gone", device="pi-2"))
    store.add(doc("bad-1", status="error"))
    store.add(doc("bad-2", status="error", device="pi-2"))
    assert store.delete(["gone", "nope"]) == 2
    assert store.delete([]) == 0
    assert store.prune_errors() == 2
    assert ids(store.query()) == ["keep"]
    assert store.prune_errors() == 0


def test_store_survives_reopen_and_records_its_version(open_store: Opener, store_db: str) -> None:
    first = open_store()
    first.add(doc("x"))
    first.journal_job(**job("j1"))
    first.close()
    again = open_store()
    assert again.count() == 1
    assert again.sent_to("j1", "pi-1")
    assert _version(store_db) == SCHEMA_VERSION


def test_a_store_from_a_newer_version_is_refused(open_store: Opener, store_db: str) -> None:
    open_store().close()
    _set_version(store_db, SCHEMA_VERSION + 5)
    with pytest.raises(HostctlError, match="newer edgeprof"):
        ResultStore(store_db)


def _version(backend: str) -> int:
    if backend.startswith("postgresql"):
        import psycopg

        with psycopg.connect(backend) as conn:
            return int(conn.execute("SELECT version FROM edgeprof_schema").fetchone()[0])  # type: ignore[index]
    return int(sqlite3.connect(backend).execute("PRAGMA user_version").fetchone()[0])


def _set_version(backend: str, version: int) -> None:
    if backend.startswith("postgresql"):
        import psycopg

        with psycopg.connect(backend, autocommit=True) as conn:
            conn.execute("UPDATE edgeprof_schema SET version = %s", (version,))
        return
    con = sqlite3.connect(backend)
    con.execute(f"PRAGMA user_version = {version}")
    con.close()


# ---------------------------------------------------------------- journal


def job(job_id: str, device: str = "pi-1", **overrides: Any) -> dict[str, Any]:
    now = time.time()
    fields: dict[str, Any] = {
        "job_id": job_id,
        "device_id": device,
        "model_name": "m.tflite",
        "sha256": "ab" * 32,
        "label": "base",
        "settings": {"runs": 100, "threads": 1},
        "sent_at": now,
        "expires_at": now + 600,
    }
    fields.update(overrides)
    return fields


def test_the_journal_keeps_what_the_host_vouched_for_about_the_model(
    open_store: Opener,
) -> None:
    store = open_store()
    facts = {"variant": {"kind": "prn", "recipe": {"tool": "edgeprof"}}, "gzip_bytes": 123}
    store.journal_job(**job("v1"), model_facts=facts)
    store.journal_job(**job("plain"))
    entry = store.get_job("v1", "pi-1")
    assert entry is not None and entry.model_facts == facts
    plain = store.get_job("plain", "pi-1")
    assert plain is not None and plain.model_facts == {}


def test_the_journal_knows_where_each_job_went(open_store: Opener) -> None:
    store = open_store()
    assert store.journal_job(**job("j1", "pi-1"))
    assert not store.journal_job(**job("j1", "pi-1"))  # a re-send journals nothing new
    assert store.sent_to("j1", "pi-1")
    assert not store.sent_to("j1", "pi-evil")
    assert not store.sent_to("nope", "pi-1")
    assert store.job_devices("j1") == ["pi-1"]
    entry = store.get_job("j1", "pi-1")
    assert entry is not None
    assert (entry.state, entry.model_name, entry.label) == ("sent", "m.tflite", "base")
    assert entry.settings == {"runs": 100, "threads": 1}
    assert entry.pending and not entry.expired()
    assert json.loads(json.dumps(entry.to_dict()))["model"]["sha256"] == "ab" * 32


def test_job_states_move_forward_never_back_to_pending(open_store: Opener) -> None:
    store = open_store()
    store.journal_job(**job("j1"))
    assert store.update_job("j1", "pi-1", "running")
    assert store.update_job("j1", "pi-1", "failed", "model crashed [native_crash]")
    assert not store.update_job("j1", "pi-1", "running")  # a late event after the end
    entry = store.get_job("j1", "pi-1")
    assert entry is not None and (entry.state, entry.reason) == (
        "failed",
        "model crashed [native_crash]",
    )
    assert not entry.pending
    assert not store.update_job("j1", "pi-2", "succeeded")  # never sent there
    assert store.update_job("j1", "pi-1", "succeeded")  # finished to finished is allowed


def test_jobs_are_listed_by_state_device_and_time(open_store: Opener) -> None:
    store = open_store()
    t0 = 1_800_000_000.0
    store.journal_job(**job("a", "pi-1", sent_at=t0, expires_at=t0 + 60))
    store.journal_job(**job("b", "pi-2", sent_at=t0 + 10, expires_at=t0 + 70))
    store.journal_job(**job("c", "pi-1", sent_at=t0 + 20, expires_at=t0 + 80))
    store.update_job("b", "pi-2", "succeeded")
    store.add(doc("c", device="pi-1"))  # c's result came back, its state is stale
    assert [j.job_id for j in store.jobs()] == ["a", "b", "c"]
    assert [j.job_id for j in store.jobs(pending=True)] == ["a", "c"]
    assert [j.job_id for j in store.jobs(pending=False)] == ["b"]
    assert [j.job_id for j in store.jobs(device="pi-1")] == ["a", "c"]
    assert [j.job_id for j in store.jobs(states=["succeeded"])] == ["b"]
    assert [j.job_id for j in store.jobs(job_ids=["c", "b"])] == ["b", "c"]
    assert [j.job_id for j in store.jobs(since=t0 + 5, until=t0 + 15)] == ["b"]
    assert [j.job_id for j in store.jobs(limit=1)] == ["c"]
    # At t0 + 75, a has expired with no result: lost. c expired too, but its result is here.
    assert [j.job_id for j in store.lost_jobs(now=t0 + 75)] == ["a"]
    assert store.lost_jobs(now=t0 + 30) == []


# ---------------------------------------------------------------- SQLite specifics


def test_a_version_1_sqlite_store_is_migrated_keeping_every_result(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE results (
            job_id TEXT PRIMARY KEY, device_id TEXT, model_name TEXT, sha256 TEXT,
            label TEXT, status TEXT, created_at TEXT,
            stored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            document TEXT NOT NULL);
        PRAGMA user_version = 1;
        """
    )
    for job_id, device, created in (("j2", "pi-2", "2026-01-02T00:00:00Z"), ("j1", None, None)):
        document = doc(job_id, device=device or "", created=created or "")
        con.execute(
            "INSERT INTO results (job_id, device_id, model_name, sha256, label, status, "
            "created_at, document) VALUES (?, ?, 'm.tflite', ?, NULL, 'ok', ?, ?)",
            (job_id, device, "ab" * 32, created, json.dumps(document)),
        )
    con.commit()
    con.close()
    with ResultStore(path) as store:
        assert store.count() == 2
        assert store.get("j2", "pi-2") is not None
        assert store.get("j1", "") is not None  # no device id: keyed by ""
        assert ids(store.query(model="m")) == ["j2", "j1"]  # j1 stored later, no creation time
        assert store.journal_job(**job("new"))
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_2_store_keeps_its_journal_when_it_learns_model_facts(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE jobs (
            job_id TEXT NOT NULL, device_id TEXT NOT NULL, model_name TEXT, sha256 TEXT,
            label TEXT, settings TEXT NOT NULL, sent_at REAL NOT NULL, expires_at REAL,
            state TEXT NOT NULL, reason TEXT, updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, device_id));
        CREATE TABLE results (job_id TEXT NOT NULL, device_id TEXT NOT NULL, model_name TEXT,
            model_stem TEXT, sha256 TEXT, label TEXT, status TEXT, created_at TEXT,
            created_ts REAL, stored_at TEXT NOT NULL, document TEXT NOT NULL,
            PRIMARY KEY (job_id, device_id));
        INSERT INTO jobs VALUES ('old', 'pi-1', 'm.tflite', NULL, NULL, '{}', 1.0, NULL,
            'succeeded', NULL, 1.0);
        PRAGMA user_version = 2;
        """
    )
    con.close()
    with ResultStore(path) as store:
        old = store.get_job("old", "pi-1")
        assert old is not None and old.state == "succeeded" and old.model_facts == {}
        assert store.journal_job(**job("new"), model_facts={"gzip_bytes": 9})
        new = store.get_job("new", "pi-1")
        assert new is not None and new.model_facts == {"gzip_bytes": 9}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HostctlError, match="--db"):
        ResultStore(path)


# ---------------------------------------------------------------- PostgreSQL specifics


def test_an_unreachable_postgres_server_is_one_clear_line() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://edgeprof:secret@127.0.0.1:1/nowhere"
    with pytest.raises(HostctlError) as err:
        ResultStore(url)
    message = str(err.value)
    assert message.startswith("cannot connect to the results store postgresql://edgeprof:***@")
    assert "secret" not in message and "\n" not in message


def test_passwords_never_reach_messages() -> None:
    assert (
        redact_url("postgresql://u:pw@db.example:5432/r") == "postgresql://u:***@db.example:5432/r"
    )
    assert redact_url("postgresql://u@db/r") == "postgresql://u@db/r"


def test_two_stores_on_one_database_share_results(postgres_db: str) -> None:
    # What a team gets: one runner stores, another (a later CI job) reads.
    from tests.support.postgres import reset

    reset(postgres_db)
    with ResultStore(postgres_db) as writer, ResultStore(postgres_db) as reader:
        writer.add(doc("shared", label="baseline"))
        writer.journal_job(**job("shared"))
        assert ids(reader.query(label="baseline")) == ["shared"]
        assert reader.sent_to("shared", "pi-1")
        assert writer.path == reader.path  # one persistent MQTT session per store
        assert writer.backend == "postgresql"
    reset(postgres_db)

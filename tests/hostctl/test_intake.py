"""Every payload the host reads, validated before use (hostctl.intake): the named
hostile cases of issue 7 and property-based ones, through the code a push and
`collect` run — a bad message costs one line naming the device and the topic,
never an exception; a result is stored only from the device its job was sent
to, and only what was stored is acknowledged."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostctl.cmd_devices import _hardware, _runtimes
from hostctl.fleet import Blob, Fleet, Pusher
from hostctl.intake import read_message
from hostctl.store import ResultStore
from protocol import topics
from protocol.messages import (
    ChunkRequest,
    DeviceState,
    JobEvent,
    JobResult,
    ResultAck,
)
from protocol.signing import SigningKey, open_envelope
from tests.support.payloads import (
    JSON_VALUES,
    PATHS,
    info_message,
    mutate,
    result_document,
    valid_message,
)

KEY = SigningKey(b"\x02" * 32)
TRUSTED = {KEY.key_id: KEY.public_key}


_doc = result_document
_info = info_message


class RecordingSession:
    """Stands in for the broker connection (a unit test of the fleet module): keeps
    what the host publishes; nothing arrives by itself."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.published.append((topic, payload))

    def get(self, timeout: float) -> None:
        return None

    def wait_published(self, timeout: float = 10.0) -> None:
        return None

    def acks(self) -> list[tuple[str, str]]:
        """(device, job) of every ack sent."""
        out = []
        for topic, payload in self.published:
            if topic.endswith("/job"):
                message = open_envelope(payload, TRUSTED, now=time.time()).message
                if isinstance(message, ResultAck):
                    out += [(message.device_id, job) for job in message.job_ids]
        return out

    def chunks(self) -> list[str]:
        return [t for t, _ in self.published if topics.parse(t).kind == "chunk"]

    def chunk_bytes(self) -> int:
        return sum(len(p) for t, p in self.published if topics.parse(t).kind == "chunk")


def _fleet() -> Fleet:
    fleet = Fleet()
    for device in ("pi-a", "pi-b", "evil"):
        fleet.update(topics.state(device), DeviceState(device, "online", 1, 1.0).to_bytes())
        fleet.update(topics.info(device), _info(device, cores=4).to_bytes())
    return fleet


def _pusher(
    directory: Path, store: ResultStore, chunks: int = 8
) -> tuple[Pusher, RecordingSession]:
    model = directory / "m.tflite"
    model.write_bytes(b"TFL3" + bytes(range(256)) * (4 * chunks))
    blob = Blob.from_file(model, fmt="tflite", chunk_size=1024)
    session = RecordingSession()
    pusher = Pusher(session, store, KEY, fleet=_fleet())  # type: ignore[arg-type]
    for device in ("pi-a", "pi-b"):
        pusher.journal(pusher.add_job(device, blob, {"runs": 3}, None, 60.0))
    return pusher, session


@pytest.fixture(autouse=True)
def _fresh_line_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the rate limiter's quota unused (it is per process)."""
    from hostctl import intake
    from protocol.ratelimit import LogLimiter

    monkeypatch.setattr(intake, "_lines", LogLimiter(intake.logger, per_minute=10))


@pytest.fixture
def push(tmp_path: Path) -> Iterator[tuple[Pusher, RecordingSession, ResultStore]]:
    with ResultStore(tmp_path / "r.sqlite") as store:
        pusher, session = _pusher(tmp_path, store)
        yield pusher, session, store


def _job(pusher: Pusher, device: str) -> str:
    return next(j.job_id for j in pusher.jobs.values() if j.device_id == device)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- the named cases ---------------------------------------------------------------
def test_a_retained_state_of_100000_brackets_is_one_line_naming_device_and_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = _fleet()
    topic = topics.state("evil")
    for payload, why in ((b"[" * 100_000, "exceeds the limit"), (b"[" * 10_000, "nests deeper")):
        caplog.clear()
        assert fleet.update(topic, payload) is None
        (line,) = _lines(caplog)
        assert "device evil" in line and topic in line and why in line
    assert fleet.devices["evil"].status == "online"


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("device.id a list", {"device": {"id": ["pi-a"]}}),
        ("job_id a list", {"job_id": ["x"]}),
        ("error a string", {"status": "error", "error": "boom"}),
        ("device a string", {"device": "pi-a"}),
        ("no schema", {"schema": None}),
        ("a newer schema", {"schema": "edgeprof.result/9"}),
    ],
)
def test_single_hostile_results_are_skipped_with_one_line(
    push: tuple[Pusher, RecordingSession, ResultStore],
    caplog: pytest.LogCaptureFixture,
    name: str,
    change: dict[str, Any],
) -> None:
    pusher, session, store = push
    job = _job(pusher, "pi-a")
    body = {"type": "result", "v": 1, "device_id": "pi-a", "job_id": job}
    body["result"] = {k: v for k, v in {**_doc("pi-a", job), **change}.items() if v is not None}
    topic = topics.job_result("pi-a", job)
    pusher.handle(topic, json.dumps(body).encode())
    assert store.count() == 0 and session.acks() == [], name
    (line,) = _lines(caplog)
    assert "device pi-a" in line and topic in line
    # The real result still lands.
    pusher.handle(topic, JobResult("pi-a", job, _doc("pi-a", job)).to_bytes())
    assert pusher.jobs[job].state == "succeeded" and session.acks() == [("pi-a", job)]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type": "result", "v": 1, "device_id": "pi-a", "job_id": "j", "result": NaN}',
        b'{"type": "event", "v": 1, "device_id": "pi-a", "job_id": "j", "state": "running", '
        b'"ts": Infinity}',
        b'{"type": "event", "v": 1, "device_id": ["pi-a"], "job_id": "j", "state": "x", "ts": 1}',
        b"\xff\xfe not text",
        b'{"type": "state", "v": 1}',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a": ' * 50 + b"1" + b"}" * 50,
    ],
)
def test_malformed_payloads_on_every_host_topic_cost_one_line(
    push: tuple[Pusher, RecordingSession, ResultStore],
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
) -> None:
    pusher, session, store = push
    job = _job(pusher, "pi-a")
    for topic in (
        topics.state("pi-a"),
        topics.info("pi-a"),
        topics.job_event("pi-a", job),
        topics.job_result("pi-a", job),
        topics.blob_request("ab" * 32),
    ):
        caplog.clear()
        pusher.handle(topic, payload)
        lines = _lines(caplog)
        assert len(lines) == 1 and topic in lines[0], (topic, lines)
    assert store.count() == 0 and session.acks() == []
    assert pusher.fleet.devices["pi-a"].status == "online"  # the last good state stays


def test_a_message_of_another_type_than_its_topic_carries_is_refused(
    push: tuple[Pusher, RecordingSession, ResultStore], caplog: pytest.LogCaptureFixture
) -> None:
    pusher, _session, _store = push
    job = _job(pusher, "pi-a")
    event = JobEvent("pi-a", job, "failed", 1.0, reason="forged").to_bytes()
    pusher.handle(topics.job_result("pi-a", job), event)
    pusher.handle(topics.state("pi-a"), event)
    assert pusher.jobs[job].state == "sent"
    assert len(_lines(caplog)) == 2


def test_devices_shows_what_it_can_of_ill_typed_hardware() -> None:
    info = _info("pi-a", machine="aarch64", ram_mb="lots", cores=["4"]).to_dict()
    assert _hardware(info) == "aarch64"
    info = _info("pi-a", ram_mb=2048, cores=4).to_dict()
    assert _hardware(info) == "4 cores, 2.0 GB"
    odd = {"onnxruntime": {"version": {"x": 1}}, "litert": "2.1", "tflite_runtime": []}
    assert _runtimes({"runtimes": odd}) == "onnxruntime"
    assert _runtimes({"runtimes": ["not", "a", "mapping"]}) == "-"


# -- item 1: a device may only speak for itself ---------------------------------------
def test_a_result_for_another_devices_job_is_neither_stored_nor_acknowledged(
    push: tuple[Pusher, RecordingSession, ResultStore], caplog: pytest.LogCaptureFixture
) -> None:
    pusher, session, store = push
    victim_job = _job(pusher, "pi-b")
    # evil read pi-b's job id (chunk requests carry it) and answers it as itself.
    forged = JobResult("evil", victim_job, _doc("evil", victim_job, label="forged"))
    pusher.handle(topics.job_result("evil", victim_job), forged.to_bytes())
    assert store.count() == 0 and session.acks() == []
    assert "not sent to evil" in " ".join(_lines(caplog))
    real = JobResult("pi-b", victim_job, _doc("pi-b", victim_job))
    pusher.handle(topics.job_result("pi-b", victim_job), real.to_bytes())
    assert store.get(victim_job, "pi-b") is not None and pusher.jobs[victim_job].ok
    assert session.acks() == [("pi-b", victim_job)]


def test_a_second_different_result_is_an_event_not_a_row(
    push: tuple[Pusher, RecordingSession, ResultStore],
) -> None:
    pusher, session, store = push
    job = _job(pusher, "pi-a")
    topic = topics.job_result("pi-a", job)
    first = JobResult("pi-a", job, _doc("pi-a", job))
    pusher.handle(topic, first.to_bytes())
    pusher.handle(topic, first.to_bytes())  # re-sent: the same, acknowledged again
    other = JobResult("pi-a", job, _doc("pi-a", job, label="second"))
    pusher.handle(topic, other.to_bytes())
    assert store.count() == 1 and store.get(job, "pi-a")["label"] is None  # type: ignore[index]
    (event,) = store.result_events(job_ids=[job])
    assert event["kind"] == "conflict" and event["document"]["label"] == "second"
    assert session.acks() == [("pi-a", job)] * 3  # each was stored: as the row or the event
    kept = pusher.jobs[job].result
    assert kept is not None and kept["label"] is None


# -- item 4: repairs ---------------------------------------------------------------------
def _request(device: str, sha: str, missing: list[int], job_id: str | None = None) -> bytes:
    return ChunkRequest(device, sha, missing, job_id=job_id).to_bytes()


def test_chunk_requests_are_heard_only_from_devices_the_blob_was_pushed_to(
    push: tuple[Pusher, RecordingSession, ResultStore],
) -> None:
    pusher, session, _store = push
    (sha,) = pusher.blobs
    request_topic = topics.blob_request(sha)
    pusher.handle(request_topic, _request("evil", sha, [0, 1, 2]))
    pusher.handle(request_topic, _request("stranger", sha, [0]))
    # A target, but naming the other target's job.
    pusher.handle(request_topic, _request("pi-a", sha, [3], job_id=_job(pusher, "pi-b")))
    pusher.flush_repairs(force=True)
    assert session.chunks() == []
    pusher.handle(request_topic, _request("pi-a", sha, [0, 1]))
    pusher.flush_repairs(force=True)
    assert sorted(session.chunks()) == [topics.blob_chunk(sha, 0), topics.blob_chunk(sha, 1)]


def test_a_flood_of_requests_is_coalesced_per_device_and_bounded_per_push(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        pusher, session = _pusher(tmp_path, store, chunks=8)
        (sha,) = pusher.blobs
        blob = pusher.blobs[sha]
        every = list(range(blob.ref.chunks))
        # 93 requests for everything within a moment: one repair.
        for _ in range(93):
            pusher.handle(topics.blob_request(sha), _request("pi-a", sha, every))
        pusher.flush_repairs(force=True)
        assert len(session.chunks()) == blob.ref.chunks
        # Asking again and again over time costs at most the budget, in all.
        for _ in range(60):
            for device in ("pi-a", "pi-b"):
                pusher._heard_request.clear()  # as if a second had passed for each
                pusher._published_at.clear()
                pusher.handle(topics.blob_request(sha), _request(device, sha, every))
            pusher.flush_repairs(force=True)
        assert pusher.repair_bytes <= pusher.repair_budget
        assert pusher.repair_budget == 4 * blob.ref.size_bytes * 2
        assert session.chunk_bytes() == pusher.repair_bytes


# -- property-based: anything on any topic the host reads ------------------------------
@pytest.fixture(scope="module")
def shared_push() -> Iterator[tuple[Pusher, RecordingSession, ResultStore]]:
    with tempfile.TemporaryDirectory() as directory, ResultStore(Path(directory) / "r.db") as store:
        pusher, session = _pusher(Path(directory), store)
        yield pusher, session, store


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["state", "info", "event", "result", "request"]),
    sender=st.sampled_from(["pi-a", "pi-b", "evil"]),
    topic_device=st.sampled_from(["pi-a", "pi-b", "evil"]),
    job_of=st.sampled_from(["pi-a", "pi-b", "other"]),
    how=st.sampled_from(["mutated", "json", "bytes"]),
    path=PATHS,
    value=JSON_VALUES,
    raw=st.binary(max_size=300),
)
def test_anything_on_any_topic_never_raises_and_stores_only_what_was_sent(
    shared_push: tuple[Pusher, RecordingSession, ResultStore],
    kind: str,
    sender: str,
    topic_device: str,
    job_of: str,
    how: str,
    path: list[str],
    value: Any,
    raw: bytes,
) -> None:
    pusher, session, store = shared_push
    (sha,) = pusher.blobs
    job = _job(pusher, job_of) if job_of != "other" else "otherjob1"
    topic = {
        "state": topics.state(topic_device),
        "info": topics.info(topic_device),
        "event": topics.job_event(topic_device, job),
        "result": topics.job_result(topic_device, job),
        "request": topics.blob_request(sha),
    }[kind]
    body = valid_message(kind, sender, job, sha).to_dict()
    if how == "mutated":
        payload = json.dumps(mutate(body, path, value)).encode()  # NaN/Infinity included
    elif how == "json":
        payload = json.dumps(value).encode()
    else:
        payload = raw
    pusher.handle(topic, payload)
    # Also through the paths `collect` and `devices` take.
    read_message(topic, payload)
    pusher.fleet.update(topic, payload)
    for device in pusher.fleet.sorted():
        json.dumps(device.to_json(), allow_nan=False)
        _hardware(device.to_json()["info"])
        _runtimes(device.to_json()["info"])
    pusher.flush_repairs(force=True)
    # Only the targets' own results of their own jobs, each acknowledged to its device.
    sent = {(j.job_id, j.device_id) for j in pusher.jobs.values()}
    stored = {(d["job_id"], d["device"]["id"]) for d in store.query()}
    assert stored <= sent
    assert set(session.acks()) <= {(device, job) for job, device in stored}


def test_the_recording_session_sees_acks() -> None:
    # The property above would hold vacuously if acks() never found one.
    session = RecordingSession()
    from protocol.signing import seal

    session.publish(
        topics.job("pi-a"), seal(ResultAck("pi-a", ["j1"], time.time(), time.time() + 9), KEY)
    )
    assert session.acks() == [("pi-a", "j1")]


def test_json_output_is_standard_json_whatever_a_document_holds() -> None:
    from hostctl.cmdutil import json_text

    text = json_text([{"p50": float("nan"), "ci": [float("inf"), -float("inf")], "n": 3}])
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == [
        {"p50": None, "ci": [None, None], "n": 3}
    ]

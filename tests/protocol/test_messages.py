"""Strict parsing of protocol messages: every bad payload is a ProtocolError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import topics
from protocol.errors import ProtocolError
from protocol.messages import (
    MESSAGE_VERSION,
    AttachmentRef,
    ChunkRequest,
    DeviceInfo,
    DeviceState,
    JobEvent,
    JobManifest,
    JobResult,
    ModelRef,
    parse_as,
    parse_message,
)

SHA = "ab" * 32


def manifest(**overrides: object) -> JobManifest:
    fields: dict[str, object] = {
        "job_id": "job1",
        "device_id": "pi-1",
        "model": ModelRef(sha256=SHA, size_bytes=200_000, name="m.tflite", format="tflite"),
        "settings": {"runs": 10},
        "issued_at": 1000.0,
        "expires_at": 2000.0,
        "label": "int8",
    }
    fields.update(overrides)
    return JobManifest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "message",
    [
        DeviceState(device_id="pi-1", state="busy", epoch=3, ts=1.5, job_id="j1"),
        DeviceInfo(
            device_id="pi-1",
            device={"arch": "aarch64"},
            runtimes={"onnxruntime": {"version": "1.20"}},
            tags=["lab", "pi5"],
            free_disk_mb=1024.0,
            cached_models=[SHA],
            agent_version="0.1.0",
            ts=2.0,
        ),
        manifest(),
        JobEvent(
            device_id="pi-1",
            job_id="j1",
            state="downloading",
            ts=3.0,
            progress={"received": 1, "total": 4},
        ),
        JobResult(
            device_id="pi-1", job_id="j1", result={"schema": "edgeprof.result/1", "status": "ok"}
        ),
        ChunkRequest(device_id="pi-1", sha256=SHA, missing=[0, 3], job_id="j1"),
    ],
)
def test_round_trip(message: object) -> None:
    assert parse_message(message.to_bytes()) == message  # type: ignore[attr-defined]


def with_data() -> JobManifest:
    return manifest(
        attachments={
            "eval": AttachmentRef("cd" * 32, 5000, "labelled.npz", "npz", 1024),
            "inputs": AttachmentRef("ef" * 32, 300, "x.npy", "npy", 1024),
        }
    )


def test_manifest_with_attachments_round_trips_and_lists_its_blobs() -> None:
    message = with_data()
    assert parse_message(message.to_bytes()) == message
    assert [b.sha256 for b in message.blobs] == [SHA, "cd" * 32, "ef" * 32]
    assert message.attachments["eval"].chunks == 5


def test_only_a_manifest_with_attachments_needs_version_2() -> None:
    # A version-1 reader refuses it ("upgrade edgeprof") instead of running without
    # the data; every other message stays readable by version-1 code.
    assert with_data().to_dict()["v"] == 2
    plain = manifest().to_dict()
    assert plain["v"] == 1 and "attachments" not in plain
    assert DeviceState(device_id="pi-1", state="online", epoch=1, ts=1.0).to_dict()["v"] == 1
    assert MESSAGE_VERSION == 2


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda a: a.update(shell=a.pop("eval")), "unknown attachment 'shell'"),
        (lambda a: a["eval"].update(format="npy"), "cannot be a .npy"),
        (lambda a: a["inputs"].update(format="tflite"), "unknown attachment format"),
        (lambda a: a["inputs"].update(sha256="../x"), "invalid sha256"),
        (lambda a: a["inputs"].update(size_bytes=0), "size must be positive"),
        (lambda a: a.update(eval="labelled.npz"), "must be an object"),
    ],
)
def test_hostile_attachments_are_protocol_errors(change: object, fragment: str) -> None:
    body = with_data().to_dict()
    change(body["attachments"])  # type: ignore[operator]
    with pytest.raises(ProtocolError, match=fragment):
        parse_message(json.dumps(body))
    body["attachments"] = ["labelled.npz"]
    with pytest.raises(ProtocolError, match="wrong type"):
        parse_message(json.dumps(body))


def test_a_model_cannot_be_a_data_file() -> None:
    body = manifest().to_dict()
    body["model"]["format"] = "npz"
    with pytest.raises(ProtocolError, match="unknown model format"):
        parse_message(json.dumps(body))


def test_manifest_counts_chunks() -> None:
    assert manifest().model.chunks == 4  # 200000 bytes / 64 KiB, rounded up


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "nope", "v": 1}', "unknown message type"),
        (b'{"type": "state"}', "no valid version"),
        (b'{"type": "state", "v": true}', "no valid version"),
        (json.dumps({"type": "state", "v": MESSAGE_VERSION + 1}).encode(), "upgrade edgeprof"),
        (
            b'{"type": "state", "v": 1, "device_id": "pi-1", "state": "online", "ts": 1}',
            "'epoch' is missing",
        ),
        (
            b'{"type": "state", "v": 1, "device_id": "a/b", "state": "online", "epoch": 1, "ts": 1}',
            "invalid device id",
        ),
        (
            b'{"type": "state", "v": 1, "device_id": "x", "state": "dancing", "epoch": 1, "ts": 1}',
            "unknown device state",
        ),
        (
            b'{"type": "state", "v": 1, "device_id": "x", "state": "online", "epoch": true, "ts": 1}',
            "boolean",
        ),
        (
            b'{"type": "chunk_request", "v": 1, "device_id": "x", "sha256": "zz", "missing": []}',
            "invalid sha256",
        ),
        (
            b'{"type": "chunk_request", "v": 1, "device_id": "x", "sha256": "'
            + SHA.encode()
            + b'", "missing": [-1]}',
            "non-negative",
        ),
    ],
)
def test_rejects_bad_payloads(payload: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=fragment):
        parse_message(payload)


def test_manifest_rejects_hostile_fields() -> None:
    body = manifest().to_dict()
    body["model"]["format"] = "exe"
    with pytest.raises(ProtocolError, match="unknown model format"):
        parse_message(json.dumps(body))
    body = manifest().to_dict()
    body["model"]["chunk_size"] = 10**9
    with pytest.raises(ProtocolError, match="chunk size"):
        parse_message(json.dumps(body))
    body = manifest().to_dict()
    body["job_id"] = "../../etc/passwd"
    with pytest.raises(ProtocolError, match="invalid job id"):
        parse_message(json.dumps(body))


def test_parse_as_requires_the_type() -> None:
    state = DeviceState(device_id="pi-1", state="online", epoch=1, ts=1.0)
    with pytest.raises(ProtocolError, match="expected a 'job' message"):
        parse_as(state.to_bytes(), JobManifest)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_message(payload)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "v",
                "device_id",
                "state",
                "epoch",
                "ts",
                "job_id",
                "model",
                "settings",
                "missing",
                "sha256",
                "result",
                "attachments",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    )
)
def test_random_json_objects_never_crash_the_parser(body: dict[str, object]) -> None:
    with contextlib.suppress(ProtocolError):
        parse_message(json.dumps(body))


def test_topics_round_trip_and_refuse_injection() -> None:
    assert topics.parse(topics.job_result("pi-1", "j1")) == topics.ParsedTopic(
        "result", "pi-1", "j1"
    )
    assert topics.parse(topics.blob_chunk(SHA, 7)) == topics.ParsedTopic(
        "chunk", sha256=SHA, index=7
    )
    assert topics.parse(topics.blob_request(SHA)).kind == "request"
    for bad in ("pi/1", "pi+", "#", "", "x" * 65):
        with pytest.raises(ProtocolError):
            topics.state(bad)
    with pytest.raises(ProtocolError):
        topics.parse("edgeprof/v1/dev/pi-1/shell")
    with pytest.raises(ProtocolError):
        topics.parse("other/v1/dev/pi-1/state")

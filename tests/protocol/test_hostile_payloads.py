"""Hostile payloads against everything in protocol/ that reads the network.

Whatever a device or a broker sends, protocol code answers with a Message or a
one-line ProtocolError — never RecursionError, MemoryError, a ValueError from
the standard library, or a value that breaks a later step (NaN, a lone surrogate).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import topics
from protocol.errors import ProtocolError
from protocol.messages import (
    Cancel,
    ChunkRequest,
    Collect,
    DeviceInfo,
    DeviceState,
    JobEvent,
    JobManifest,
    JobResult,
    Message,
    ModelRef,
    ResultAck,
    check_result_shape,
    parse_message,
)
from protocol.payload import MAX_DEPTH, MAX_JSON_BYTES, decode_json
from protocol.signing import ENVELOPE_SCHEMA, SigningKey, open_envelope, seal

SHA = "ab" * 32
KEY = SigningKey(b"\x01" * 32)
TRUSTED = {KEY.key_id: KEY.public_key}
DOC = {"schema": "edgeprof.result/1", "status": "ok", "job_id": "j1", "flags": []}

VALID: list[Message] = [
    DeviceState("pi-1", "busy", 3, 1.5, job_id="j1"),
    DeviceInfo("pi-1", {"ram_mb": 1024}, {"onnxruntime": {}}, ["lab"], 9.0, [SHA], "0.1", 2.0),
    JobManifest(
        "j1", "pi-1", ModelRef(SHA, 200_000, "m.onnx", "onnx"), {"runs": 3}, 1000.0, 2000.0
    ),
    ResultAck("pi-1", ["j1", "j2"], 1000.0, 2000.0),
    Collect("pi-1", 1000.0, 2000.0),
    Cancel("pi-1", ["j1"], 1000.0, 2000.0),
    JobEvent("pi-1", "j1", "downloading", 3.0, progress={"received": 1}),
    JobResult("pi-1", "j1", dict(DOC)),
    ChunkRequest("pi-1", SHA, [0, 3], job_id="j1"),
]


def _one_line_protocol_error(payload: bytes | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_message(payload)
    text = str(caught.value)
    assert "\n" not in text and len(text) < 300, text
    return caught.value


# -- the named cases of issue 7 -------------------------------------------------
def test_a_hundred_thousand_nested_brackets_are_refused_without_recursion() -> None:
    for payload in (b"[" * 100_000, b'{"type": "state", "v": 1, "tags": ' + b"[" * 100_000):
        assert "nests deeper" in str(_one_line_protocol_error(payload))
    # Balanced, and inside a field the parser would otherwise reach.
    deep = b'{"type": "info", "v": 1, "device": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert "nests deeper" in str(_one_line_protocol_error(deep))


def test_nesting_is_counted_exactly_and_brackets_inside_strings_do_not_count() -> None:
    at_limit = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert decode_json('{"a": ' + at_limit + "}") == {"a": json.loads(at_limit)}
    with pytest.raises(ProtocolError, match="nests deeper"):
        decode_json('{"a": [' + at_limit + "]}")
    quoted = json.dumps({"reason": '[[[{{{ \\" ' * 5000})
    assert decode_json(quoted)["reason"].startswith("[[[{{{")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_id", ["pi-1"]),
        ("job_id", ["j1"]),
        ("job_id", {"id": "j1"}),
        ("state", ["busy"]),
        ("reason", ["a", "b"]),
        ("code", {"nested": {"deeper": [1]}}),
        ("progress", "50%"),
        ("ts", "yesterday"),
        ("ts", True),
    ],
)
def test_lists_and_objects_where_strings_or_numbers_are_expected(field: str, value: Any) -> None:
    body = JobEvent("pi-1", "j1", "running", 1.0, reason="r", code="c").to_dict()
    body[field] = value
    _one_line_protocol_error(json.dumps(body))


@pytest.mark.parametrize(
    "change",
    [
        {"error": "boom"},
        {"status": "error", "error": "boom"},
        {"status": "error", "error": None},
        {"status": "error", "error": {"code": ["x"], "message": "m"}},
        {"status": "fine"},
        {"status": ["ok"]},
        {"device": "pi-1"},
        {"latency_ms": [1, 2, 3]},
        {"init_ms": "fast"},
        {"init_ms": True},
        {"flags": "unstable"},
        {"flags": [["unstable"]]},
        {"job_id": ["j1"]},
        {"job_id": "someone-elses-job"},
        {"schema": None},
    ],
)
def test_a_result_document_of_the_wrong_shape_is_refused(change: dict[str, Any]) -> None:
    body = JobResult("pi-1", "j1", dict(DOC)).to_dict()
    body["result"].update(change)
    _one_line_protocol_error(json.dumps(body))


def test_an_error_result_of_the_right_shape_is_accepted() -> None:
    doc = {**DOC, "status": "error", "error": {"code": "crashed", "message": "m"}}
    check_result_shape(doc, "j1")
    assert parse_message(JobResult("pi-1", "j1", doc).to_bytes()).result == doc  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"9" * 5000, b"1" * 25]
)
def test_nan_infinity_and_huge_numbers_are_refused(literal: bytes) -> None:
    payload = b'{"type": "state", "v": 1, "device_id": "x", "state": "online", "epoch": 1, "ts": '
    error = _one_line_protocol_error(payload + literal + b"}")
    assert "payload contains" in str(error)


def test_senders_never_write_nan() -> None:
    info = DeviceInfo("pi-1", {"temp_c": math.nan, "x": [math.inf]}, {}, [], None, [], "0", 1.0)
    body = json.loads(info.to_bytes())  # the strict reader below would refuse NaN
    assert body["device"] == {"temp_c": None, "x": [None]}
    assert parse_message(info.to_bytes()).device == {"temp_c": None, "x": [None]}  # type: ignore[attr-defined]


def test_size_is_checked_before_parsing() -> None:
    huge = b'{"a": "' + b"x" * MAX_JSON_BYTES + b'"}'
    assert "exceeds the limit" in str(_one_line_protocol_error(huge))


def test_text_that_is_not_utf8_or_holds_a_lone_surrogate_is_refused() -> None:
    _one_line_protocol_error(b'{"a": "\xff"}')
    lone = JobEvent("pi-1", "j1", "failed", 1.0, reason="SURROGATE").to_bytes()
    error = _one_line_protocol_error(lone.replace(b"SURROGATE", b"\\ud800 x"))
    assert "surrogate" in str(error)
    body = JobEvent("pi-1", "j1", "failed", 1.0, reason="\U0001f600 ok").to_bytes()
    assert parse_message(body).reason == "\U0001f600 ok"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "topic",
    [
        "edgeprof/v1/blob/" + SHA + "/²",
        "edgeprof/v1/blob/" + SHA + "/" + "9" * 5000,
        "edgeprof/v1/blob/" + SHA + "/٣",
        "edgeprof/v1/blob/" + SHA + "/01",
        "edgeprof/v1/blob/" + SHA + "/-1",
        "edgeprof/v1/dev/pi-1\n/state",
        "edgeprof/v1/dev/pi-1/job/j1\n/result",
        "edgeprof/v1/dev/" + "x" * 100_000 + "/state",
    ],
)
def test_hostile_topics_are_protocol_errors(topic: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        topics.parse(topic)
    assert len(str(caught.value)) < 300


def test_a_trailing_newline_is_not_a_valid_id() -> None:
    for check, value in (
        (topics.check_device_id, "pi-1\n"),
        (topics.check_job_id, "j1\n"),
        (topics.check_sha256, SHA + "\n"),
    ):
        with pytest.raises(ProtocolError):
            check(value)


@pytest.mark.parametrize(
    "payload_field", ["é" * 40, "AAAA\u0660", "\U0001f600", "not base64!", 12, None, ["AAAA"]]
)
def test_an_envelope_with_a_bad_payload_is_a_protocol_error(payload_field: Any) -> None:
    envelope = {"schema": ENVELOPE_SCHEMA, "payload": payload_field, "key_id": None, "sig": None}
    with pytest.raises(ProtocolError, match="payload"):
        open_envelope(json.dumps(envelope).encode(), TRUSTED, allow_unsigned=True, now=1500.0)


@pytest.mark.parametrize("sig", ["é" * 40, "AAAA\u0660", "x", 5, ["s"]])
def test_an_envelope_with_a_bad_signature_field_is_a_signature_error(sig: Any) -> None:
    envelope = json.loads(seal(Collect("pi-1", 1000.0, 2000.0), KEY))
    envelope["sig"] = sig
    with pytest.raises(ProtocolError):
        open_envelope(json.dumps(envelope).encode(), TRUSTED, now=1500.0)


def test_the_digest_names_the_signed_bytes() -> None:
    first = seal(Collect("pi-1", 1000.0, 2000.0), KEY)
    second = seal(Collect("pi-1", 1000.5, 2000.0), KEY)
    a = open_envelope(first, TRUSTED, now=1500.0)
    assert a.digest == open_envelope(first, TRUSTED, now=1600.0).digest  # a replay
    assert a.digest != open_envelope(second, TRUSTED, now=1500.0).digest


@pytest.mark.parametrize(
    "message",
    [
        {"type": "cancel", "v": 1, "device_id": "pi-1", "job_ids": [], "issued_at": 1, "expires_at": 2},
        {"type": "cancel", "v": 1, "device_id": "pi-1", "job_ids": ["../x"], "issued_at": 1, "expires_at": 2},
        {"type": "collect", "v": 1, "device_id": "pi-1", "issued_at": 5, "expires_at": 2},
        {"type": "ack", "v": 1, "device_id": "pi-1", "job_ids": [1], "issued_at": 1, "expires_at": 2},
    ],
)  # fmt: skip
def test_control_messages_are_validated(message: dict[str, Any]) -> None:
    _one_line_protocol_error(json.dumps(message))


# -- properties -----------------------------------------------------------------
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(),  # NaN and ±inf included: the strict reader must refuse them
    st.text(max_size=20),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=2),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


def _dump(value: Any) -> bytes:
    # surrogatepass: hypothesis writes lone surrogates too; json escapes them as \udXXX.
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def _check_parse(payload: bytes) -> None:
    try:
        message = parse_message(payload)
    except ProtocolError as exc:
        assert "\n" not in str(exc)
        return
    # Whatever was accepted can be published again as standard JSON.
    json.loads(message.to_bytes(), parse_constant=lambda c: pytest.fail(f"wrote {c}"))


@given(st.binary(max_size=2000))
def test_arbitrary_bytes(payload: bytes) -> None:
    _check_parse(payload)


@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.text(max_size=12), JSON_VALUES), min_size=1, max_size=4),
)
def test_valid_messages_with_fields_replaced_by_anything(
    message: Message, changes: list[tuple[str, Any]]
) -> None:
    body = message.to_dict()
    keys = [*list(body), "result", "model", "attachments", "progress"]
    for index, (name, value) in enumerate(changes):
        body[keys[hash(name) % len(keys)] if index % 2 else name] = value
    _check_parse(_dump(body))


@given(st.sampled_from(VALID), JSON_VALUES, st.integers(min_value=0, max_value=200))
def test_valid_messages_with_nested_sections_replaced(
    message: Message, value: Any, depth: int
) -> None:
    body = message.to_dict()
    for _key, current in body.items():
        if isinstance(current, dict):
            current[f"k{depth}"] = value
            nested: Any = value
            for _ in range(depth):
                nested = [nested]
            current["deep"] = nested
            break
    else:
        body["extra"] = value
    _check_parse(_dump(body))


@given(st.text(max_size=200))
def test_arbitrary_topics(text: str) -> None:
    for topic in (text, topics.ROOT + "/" + text, f"{topics.ROOT}/blob/{SHA}/{text}"):
        with contextlib.suppress(ProtocolError):
            topics.parse(topic)


@given(
    st.one_of(
        st.text(max_size=80), st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode())
    ),
    st.one_of(st.none(), st.text(max_size=90), JSON_LEAVES),
    st.one_of(st.none(), st.text(max_size=20), JSON_LEAVES),
)
def test_arbitrary_envelopes(payload: str, sig: Any, key_id: Any) -> None:
    envelope = {"schema": ENVELOPE_SCHEMA, "payload": payload, "sig": sig, "key_id": key_id}
    for allow_unsigned in (False, True):
        with contextlib.suppress(ProtocolError):
            open_envelope(_dump(envelope), TRUSTED, allow_unsigned=allow_unsigned, now=1500.0)


@given(st.sampled_from(VALID))
def test_valid_messages_round_trip(message: Message) -> None:
    assert parse_message(message.to_bytes()) == message

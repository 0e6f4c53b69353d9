"""The result document's reader and samples codec (protocol.result)."""

from __future__ import annotations

import base64
import json
import random
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import result
from protocol.result import RESULT_SCHEMA, ResultError, read_result

# -- samples codec


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=300))
def test_samples_round_trip_through_json(samples: list[int]) -> None:
    doc = result.encode_samples(samples)
    assert result.decode_samples(json.loads(json.dumps(doc))) == samples


def test_encoding_is_compact() -> None:
    rng = random.Random(0)
    samples = [rng.randint(900_000, 1_100_000) for _ in range(10_000)]
    doc = result.encode_samples(samples)
    assert doc["n"] == 10_000 and doc["unit"] == "ns"
    assert len(json.dumps(doc)) < len(json.dumps(samples))


@pytest.mark.parametrize(
    "doc",
    [
        {"unit": "ns", "encoding": "gzip", "n": 0, "data": ""},
        {"unit": "ns", "encoding": result.SAMPLES_ENCODING, "n": 1, "data": "not base64!"},
        {"unit": "ns", "encoding": result.SAMPLES_ENCODING, "n": 5, "data": "eJwDAAAAAAE="},
    ],
)
def test_malformed_sample_documents_are_rejected(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        result.decode_samples(doc)


def test_a_zlib_bomb_is_refused_without_inflating_it() -> None:
    # 10**9 zero bytes compress to ~1 MB; decoding must stop at the bound.
    bomb = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)
    doc = {
        "unit": "ns",
        "encoding": result.SAMPLES_ENCODING,
        "data": base64.b64encode(bomb).decode(),
    }
    with pytest.raises(ValueError, match="more than"):
        result.decode_samples(doc)


# -- per-sample correctness codec


@given(st.lists(st.booleans(), max_size=200))
def test_correctness_round_trips_through_json(flags: list[bool]) -> None:
    doc = result.encode_correct(flags)
    assert result.decode_correct(json.loads(json.dumps(doc))) == flags


def test_correctness_is_one_bit_a_sample_and_garbage_is_rejected() -> None:
    flags = [bool(i % 3) for i in range(1001)]
    doc = result.encode_correct(flags)
    assert doc["n"] == 1001 and len(doc["data"]) == 4 * -(-126 // 3)  # 126 bytes, base64
    with pytest.raises(ValueError, match="bytes for n"):
        result.decode_correct({**doc, "n": 5000})
    with pytest.raises(ValueError, match="corrupt"):
        result.decode_correct({**doc, "data": "not base64!"})
    with pytest.raises(ValueError, match="encoding"):
        result.decode_correct({**doc, "encoding": "gzip"})
    with pytest.raises(ValueError, match="more than"):
        result.decode_correct({**doc, "n": 10**12})


def test_the_reader_gives_correctness_only_when_it_covers_every_sample() -> None:
    flags = [True, False, True]
    section = result.AccuracySection.read(
        {"top1": 2 / 3, "n": 3, "correct": result.encode_correct(flags), "data_sha256": "ab"}
    )
    assert section is not None and section.correct() == flags and section.data_sha256 == "ab"
    short = result.AccuracySection.read(
        {"top1": 1.0, "n": 4, "correct": result.encode_correct(flags)}
    )
    assert short is not None and short.correct() is None
    broken = result.AccuracySection.read({"top1": 1.0, "n": 3, "correct": {"data": 7}})
    assert broken is not None and broken.correct() is None


# -- reader


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "status": "ok",
        "job_id": "j1",
        "label": "int8",
        "created_at": "2026-12-02T10:00:00Z",
        "device": {"id": "pi5-a", "cores": 4, "ram_mb": 8000, "tags": ["pi5"]},
        "model": {
            "name": "mobilenet_int8.tflite",
            "sha256": "ab" * 32,
            "size_bytes": 4_000_000,
            "format": "tflite",
            "params": 3_500_000,
            "macs": 300_000_000,
            "macs_complete": True,
            "sparsity": 0.1,
        },
        "runtime": {
            "name": "litert",
            "version": "2.3.0",
            "delegate_or_provider": "xnnpack",
            "threads": 4,
        },
        "settings": {
            "runs": 100,
            "input_shapes": {"x": [1, 224, 224, 3]},
            "inputs": {"source": "generated"},
        },
        "latency_ms": {
            "n": 100,
            "p50": 1.5,
            "p90": 1.8,
            "ci95_p50": [1.4, 1.6],
            "ci95_p90": [1.7, 1.9],
        },
        "memory_mb": {"peak_rss": 50.5},
        "accuracy": {"top1": 0.71, "n": 1000},
        "env": {"throttled": False, "load_avg": [0.5, 0.4, 0.3]},
        "flags": ["unstable"],
        "error": None,
        "samples": result.encode_samples([1_500_000] * 10),
    }
    doc.update(changes)
    return doc


def test_a_complete_document_reads_typed() -> None:
    r = read_result(_doc())
    assert r.ok and r.version == 1 and (r.job_id, r.label) == ("j1", "int8")
    assert r.device.id == "pi5-a" and r.device.tags == ("pi5",) and r.device.cores == 4
    assert r.model.stem == "mobilenet_int8" and r.model.macs == 300_000_000
    assert r.runtime.threads == 4 and r.settings.input_shapes == {"x": (1, 224, 224, 3)}
    assert r.latency is not None and r.latency.ci95_p50 == result.Interval(1.4, 1.6)
    assert r.accuracy is not None and r.accuracy.top1 == 0.71
    assert r.env.load_avg == (0.5, 0.4, 0.3) and r.flags == ("unstable",)
    assert r.samples() == [1_500_000] * 10 and r.error is None


@pytest.mark.parametrize(
    "doc, message",
    [
        ([1, 2], "JSON object"),
        ({"status": "ok"}, "no schema"),
        ({"schema": "something/1"}, "not an edgeprof result"),
        ({"schema": "edgeprof.result/2"}, "upgrade edgeprof"),
        ({"schema": "edgeprof.result/x"}, "not an edgeprof result"),
    ],
)
def test_what_is_not_a_readable_result_is_one_error(doc: Any, message: str) -> None:
    with pytest.raises(ResultError, match=message):
        read_result(doc)


def test_hostile_fields_read_as_absent_never_raise() -> None:
    r = read_result(
        _doc(
            status="error",
            error="boom",
            device={"id": ["a", "list"], "ram_mb": "lots", "cores": True},
            model=[],
            latency_ms={"p50": float("nan"), "ci95_p50": [2, 1], "n": "100"},
            accuracy={"top1": 7.0},
            flags="unstable",
            samples={"encoding": "nope"},
        )
    )
    assert r.status == "error" and r.error == result.ErrorSection("error", "boom")
    assert r.device.id is None and r.device.ram_mb is None and r.device.cores is None
    assert r.model.name is None
    assert r.latency is not None and r.latency.p50 is None and r.latency.ci95_p50 is None
    assert r.accuracy is not None and r.accuracy.top1 is None
    assert r.flags == () and r.samples() is None


def test_an_error_result_without_detail_still_says_so() -> None:
    r = read_result(_doc(status="weird", error=None))
    assert not r.ok and r.error is not None and r.error.message


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_any_json_value_in_any_section_reads_without_raising(value: Any) -> None:
    for key in (
        "device",
        "model",
        "runtime",
        "settings",
        "latency_ms",
        "memory_mb",
        "accuracy",
        "env",
        "error",
        "flags",
    ):
        read_result(_doc(**{key: value}))  # a hostile section never raises

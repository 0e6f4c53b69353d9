"""Hostile payloads for the host's tests: valid protocol messages of every kind the
host reads, and hypothesis strategies to break them (any JSON value at any path,
NaN and infinities included, or anything at all)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from protocol.messages import ChunkRequest, DeviceInfo, DeviceState, JobEvent, JobResult, Message

HOST_READ_KINDS = ("state", "info", "event", "result", "request")
"""Every kind of topic the host reads."""

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(),  # NaN and ±inf included
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
PATHS = st.lists(
    st.sampled_from(
        ["device_id", "job_id", "result", "device", "id", "error", "status", "schema",
         "progress", "received", "missing", "sha256", "ram_mb", "state", "ts", "v", "type",
         "cores", "runtimes", "tags", "cached_models", "latency_ms", "p50"]
    ),
    min_size=1,
    max_size=3,
)  # fmt: skip


def result_document(device: str, job_id: str, **extra: Any) -> dict[str, Any]:
    """A minimal ok result document of `job_id` on `device`."""
    return {
        "schema": "edgeprof.result/1",
        "status": "ok",
        "job_id": job_id,
        "device": {"id": device},
        "model": {"name": "m.tflite"},
        "latency_ms": {"p50": 1.0},
        "label": None,
        **extra,
    }


def info_message(device: str, **hardware: Any) -> DeviceInfo:
    return DeviceInfo(device, dict(hardware), {"litert": {"version": "2"}}, [], 1.0, [], "0.1", 1.0)


def valid_message(kind: str, device: str, job: str, sha: str) -> Message:
    """A valid message of `kind` (see :data:`HOST_READ_KINDS`) from `device`."""
    if kind == "state":
        return DeviceState(device, "busy", 2, 3.0, job_id=job)
    if kind == "info":
        return info_message(device, ram_mb=1024, cores=4)
    if kind == "event":
        return JobEvent(device, job, "downloading", 1.0, progress={"received": 1, "total": 3})
    if kind == "request":
        return ChunkRequest(device, sha, [0, 1], job_id=job)
    return JobResult(device, job, result_document(device, job))


def mutate(body: Any, path: list[str], value: Any) -> Any:
    """`body` with the value at `path` (keys; missing ones are made) replaced."""
    if not path or not isinstance(body, dict):
        return value
    out = dict(body)
    out[path[0]] = mutate(out.get(path[0], {}), path[1:], value)
    return out

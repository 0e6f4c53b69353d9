"""MQTT topics of edgeprof (DESIGN.md "Wire protocol").

Device ids and hashes are validated before they become topic levels, so a
sender-supplied value can never inject ``/``, ``+`` or ``#``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol.errors import ProtocolError, shown

ROOT = "edgeprof/v1"

# fullmatch, not match: "$" would let a trailing newline through.
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
"""ASCII digits only ("²".isdigit() is true), at most 10 of them: int() of a
5,000-digit topic level is refused by Python, and no blob has 10^10 chunks."""


def check_device_id(device_id: str) -> str:
    """Return `device_id` if it is a valid topic level, else raise ProtocolError."""
    if not isinstance(device_id, str) or not _DEVICE_ID.fullmatch(device_id):
        raise ProtocolError(
            f"invalid device id {shown(device_id)}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return device_id


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ProtocolError(f"invalid job id {shown(job_id)}")
    return job_id


def check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ProtocolError(f"invalid sha256 {shown(sha256)}: expected 64 lowercase hex digits")
    return sha256


def state(device_id: str) -> str:
    return f"{ROOT}/dev/{check_device_id(device_id)}/state"


def info(device_id: str) -> str:
    return f"{ROOT}/dev/{check_device_id(device_id)}/info"


def job(device_id: str) -> str:
    """Host→agent control topic: signed job manifests, result acks, collect requests."""
    return f"{ROOT}/dev/{check_device_id(device_id)}/job"


def job_event(device_id: str, job_id: str) -> str:
    return f"{ROOT}/dev/{check_device_id(device_id)}/job/{check_job_id(job_id)}/event"


def job_result(device_id: str, job_id: str) -> str:
    return f"{ROOT}/dev/{check_device_id(device_id)}/job/{check_job_id(job_id)}/result"


def blob_chunk(sha256: str, index: int) -> str:
    if index < 0 or not _CHUNK_INDEX.fullmatch(str(index)):
        raise ProtocolError(f"invalid chunk index {index}")
    return f"{ROOT}/blob/{check_sha256(sha256)}/{index}"


def blob_request(sha256: str) -> str:
    return f"{ROOT}/blob/{check_sha256(sha256)}/request"


# Subscription filters
ALL_STATES = f"{ROOT}/dev/+/state"
ALL_INFOS = f"{ROOT}/dev/+/info"
ALL_JOB_EVENTS = f"{ROOT}/dev/+/job/+/event"
ALL_JOB_RESULTS = f"{ROOT}/dev/+/job/+/result"
ALL_BLOB_REQUESTS = f"{ROOT}/blob/+/request"


def blob_chunks(sha256: str) -> str:
    """Filter matching every chunk of one blob (and its request topic)."""
    return f"{ROOT}/blob/{check_sha256(sha256)}/+"


@dataclass(frozen=True)
class ParsedTopic:
    """A topic split into its meaning."""

    kind: str
    """'state' | 'info' | 'job' | 'event' | 'result' | 'chunk' | 'request'"""
    device_id: str | None = None
    job_id: str | None = None
    sha256: str | None = None
    index: int | None = None


def parse(topic: str) -> ParsedTopic:
    """Parse an edgeprof topic; raise ProtocolError for anything else."""
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        raise ProtocolError(f"not an edgeprof/v1 topic: {shown(topic, 120)}")
    parts = topic[len(prefix) :].split("/")
    try:
        if parts[0] == "dev":
            dev = check_device_id(parts[1])
            if len(parts) == 3 and parts[2] in ("state", "info", "job"):
                return ParsedTopic(kind=parts[2], device_id=dev)
            if len(parts) == 5 and parts[2] == "job" and parts[4] in ("event", "result"):
                return ParsedTopic(kind=parts[4], device_id=dev, job_id=check_job_id(parts[3]))
        elif parts[0] == "blob" and len(parts) == 3:
            sha = check_sha256(parts[1])
            if parts[2] == "request":
                return ParsedTopic(kind="request", sha256=sha)
            if _CHUNK_INDEX.fullmatch(parts[2]):
                return ParsedTopic(kind="chunk", sha256=sha, index=int(parts[2]))
    except IndexError:
        pass
    raise ProtocolError(f"unknown edgeprof topic: {shown(topic, 120)}")

"""Typed, versioned messages of the wire protocol.

Every JSON message carries ``"type"`` and ``"v"`` (its version). Parsing is
strict: bad JSON, an unknown type, a newer version than this code knows, or a
missing / ill-typed field raise :class:`ProtocolError` — never anything else.
JSON is decoded by :func:`protocol.payload.decode_json`, within size and
nesting limits; what is published is always standard JSON (no NaN).
Model chunks are the one exception: their payload is the raw bytes of the
chunk (the topic carries the hash and index), so a push costs no base64.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeVar

from protocol.errors import ProtocolError, shown
from protocol.payload import MAX_JSON_BYTES, finite_json, first_line
from protocol.payload import decode_json as _decode_bounded
from protocol.topics import check_device_id, check_job_id, check_sha256

# History of message versions (readers accept every version up to the current):
#   1 — first version.
#   2 — JobManifest gains the optional ``attachments`` ({"eval"|"inputs": AttachmentRef}):
#       data files (.npz/.npy) that travel like the model. Every message is still
#       written with the lowest version that can express it (``Message.wire_version``),
#       so only a manifest WITH attachments says v2: an older agent then refuses it
#       ("upgrade edgeprof") instead of silently running without the data, and every
#       other message stays readable by version-1 code.
#       Also new, and written as v1: the ``cancel`` control message (code that
#       does not know it refuses it as an unknown type).
MESSAGE_VERSION = 2

DEFAULT_CHUNK_SIZE = 64 * 1024

DEVICE_STATES = ("online", "busy", "offline")
JOB_STATES = (
    "queued",
    "accepted",
    "rejected",
    "downloading",
    "verifying",
    "running",
    "succeeded",
    "failed",
)
TERMINAL_JOB_STATES = ("rejected", "succeeded", "failed")
MODEL_FORMATS = ("tflite", "onnx")
DATA_FORMATS = ("npz", "npy")
BLOB_FORMATS = MODEL_FORMATS + DATA_FORMATS
"""Every format a content-addressed blob (and an agent's cache entry) may have."""
ATTACHMENT_FORMATS: dict[str, tuple[str, ...]] = {"eval": ("npz",), "inputs": ("npy", "npz")}
"""Attachment kinds of a job and the formats each may have."""

T = TypeVar("T")


def _get(
    data: dict[str, Any], key: str, kind: type[T] | tuple[type, ...], *, optional: bool = False
) -> Any:
    if key not in data or data[key] is None:
        if optional:
            return None
        raise ProtocolError(f"field {key!r} is missing")
    value = data[key]
    # bool is an int in Python; a protocol int field must not accept true/false
    if (kind is int or kind == (int, float)) and isinstance(value, bool):
        raise ProtocolError(f"field {key!r} must be a number, not a boolean")
    if not isinstance(value, kind):
        raise ProtocolError(f"field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _number(data: dict[str, Any], key: str) -> float:
    """A required numeric field (int or float, not bool) as a float."""
    return float(_get(data, key, (int, float)))


def _str_list(data: dict[str, Any], key: str) -> list[str]:
    value = _get(data, key, list, optional=True) or []
    if not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"field {key!r} must be a list of strings")
    return list(value)


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class Message:
    """Base of JSON messages: ``to_dict``/``from_dict`` and bytes helpers."""

    TYPE: ClassVar[str] = ""

    def wire_version(self) -> int:
        """The lowest protocol version that can express this message."""
        return 1

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        return {"type": self.TYPE, "v": self.wire_version(), **body}

    def to_bytes(self) -> bytes:
        """Standard JSON: a NaN/Infinity anywhere (a reading gone wrong) becomes null,
        since every reader refuses non-standard JSON."""
        body = self.to_dict()
        try:
            text = json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)
        except ValueError:
            text = json.dumps(finite_json(body), separators=(",", ":"), sort_keys=True)
        return text.encode()

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> Message:
        raise NotImplementedError


@dataclass(frozen=True)
class DeviceState(Message):
    """Retained on ``dev/{id}/state``; the Last Will publishes ``offline``."""

    TYPE: ClassVar[str] = "state"
    device_id: str
    state: str
    epoch: int
    """Increases on every agent start, so a stale state can be told from a new one."""
    ts: float
    job_id: str | None = None

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        if self.state not in DEVICE_STATES:
            raise ProtocolError(f"unknown device state {shown(self.state)}")

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> DeviceState:
        return cls(
            device_id=_get(data, "device_id", str),
            state=_get(data, "state", str),
            epoch=_get(data, "epoch", int),
            ts=_number(data, "ts"),
            job_id=_get(data, "job_id", str, optional=True),
        )


@dataclass(frozen=True)
class DeviceInfo(Message):
    """Retained on ``dev/{id}/info``: what the device is and can run."""

    TYPE: ClassVar[str] = "info"
    device_id: str
    device: dict[str, Any]
    runtimes: dict[str, Any]
    tags: list[str]
    free_disk_mb: float | None
    cached_models: list[str]
    agent_version: str
    ts: float
    unsigned_jobs_allowed: bool = False

    def __post_init__(self) -> None:
        check_device_id(self.device_id)

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> DeviceInfo:
        free = _get(data, "free_disk_mb", (int, float), optional=True)
        return cls(
            device_id=_get(data, "device_id", str),
            device=_get(data, "device", dict),
            runtimes=_get(data, "runtimes", dict),
            tags=_str_list(data, "tags"),
            free_disk_mb=None if free is None else float(free),
            cached_models=_str_list(data, "cached_models"),
            agent_version=_get(data, "agent_version", str),
            ts=_number(data, "ts"),
            unsigned_jobs_allowed=bool(data.get("unsigned_jobs_allowed", False)),
        )


@dataclass(frozen=True)
class BlobRef:
    """A content-addressed file transferred in chunks on ``blob/{sha}/{index}``."""

    FORMATS: ClassVar[tuple[str, ...]] = BLOB_FORMATS
    WHAT: ClassVar[str] = "blob"
    sha256: str
    size_bytes: int
    name: str
    format: str
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        check_sha256(self.sha256)
        if self.size_bytes < 1:
            raise ProtocolError(f"{self.WHAT} size must be positive")
        if self.format not in self.FORMATS:
            raise ProtocolError(f"unknown {self.WHAT} format {shown(self.format)}")
        if not 1024 <= self.chunk_size <= 1024 * 1024:
            raise ProtocolError(f"chunk size {self.chunk_size} out of range (1 KiB..1 MiB)")

    @property
    def chunks(self) -> int:
        return -(-self.size_bytes // self.chunk_size)

    @classmethod
    def _fields_of(cls, data: Any, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ProtocolError(f"field {where!r} must be an object")
        return {
            "sha256": _get(data, "sha256", str),
            "size_bytes": _get(data, "size_bytes", int),
            "name": _get(data, "name", str),
            "format": _get(data, "format", str),
            "chunk_size": _get(data, "chunk_size", int, optional=True) or DEFAULT_CHUNK_SIZE,
        }


@dataclass(frozen=True)
class ModelRef(BlobRef):
    """The model a job runs: content-addressed, transferred in chunks."""

    FORMATS: ClassVar[tuple[str, ...]] = MODEL_FORMATS
    WHAT: ClassVar[str] = "model"

    @classmethod
    def from_dict(cls, data: Any) -> ModelRef:
        return cls(**cls._fields_of(data, "model"))


@dataclass(frozen=True)
class AttachmentRef(BlobRef):
    """A data file a job needs on the device (labelled .npz for accuracy, inputs
    .npy/.npz): transferred and cached exactly like a model. Its ``name`` is only
    shown in results — the agent stores it under its hash, never under this name."""

    FORMATS: ClassVar[tuple[str, ...]] = DATA_FORMATS
    WHAT: ClassVar[str] = "attachment"

    @classmethod
    def from_dict(cls, data: Any, kind: str = "attachment") -> AttachmentRef:
        return cls(**cls._fields_of(data, f"attachments.{kind}"))


@dataclass(frozen=True)
class JobManifest(Message):
    """A job for one device: which model, with which settings. Always travels
    inside a signed envelope (see protocol.signing)."""

    TYPE: ClassVar[str] = "job"
    job_id: str
    device_id: str
    model: ModelRef
    settings: dict[str, Any]
    issued_at: float
    expires_at: float
    label: str | None = None
    host_id: str = "hostctl"
    attachments: dict[str, AttachmentRef] = field(default_factory=dict)
    """Data files by kind ("eval", "inputs"; see ATTACHMENT_FORMATS), since version 2.
    The agent fetches them like the model and points the settings at its own copies."""

    def __post_init__(self) -> None:
        check_job_id(self.job_id)
        check_device_id(self.device_id)
        if self.expires_at <= self.issued_at:
            raise ProtocolError("manifest expires before it was issued")
        for kind, ref in self.attachments.items():
            allowed = ATTACHMENT_FORMATS.get(kind)
            if allowed is None:
                raise ProtocolError(
                    f"unknown attachment {shown(kind)} (known: {', '.join(ATTACHMENT_FORMATS)})"
                )
            if not isinstance(ref, AttachmentRef):
                raise ProtocolError(f"attachment {kind!r} must be an AttachmentRef")
            if ref.format not in allowed:
                raise ProtocolError(
                    f"attachment {kind!r} cannot be a .{ref.format} file "
                    f"(expected {' or '.join('.' + f for f in allowed)})"
                )

    def wire_version(self) -> int:
        return 2 if self.attachments else 1

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if not self.attachments:
            del body["attachments"]  # a version-1 manifest, byte for byte
        return body

    @property
    def blobs(self) -> list[BlobRef]:
        """The model and every attachment (each hash once), model first."""
        refs: list[BlobRef] = [self.model]
        for ref in self.attachments.values():
            if all(ref.sha256 != r.sha256 for r in refs):
                refs.append(ref)
        return refs

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> JobManifest:
        raw = _get(data, "attachments", dict, optional=True) or {}
        return cls(
            attachments={
                str(kind): AttachmentRef.from_dict(ref, str(kind)) for kind, ref in raw.items()
            },
            job_id=_get(data, "job_id", str),
            device_id=_get(data, "device_id", str),
            model=ModelRef.from_dict(data.get("model")),
            settings=_get(data, "settings", dict),
            issued_at=_number(data, "issued_at"),
            expires_at=_number(data, "expires_at"),
            label=_get(data, "label", str, optional=True),
            host_id=_get(data, "host_id", str, optional=True) or "hostctl",
        )


def _check_lifetime(message: ResultAck | Collect | Cancel) -> None:
    if message.expires_at <= message.issued_at:
        raise ProtocolError(f"{message.TYPE!r} message expires before it was issued")


CONTROL_TYPES = ("ack", "collect", "cancel")
"""Host→agent messages besides manifests; each signed message is handled once
(the agent remembers the digest of what was signed until it expires)."""


@dataclass(frozen=True)
class ResultAck(Message):
    """Host→agent: these results are stored; the agent may forget them."""

    TYPE: ClassVar[str] = "ack"
    device_id: str
    job_ids: list[str]
    issued_at: float
    expires_at: float

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        for job_id in self.job_ids:
            check_job_id(job_id)
        _check_lifetime(self)

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> ResultAck:
        return cls(
            device_id=_get(data, "device_id", str),
            job_ids=_str_list(data, "job_ids"),
            issued_at=_number(data, "issued_at"),
            expires_at=_number(data, "expires_at"),
        )


@dataclass(frozen=True)
class Collect(Message):
    """Host→agent: re-send every result not yet acknowledged (and re-announce)."""

    TYPE: ClassVar[str] = "collect"
    device_id: str
    issued_at: float
    expires_at: float

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        _check_lifetime(self)

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> Collect:
        return cls(
            device_id=_get(data, "device_id", str),
            issued_at=_number(data, "issued_at"),
            expires_at=_number(data, "expires_at"),
        )


@dataclass(frozen=True)
class Cancel(Message):
    """Host→agent: stop these jobs. A queued or downloading job is dropped, a
    running one has its worker killed; each ends ``failed`` with code
    ``canceled`` and a result document saying so."""

    TYPE: ClassVar[str] = "cancel"
    device_id: str
    job_ids: list[str]
    issued_at: float
    expires_at: float

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        if not self.job_ids:
            raise ProtocolError("a cancel message names no job")
        for job_id in self.job_ids:
            check_job_id(job_id)
        _check_lifetime(self)

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> Cancel:
        return cls(
            device_id=_get(data, "device_id", str),
            job_ids=_str_list(data, "job_ids"),
            issued_at=_number(data, "issued_at"),
            expires_at=_number(data, "expires_at"),
        )


@dataclass(frozen=True)
class JobEvent(Message):
    """Agent→host on ``dev/{id}/job/{job}/event``: a job state change or progress."""

    TYPE: ClassVar[str] = "event"
    device_id: str
    job_id: str
    state: str
    ts: float
    reason: str | None = None
    """Why a job was rejected or failed (one line)."""
    code: str | None = None
    """Machine-readable reason, e.g. 'bad_signature', 'expired', 'crashed'."""
    progress: dict[str, Any] = field(default_factory=dict)
    """e.g. {"received": 3, "total": 10} while downloading, {"phase": "warmup"} while running."""

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        check_job_id(self.job_id)
        if self.state not in JOB_STATES:
            raise ProtocolError(f"unknown job state {shown(self.state)}")

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> JobEvent:
        return cls(
            device_id=_get(data, "device_id", str),
            job_id=_get(data, "job_id", str),
            state=_get(data, "state", str),
            ts=_number(data, "ts"),
            reason=_get(data, "reason", str, optional=True),
            code=_get(data, "code", str, optional=True),
            progress=_get(data, "progress", dict, optional=True) or {},
        )


# The top-level sections of a result document (DESIGN.md "Result document") and
# the JSON types each may have besides null; unknown extra keys stay allowed.
_RESULT_SECTIONS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(
        (
            "device", "model", "runtime", "settings", "latency_ms", "memory_mb", "accuracy",
            "accuracy_error", "env", "error", "phases", "samples", "energy",
        ),
        (dict,),
    ),
    **dict.fromkeys(("job_id", "label", "created_at", "edgeprof_version"), (str,)),
    **dict.fromkeys(("init_ms", "first_inference_ms"), (int, float)),
    **dict.fromkeys(("flags", "timeline", "per_op"), (list,)),
}  # fmt: skip
RESULT_STATUSES = ("ok", "error")


def check_result_shape(result: dict[str, Any], job_id: str | None = None) -> None:
    """ProtocolError unless `result` has the shape of a result document: a schema,
    a known status, each known section of its type (or null), an error result's
    ``error{code, message}`` as strings, and (given `job_id`) that job's id."""
    if not isinstance(result, dict):
        raise ProtocolError("the result document is not an object")
    if not isinstance(result.get("schema"), str):
        raise ProtocolError("result document has no schema")
    if result.get("status") not in RESULT_STATUSES:
        raise ProtocolError(f"result status {shown(result.get('status'))} is not 'ok' or 'error'")
    for key, kinds in _RESULT_SECTIONS.items():
        value = result.get(key)
        if value is None:
            continue
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ProtocolError(
                f"result field {key!r} must be {' or '.join(k.__name__ for k in kinds)}, "
                f"not {type(value).__name__}"
            )
    if not all(isinstance(flag, str) for flag in result.get("flags") or []):
        raise ProtocolError("result field 'flags' must be a list of strings")
    error = result.get("error")
    if result["status"] == "error" and not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    ):
        raise ProtocolError("an error result needs error{code, message} as strings")
    if job_id is not None and result.get("job_id") not in (None, job_id):
        raise ProtocolError(
            f"the result document is for job {shown(result.get('job_id'))}, "
            f"the message for job {job_id}"
        )


@dataclass(frozen=True)
class JobResult(Message):
    """Agent→host on ``dev/{id}/job/{job}/result``: the result document."""

    TYPE: ClassVar[str] = "result"
    device_id: str
    job_id: str
    result: dict[str, Any]

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        check_job_id(self.job_id)
        check_result_shape(self.result, self.job_id)

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> JobResult:
        return cls(
            device_id=_get(data, "device_id", str),
            job_id=_get(data, "job_id", str),
            result=_get(data, "result", dict),
        )


@dataclass(frozen=True)
class ChunkRequest(Message):
    """Agent→host on ``blob/{sha}/request``: the chunk indices this device misses."""

    TYPE: ClassVar[str] = "chunk_request"
    device_id: str
    sha256: str
    missing: list[int]
    job_id: str | None = None

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        check_sha256(self.sha256)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.missing):
            raise ProtocolError("missing chunk indices must be non-negative integers")

    @classmethod
    def _from_body(cls, data: dict[str, Any]) -> ChunkRequest:
        missing = _get(data, "missing", list)
        return cls(
            device_id=_get(data, "device_id", str),
            sha256=_get(data, "sha256", str),
            missing=list(missing),
            job_id=_get(data, "job_id", str, optional=True),
        )


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        DeviceState,
        DeviceInfo,
        JobManifest,
        ResultAck,
        Collect,
        Cancel,
        JobEvent,
        JobResult,
        ChunkRequest,
    )
}

M = TypeVar("M", bound=Message)


def decode_json(payload: bytes | str, *, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """Decode a JSON object payload (bounded: see protocol.payload) or raise ProtocolError."""
    return _decode_bounded(payload, max_bytes=max_bytes)


def parse_message(
    payload: bytes | str | dict[str, Any], expected: type[M] | None = None
) -> Message:
    """Parse any JSON message of this protocol (optionally requiring one type)."""
    data = payload if isinstance(payload, dict) else decode_json(payload)
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {shown(kind)}")
    version = data.get("v")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProtocolError(f"message {kind!r} has no valid version")
    if version > MESSAGE_VERSION:
        raise ProtocolError(
            f"message {kind!r} has version {version}, this code knows up to "
            f"{MESSAGE_VERSION}: upgrade edgeprof"
        )
    cls = MESSAGE_TYPES[kind]
    if expected is not None and cls is not expected:
        raise ProtocolError(f"expected a {expected.TYPE!r} message, got {kind!r}")
    try:
        return cls._from_body(data)
    except ProtocolError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise ProtocolError(f"malformed {kind!r} message: {first_line(exc)}") from None


def parse_as(payload: bytes | str | dict[str, Any], expected: type[M]) -> M:
    """Parse and require one message type (typed for callers)."""
    message = parse_message(payload, expected)
    assert isinstance(message, expected)
    return message

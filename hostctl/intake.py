"""What the host accepts from the network.

Every payload hostctl reads (retained ``state``/``info``, job events and
results, chunk requests) comes through :func:`read_message`: bounded in size
and nesting (:mod:`protocol.payload`), parsed into the message type its topic
carries, checked to speak only for the device whose subtree it came on, and —
for results — read with :func:`protocol.result.read_result`. A bad one is
skipped with one line naming the device and the topic (rate-limited: a flood
costs a few lines), never an exception.

:class:`ResultIntake` is the one way a received result enters the store: only
from a device the job was sent to (the job journal says so), keyed by (job,
device); a different second result for the same key is kept as a result event,
not a row; and only what was stored is acknowledged to the device.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol import topics
from protocol.errors import ProtocolError, shown
from protocol.messages import (
    ChunkRequest,
    DeviceInfo,
    DeviceState,
    JobEvent,
    JobResult,
    Message,
    ResultAck,
    decode_json,
    parse_message,
)
from protocol.payload import MAX_JSON_BYTES, first_line
from protocol.ratelimit import LogLimiter
from protocol.result import read_result

if TYPE_CHECKING:
    from hostctl.store import ResultStore
    from protocol.signing import SigningKey

logger = logging.getLogger(__name__)

CONTROL_TTL_S = 3600.0
"""Validity of the acks (and collect and cancel requests) the host sends."""

MAX_PAYLOAD_BYTES: dict[str, int] = {
    "state": 16 * 1024,
    "info": 1024 * 1024,
    "event": 64 * 1024,
    "request": 256 * 1024,
    "result": MAX_JSON_BYTES,
}
"""Largest payload read per topic kind (a state is ~150 bytes, an info a few KB with
the cached models listed, a result with 20,000 kept samples ~150 KB)."""

EXPECTED: dict[str, type[Message]] = {
    "state": DeviceState,
    "info": DeviceInfo,
    "event": JobEvent,
    "result": JobResult,
    "request": ChunkRequest,
}
"""The one message type each topic kind the host reads may carry."""

_lines = LogLimiter(logger, per_minute=10)


def skip(topic: str, device_id: str | None, reason: str, *, kind: str = "message") -> None:
    """Say, in one rate-limited line, that a message was ignored and why."""
    where = f"device {device_id}" if device_id else "an unknown device"
    _lines.warning(
        f"bad-{kind}",
        "ignoring a bad %s from %s on %s: %s",
        kind,
        where,
        shown(topic, 160),
        reason[:300],
    )


@dataclass(frozen=True)
class Received:
    """A validated message and where it came from."""

    topic: str
    where: topics.ParsedTopic
    message: Message

    @property
    def device_id(self) -> str:
        """The device that sent it: its topic's device (a chunk request's body names it)."""
        return self.where.device_id or str(getattr(self.message, "device_id", ""))


def read_message(topic: str, payload: bytes) -> Received | None:
    """The message on `topic`, validated for the host's use; None (after one
    line) when it is bad or not one the host reads. Never raises."""
    try:
        where = topics.parse(topic)
    except ProtocolError as exc:
        skip(topic, None, str(exc))
        return None
    expected = EXPECTED.get(where.kind)
    if expected is None:
        return None  # chunks and control messages: the host's own traffic
    try:
        data = decode_json(payload, max_bytes=MAX_PAYLOAD_BYTES[where.kind])
        message = parse_message(data, expected)
        _check_sender(where, message)
    except ProtocolError as exc:
        skip(topic, where.device_id or _claimed_device(payload), str(exc), kind=where.kind)
        return None
    except Exception as exc:  # a validator bug must cost one line, never the command
        skip(topic, where.device_id, f"unreadable ({first_line(exc)})", kind=where.kind)
        return None
    return Received(topic, where, message)


def _claimed_device(payload: bytes) -> str | None:
    """The device a (bad) chunk request claims to come from, for the line about it."""
    try:
        claimed = decode_json(payload, max_bytes=MAX_PAYLOAD_BYTES["request"]).get("device_id")
        return topics.check_device_id(claimed) if isinstance(claimed, str) else None
    except ProtocolError:
        return None


def _check_sender(where: topics.ParsedTopic, message: Message) -> None:
    """ProtocolError unless the message speaks for the device (and job, and blob)
    its topic names: a device may only publish under its own subtree (the broker's
    ACL enforces that), and the body must not name anyone else."""
    if isinstance(message, ChunkRequest):
        if message.sha256 != where.sha256:
            raise ProtocolError("the request names another blob than its topic")
        return
    device_id = getattr(message, "device_id", None)
    if device_id != where.device_id:
        raise ProtocolError(f"it claims to come from device {shown(device_id)}")
    if isinstance(message, (JobEvent, JobResult)) and message.job_id != where.job_id:
        raise ProtocolError(f"it names job {shown(message.job_id)}, its topic another")
    if isinstance(message, JobResult):
        device = message.result.get("device")
        if device is not None and not isinstance(device, dict):
            raise ProtocolError("its result's device section is not an object")
        claimed = (device or {}).get("id", device_id)
        if claimed != device_id:
            raise ProtocolError(f"its result claims to be from device {shown(claimed)}")
        read_result(message.result)  # not a readable result: ResultError (a ProtocolError)


def received_document(message: JobResult) -> dict[str, Any]:
    """The result document to store: the job id and device id the message (and its
    checked topic) gave, whatever the document left out."""
    doc = dict(message.result)
    doc["job_id"] = message.job_id
    device = doc.get("device")
    doc["device"] = {**(device if isinstance(device, dict) else {}), "id": message.device_id}
    return doc


class ResultIntake:
    """Stores the results a session receives, under the journal's rule, and
    acknowledges what it stored (nothing when there is no key)."""

    def __init__(self, session: Any, store: ResultStore, key: SigningKey | None) -> None:
        self.session = session
        self.store = store
        self.key = key

    def document(self, message: JobResult) -> dict[str, Any]:
        """The document to store and show: as received, with what this host vouches
        for about the model it sent (variant record, gzip size: hostctl.provenance,
        from the job's journal entry); keys a device wrote there itself are dropped."""
        from hostctl.provenance import vouch

        doc = received_document(message)
        entry = self.store.get_job(message.job_id, message.device_id)
        if entry is None:
            return vouch(doc, None, None)
        return vouch(doc, entry.model_facts, entry.sha256)

    def take(self, message: JobResult, topic: str = "") -> str:
        """File one validated result: ``"new"``, ``"same"`` (stored before),
        ``"conflict"`` (a different result is stored: kept as an event),
        ``"refused"`` (the job was not sent to that device, or too many conflicts:
        nothing stored, nothing acknowledged)."""
        device_id, job_id = message.device_id, message.job_id
        topic = topic or topics.job_result(device_id, job_id)
        if not self.store.sent_to(job_id, device_id):
            skip(
                topic,
                device_id,
                f"job {job_id} was not sent to {device_id} (not in this host's job journal)",
                kind="result",
            )
            return "refused"
        doc = self.document(message)
        filed = self.store.add_received(doc)
        if filed == "refused":
            skip(topic, device_id, f"too many conflicting results of job {job_id}", kind="result")
            return filed
        if filed == "conflict":
            _lines.warning(
                "conflict",
                "device %s sent a different result for job %s: the stored one stays, "
                "the new one is kept as an event (hostctl jobs --json)",
                device_id,
                job_id,
            )
        elif filed == "new":
            self.journal_result(job_id, device_id, doc)
        self.ack(device_id, [job_id])  # stored (or stored before): the device may drop it
        return filed

    def journal_result(self, job_id: str, device_id: str, doc: dict[str, Any]) -> None:
        """The job's final state in the journal, from its result."""
        result = read_result(doc)
        if result.ok:
            self.store.update_job(job_id, device_id, "succeeded")
            return
        error = result.error
        code = error.code if error is not None else "error"
        message = error.message if error is not None else "the device reported an error"
        self.store.update_job(job_id, device_id, "failed", f"{message} [{code}]")

    def ack(self, device_id: str, job_ids: list[str]) -> None:
        if self.key is None:
            return
        from protocol.signing import seal

        now = time.time()
        ack = ResultAck(
            device_id=device_id, job_ids=job_ids, issued_at=now, expires_at=now + CONTROL_TTL_S
        )
        self.session.publish(topics.job(device_id), seal(ack, self.key))

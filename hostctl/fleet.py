"""The fleet as the host sees it, and pushing models to it.

Inventory comes from the retained ``state`` and ``info`` topics. :func:`push`
orchestrates one push: resolve targets, sign one manifest per (device, model),
publish each chunk of a model or data file (``--eval``/``--inputs`` attachments)
once for every target that lacks it, repair what a
device reports missing (only for targets of that file, once a second per
device, within a per-push budget), re-send a job a restarted agent lost, store
every result (before anything else sees it) and acknowledge it.

Every message read goes through :mod:`hostctl.intake` first (bounded, validated,
speaking only for its own device); a result is stored only when the job journal
says its job was sent to that device (:class:`hostctl.intake.ResultIntake`).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hostctl.errors import HostctlError
from hostctl.intake import CONTROL_TTL_S, ResultIntake, read_message
from hostctl.mqtt import HostSession
from hostctl.store import JournalEntry, ResultStore
from protocol import topics
from protocol.errors import ProtocolError
from protocol.messages import (
    ATTACHMENT_FORMATS,
    DEFAULT_CHUNK_SIZE,
    AttachmentRef,
    BlobRef,
    ChunkRequest,
    Collect,
    DeviceInfo,
    DeviceState,
    JobEvent,
    JobManifest,
    JobResult,
    ModelRef,
)
from protocol.result import read_result
from protocol.signing import SigningKey, seal

logger = logging.getLogger(__name__)

INVENTORY_QUIET_S = 0.3
"""Retained messages come right after the subscription; this much silence ends them."""
REPAIR_COALESCE_S = 0.15
"""Chunk requests within this window are served together (each chunk once)."""
REPAIR_DEVICE_INTERVAL_S = 1.0
"""A device's chunk requests are heard at most once per this long (an agent asks
again after 2 s without chunks; a flood of requests is one request)."""
REPAIR_REPEAT_S = 1.0
"""A chunk published this recently is not published again (it is on its way)."""
REPAIR_BUDGET_COPIES = 4
"""Repairs of one push publish at most this many times the bytes its targets
lacked: a device that keeps asking (or one forging requests in another's name)
can cost the fleet a bounded amount, never an endless stream."""
SUBSCRIBE_GRACE_S = 3.0
"""How long to wait for targets to start downloading before chunks go out anyway."""
MANIFEST_MARGIN_S = 120.0
RESEND_SILENT_S = 3.0
"""A job not heard of for this long has its manifest sent again (the agent answers a
repeated manifest with the job's current state, or re-sends its result): a manifest
lost on the way — a device's dead connection the broker has not noticed yet, a
flooded agent — then costs seconds, not the whole timeout."""
RESEND_MAX_S = 30.0
"""The silence before a re-send doubles after each one, up to this."""

FLEET_SUBSCRIPTIONS: list[tuple[str, int]] = [
    (topics.ALL_STATES, 1),
    (topics.ALL_INFOS, 1),
    (topics.ALL_JOB_RESULTS, 1),
    # QoS 0 for events and chunk requests: they only matter live, and a broker that
    # queued them while hostctl is away (download progress is chatty) could reach its
    # queue limit and then drop the results this persistent session exists for.
    (topics.ALL_JOB_EVENTS, 0),
    (topics.ALL_BLOB_REQUESTS, 0),
]
INVENTORY_SUBSCRIPTIONS: list[tuple[str, int]] = [(topics.ALL_STATES, 1), (topics.ALL_INFOS, 1)]

HOST_STATES = ("timed_out", "canceled")
FINAL_STATES = ("rejected", "succeeded", "failed", "timed_out", "canceled")


@dataclass
class Device:
    """One device of the fleet, from its retained state and info."""

    id: str
    state: DeviceState | None = None
    info: DeviceInfo | None = None

    @property
    def status(self) -> str:
        """'online' | 'busy' | 'offline' (no state yet counts as offline)."""
        return self.state.state if self.state is not None else "offline"

    @property
    def last_seen(self) -> float | None:
        stamps = [m.ts for m in (self.state, self.info) if m is not None]
        return max(stamps) if stamps else None

    @property
    def tags(self) -> list[str]:
        return list(self.info.tags) if self.info is not None else []

    def to_json(self) -> dict[str, Any]:
        """The `devices --json` shape: {id, state, last_seen, tags, info{...}}."""
        info: dict[str, Any] = {}
        if self.info is not None:
            info = self.info.to_dict()
            for key in ("type", "v", "device_id", "tags"):
                info.pop(key, None)
        return {
            "id": self.id,
            "state": self.status,
            "last_seen": self.last_seen,
            "tags": self.tags,
            "info": info,
        }


class Fleet:
    """Devices by id, updated from state/info messages."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}

    def update(self, topic: str, payload: bytes) -> DeviceState | DeviceInfo | None:
        """Apply a state/info message; return it (None when it is not one, or bad:
        a bad one costs one line naming the device and topic, see hostctl.intake)."""
        if not _is_inventory(topic):
            return None
        if not payload:  # a cleared retained topic
            try:
                parsed = topics.parse(topic)
            except ProtocolError:
                return None
            if parsed.device_id is not None:
                self.devices.pop(parsed.device_id, None)
            return None
        received = read_message(topic, payload)
        if received is None:
            return None
        message = received.message
        if not isinstance(message, (DeviceState, DeviceInfo)):
            return None
        device = self.devices.setdefault(message.device_id, Device(message.device_id))
        if isinstance(message, DeviceState):
            device.state = message
        else:
            device.info = message
        return message

    def sorted(self) -> list[Device]:
        return [self.devices[k] for k in sorted(self.devices)]


def read_fleet(
    session: HostSession, *, wait: float = 0.0, want: Collection[str] = ()
) -> tuple[Fleet, list[tuple[str, bytes]]]:
    """The fleet from retained messages; also returns the other messages received meanwhile.

    Reads until the retained burst goes quiet (at most 2 s), then keeps listening
    `wait` more seconds. When the caller names the devices it `want`s, it stops as
    soon as each of them has announced its state and info: a push to one device
    need not wait for the rest of the fleet to go quiet.
    """
    fleet = Fleet()
    others: list[tuple[str, bytes]] = []
    start = time.monotonic()
    listen_until = start + wait
    burst_until = start + max(wait, 2.0)
    while True:
        now = time.monotonic()
        if want and now >= listen_until and all(_announced(fleet, d) for d in want):
            return fleet, others
        if now >= burst_until:
            return fleet, others
        item = session.get(min(INVENTORY_QUIET_S, burst_until - now))
        if item is None:
            if time.monotonic() >= listen_until:
                return fleet, others  # quiet, and listened long enough
            continue
        topic, payload = item
        if fleet.update(topic, payload) is None and not _is_inventory(topic):
            others.append((topic, payload))


def _announced(fleet: Fleet, device_id: str) -> bool:
    device = fleet.devices.get(device_id)
    return device is not None and device.state is not None and device.info is not None


def _is_inventory(topic: str) -> bool:
    return topic.endswith("/state") or topic.endswith("/info")


# -- push ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """A file to transfer, content-addressed: a model or a data file."""

    path: Path
    data: bytes
    ref: BlobRef
    facts: Mapping[str, Any] = field(default_factory=dict)
    """What the host vouches for about a model (``hostctl.provenance.model_facts``):
    journaled with each job, attached to its result."""

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        fmt: str,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        kind: type[BlobRef] = ModelRef,
    ) -> Blob:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise HostctlError(f"{path}: no such file") from None
        except OSError as exc:
            raise HostctlError(f"cannot read {path}: {exc}") from None
        if not data:
            raise HostctlError(
                f"{path} is empty: not a {'model' if kind is ModelRef else 'data file'}"
            )
        ref = kind(
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            name=path.name,
            format=fmt,
            chunk_size=chunk_size,
        )
        return cls(path, data, ref)

    @property
    def model_ref(self) -> ModelRef:
        assert isinstance(self.ref, ModelRef)
        return self.ref

    @property
    def attachment_ref(self) -> AttachmentRef:
        assert isinstance(self.ref, AttachmentRef)
        return self.ref

    def chunk(self, index: int) -> bytes:
        size = self.ref.chunk_size
        return self.data[index * size : (index + 1) * size]


def model_format(path: Path) -> str:
    """'tflite' or 'onnx' from the file's content, as `hostctl profile` and
    `inspect` decide it; HostctlError (one line) for a file that is neither, so
    nothing is sent to a device that could only fail on it."""
    from profiler.backends import detect_format
    from profiler.errors import ProfilerError

    try:
        return detect_format(path)
    except ProfilerError as exc:
        raise HostctlError(exc.message) from None


_OPTION_OF = {"eval": "--eval", "inputs": "--inputs"}
_EMPTY_ZIP = b"PK\x05\x06"  # np.savez of no arrays: a zip with only its end record


def check_attachment(kind: str, path: Path) -> str:
    """The format of the data file of ``--eval`` (a labelled .npz) or ``--inputs``
    (.npy/.npz); HostctlError naming the option when it is missing or of the wrong type."""
    allowed = ATTACHMENT_FORMATS[kind]
    option = _OPTION_OF.get(kind, kind)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in allowed:
        expected = " or ".join("." + f for f in allowed)
        raise HostctlError(f"{option} {path}: expected a {expected} file")
    from profiler.inputs import NPY_MAGIC, ZIP_MAGIC

    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise HostctlError(f"{option} {path}: no such file") from None
    except OSError as exc:
        raise HostctlError(f"{option} {path}: cannot read it ({exc})") from None
    magic = (NPY_MAGIC,) if fmt == "npy" else (ZIP_MAGIC, _EMPTY_ZIP)
    if not head.startswith(magic):
        raise HostctlError(
            f"{option} {path}: not a .{fmt} file written by numpy "
            f"(save it with np.{'savez' if fmt == 'npz' else 'save'})"
        )
    return fmt


def attachment_blob(kind: str, path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Blob:
    """The data file of ``--eval``/``--inputs``, checked, ready to travel like a model."""
    fmt = check_attachment(kind, path)
    return Blob.from_file(path, fmt=fmt, chunk_size=chunk_size, kind=AttachmentRef)


@dataclass
class Job:
    """One (device, model) job of a push, as the host tracks it."""

    device_id: str
    job_id: str
    blob: Blob
    manifest: JobManifest
    attachments: dict[str, Blob] = field(default_factory=dict)
    state: str = "sent"
    reason: str | None = None
    code: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    epoch: int | None = None
    heard_at: float = 0.0
    """When (monotonic) the manifest was last sent or the device last said anything
    about the job."""
    resend_after: float = RESEND_SILENT_S
    resends: int = 0

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def ok(self) -> bool:
        return self.state == "succeeded"

    @property
    def model_name(self) -> str:
        return self.blob.ref.name

    @property
    def hashes(self) -> set[str]:
        """Hashes of every file the job needs on the device (model and attachments)."""
        return {self.blob.ref.sha256} | {b.ref.sha256 for b in self.attachments.values()}


@dataclass(frozen=True)
class Failure:
    """A target that gave no successful result, and why."""

    device_id: str
    model: str | None
    state: str
    reason: str
    fatal: bool = True
    """False for a target left out on purpose (an offline device under --skip-offline):
    named in the outcome, not a reason to exit non-zero."""


@dataclass
class PushOutcome:
    """What a push produced: result documents (ok and error ones) and failures."""

    results: list[dict[str, Any]]
    failures: list[Failure]
    jobs: list[Job]
    left_running: list[Job] = field(default_factory=list)
    """Jobs still going on their devices when Ctrl-C stopped the waiting."""

    @property
    def interrupted(self) -> bool:
        return bool(self.left_running)


def resolve_targets(
    fleet: Fleet,
    *,
    devices: Sequence[str],
    tags: Sequence[str],
    all_devices: bool,
    skip_offline: bool = False,
) -> tuple[list[str], list[Failure]]:
    """Device ids to push to, and failures for targets that cannot take a job.

    A device that ``--tag``/``--all`` selects but that is offline is a failure
    (``skipped``: the push exits non-zero), or with `skip_offline` a non-fatal one:
    either way the outcome names it."""
    if not (devices or tags or all_devices):
        raise HostctlError("no target: name devices with --device ID, --tag TAG, or use --all")
    targets: list[str] = []
    failures: list[Failure] = []
    for device_id in devices:
        try:
            topics.check_device_id(device_id)
        except ProtocolError as exc:
            raise HostctlError(str(exc)) from None
        device = fleet.devices.get(device_id)
        if device is None:
            failures.append(Failure(device_id, None, "unknown", "no such device on this broker"))
        elif device.status == "offline":
            failures.append(Failure(device_id, None, "offline", "device is offline"))
        elif device_id not in targets:
            targets.append(device_id)
    for device in fleet.sorted():
        if device.id in targets or not (all_devices or any(t in device.tags for t in tags)):
            continue
        if device.status == "offline":
            reason = (
                "offline" if skip_offline else "offline (--skip-offline pushes to the others only)"
            )
            failures.append(Failure(device.id, None, "skipped", reason, fatal=not skip_offline))
            continue
        targets.append(device.id)
    for tag in tags:
        if not any(tag in d.tags for d in fleet.devices.values()):
            failures.append(Failure(f"tag:{tag}", None, "unknown", "no device has this tag"))
    if not targets and all(f.state == "skipped" for f in failures):
        offline = ", ".join(f.device_id for f in failures)
        raise HostctlError(
            "no online device matches the targets"
            + (f" ({offline}: offline)" if offline else "")
            + " (see `hostctl devices`)"
        )
    return targets, failures


UpdateCallback = Callable[[Job], None]


class Pusher:
    """Runs one push over a connected session (see :func:`push`)."""

    def __init__(
        self,
        session: HostSession,
        store: ResultStore,
        key: SigningKey,
        *,
        fleet: Fleet,
        on_update: UpdateCallback | None = None,
    ) -> None:
        self.session = session
        self.store = store
        self.key = key
        self.fleet = fleet
        self.on_update = on_update or (lambda job: None)
        self.jobs: dict[str, Job] = {}
        self.blobs: dict[str, Blob] = {}
        self.intake = ResultIntake(session, store, key)
        self.chunks_published = 0
        self.repair_bytes = 0
        """Bytes published by repairs (bounded by :attr:`repair_budget`)."""
        self._repairs: dict[str, set[int]] = {}
        self._repair_due: float | None = None
        self._heard_request: dict[str, float] = {}
        self._published_at: dict[tuple[str, int], float] = {}
        self._budget_said = False
        self.extra_results: list[dict[str, Any]] = []
        self.interrupted = False
        """Ctrl-C stopped the waiting (the jobs go on)."""

    # -- sending -----------------------------------------------------------------
    def add_job(
        self,
        device_id: str,
        blob: Blob,
        settings: dict[str, Any],
        label: str | None,
        timeout: float,
        attachments: dict[str, Blob] | None = None,
    ) -> Job:
        issued = time.time()
        job_id = uuid.uuid4().hex[:16]
        attachments = dict(attachments or {})
        manifest = JobManifest(
            job_id=job_id,
            device_id=device_id,
            model=blob.model_ref,
            settings=settings,
            issued_at=issued,
            expires_at=issued + timeout + MANIFEST_MARGIN_S,
            label=label,
            attachments={kind: b.attachment_ref for kind, b in attachments.items()},
        )
        device = self.fleet.devices.get(device_id)
        job = Job(device_id, job_id, blob, manifest, attachments)
        if device is not None and device.state is not None:
            job.epoch = device.state.epoch
        self.jobs[job_id] = job
        for each in (blob, *attachments.values()):
            self.blobs.setdefault(each.ref.sha256, each)
        return job

    def journal(self, job: Job) -> None:
        """Record the job in the store's journal (HostctlError when it cannot be:
        then nothing is sent)."""
        manifest = job.manifest
        self.store.journal_job(
            job_id=job.job_id,
            device_id=job.device_id,
            model_name=job.model_name,
            sha256=job.blob.ref.sha256,
            label=manifest.label,
            settings=manifest.settings,
            sent_at=time.time(),
            expires_at=manifest.expires_at,
            model_facts=job.blob.facts,
        )

    def send_manifest(self, job: Job) -> None:
        self.session.publish(topics.job(job.device_id), seal(job.manifest, self.key))
        job.heard_at = time.monotonic()
        logger.debug("sent job %s (%s) to %s", job.job_id, job.model_name, job.device_id)

    def lacks(self, job: Job, sha256: str) -> bool:
        """True when the job needs this file and its target has not announced it cached."""
        if sha256 not in job.hashes:
            return False
        device = self.fleet.devices.get(job.device_id)
        cached = device.info.cached_models if device is not None and device.info else []
        return sha256 not in cached

    def needs_blob(self, job: Job) -> bool:
        """True when the job's target lacks any of the files the job needs."""
        return any(self.lacks(job, sha) for sha in job.hashes)

    def publish_chunks(self, blob: Blob, indices: Iterable[int]) -> int:
        """Publish these chunks of `blob`; the bytes published."""
        sent = 0
        now = time.monotonic()
        for index in sorted(set(indices)):
            if 0 <= index < blob.ref.chunks:
                chunk = blob.chunk(index)
                self.session.publish(topics.blob_chunk(blob.ref.sha256, index), chunk)
                self._published_at[(blob.ref.sha256, index)] = now
                self.chunks_published += 1
                sent += len(chunk)
        return sent

    @property
    def repair_budget(self) -> int:
        """Most bytes the repairs of this push may publish: :data:`REPAIR_BUDGET_COPIES`
        times each file's size for each target that lacked it (at least once)."""
        total = 0
        for sha, blob in self.blobs.items():
            lacking = sum(1 for job in self.jobs.values() if self.lacks(job, sha))
            total += blob.ref.size_bytes * max(1, lacking)
        return REPAIR_BUDGET_COPIES * total

    def resend_silent(self) -> None:
        """Send again the manifest of every unfinished job its (online) device has
        said nothing about for a while; the wait doubles after each re-send."""
        now = time.monotonic()
        for job in self.jobs.values():
            if job.done or now - job.heard_at < job.resend_after:
                continue
            device = self.fleet.devices.get(job.device_id)
            if device is not None and device.status == "offline":
                continue  # it gets the job again when it comes back (new epoch)
            logger.info(
                "no news of job %s from %s for %.0f s: re-sending its manifest",
                job.job_id,
                job.device_id,
                now - job.heard_at,
            )
            job.resends += 1
            job.resend_after = min(job.resend_after * 2, RESEND_MAX_S)
            self.send_manifest(job)

    # -- receiving ---------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one received message to the push (a bad one is skipped with one line)."""
        if _is_inventory(topic):
            update = self.fleet.update(topic, payload)
            if isinstance(update, DeviceState):
                self._on_state(update)
            return
        received = read_message(topic, payload)
        if received is None:
            return
        message = received.message
        if isinstance(message, JobResult):
            self._on_result(message, topic)
        elif isinstance(message, JobEvent):
            self._on_event(message)
        elif isinstance(message, ChunkRequest):
            self._on_chunk_request(message)

    def _on_state(self, state: DeviceState) -> None:
        for job in self.jobs.values():
            if job.device_id != state.device_id or job.done:
                continue
            if job.epoch is not None and state.epoch != job.epoch and state.state != "offline":
                # The agent restarted and may have lost the job: send it again (same
                # id; the agent re-publishes a finished result instead of re-running).
                logger.info(
                    "%s restarted (epoch %s): re-sending job %s",
                    state.device_id,
                    state.epoch,
                    job.job_id,
                )
                job.epoch = state.epoch
                job.progress = {"resent": True}
                self.send_manifest(job)
            elif job.epoch is None:
                job.epoch = state.epoch
            job.progress["device"] = state.state
            self.on_update(job)

    def _on_event(self, event: JobEvent) -> None:
        job = self.jobs.get(event.job_id)
        if job is None or job.device_id != event.device_id or job.done:
            return
        job.heard_at = time.monotonic()
        if event.state == "succeeded":
            # Done only when the result document is here (the agent publishes it first).
            return
        if event.progress or event.state != job.state:
            # (The answer to a re-sent manifest may carry no progress: keep the last.)
            job.progress = dict(event.progress)
        job.state = event.state
        job.reason, job.code = event.reason, event.code
        self.on_update(job)

    def _on_result(self, message: JobResult, topic: str) -> None:
        filed = self.intake.take(message, topic)  # stored BEFORE it is shown or acknowledged
        if filed == "refused":
            return
        doc = self.intake.document(message)
        job = self.jobs.get(message.job_id)
        if job is None or job.device_id != message.device_id:
            if filed == "new":
                self.extra_results.append(doc)
            return
        if job.result is not None:
            return
        if filed != "new":  # stored before this push heard it: that one is the result
            doc = self.store.get(job.job_id, job.device_id) or doc
        job.result = doc
        result = read_result(doc)
        if result.ok:
            job.state, job.reason, job.code = "succeeded", None, None
        else:
            job.state = "failed"
            job.code = result.error.code if result.error else "error"
            job.reason = result.error.message if result.error else "the device reported an error"
        self.on_update(job)

    def _on_chunk_request(self, request: ChunkRequest) -> None:
        """Queue the chunks a target of this push misses: only a device the blob was
        pushed to (for an unfinished job) is heard, once per
        :data:`REPAIR_DEVICE_INTERVAL_S`; requests are coalesced (:meth:`flush_repairs`)."""
        blob = self.blobs.get(request.sha256)
        if blob is None:
            return  # another push's file
        device_id = request.device_id
        wanted = [
            job
            for job in self.jobs.values()
            if job.device_id == device_id
            and request.sha256 in job.hashes
            and not job.done
            and request.job_id in (None, job.job_id)
        ]
        if not wanted:
            logger.info(
                "ignoring a chunk request for %s from %s: it was not pushed to that device",
                blob.ref.name,
                device_id,
            )
            return
        now = time.monotonic()
        if now - self._heard_request.get(device_id, -1e9) < REPAIR_DEVICE_INTERVAL_S:
            logger.debug("coalescing a chunk request of %s into the last one", device_id)
            return
        self._heard_request[device_id] = now
        missing = {i for i in request.missing if 0 <= i < blob.ref.chunks}
        if not missing:
            return
        for job in wanted:
            job.heard_at = now  # asking for chunks is news of the job
        self._repairs.setdefault(request.sha256, set()).update(missing)
        if self._repair_due is None:
            self._repair_due = now + REPAIR_COALESCE_S

    def flush_repairs(self, *, force: bool = False) -> None:
        if self._repair_due is None or (not force and time.monotonic() < self._repair_due):
            return
        now = time.monotonic()
        budget = self.repair_budget
        for sha, indices in self._repairs.items():
            blob = self.blobs[sha]
            due = [
                i
                for i in sorted(indices)
                if now - self._published_at.get((sha, i), -1e9) >= REPAIR_REPEAT_S
            ]
            left = max(0, budget - self.repair_bytes)
            fits = []
            for index in due:
                size = len(blob.chunk(index))
                if size > left:
                    break
                fits.append(index)
                left -= size
            if len(fits) < len(due) and not self._budget_said:
                self._budget_said = True
                logger.warning(
                    "the repairs of this push reached their limit (%d bytes, %d x what the "
                    "targets lacked): further chunk requests are not served; a device that "
                    "still misses chunks fails its job, push again",
                    budget,
                    REPAIR_BUDGET_COPIES,
                )
            if fits:
                logger.info("repairing %d chunk(s) of %s", len(fits), sha[:12])
                self.repair_bytes += self.publish_chunks(blob, fits)
        self._repairs.clear()
        self._repair_due = None

    # -- loop --------------------------------------------------------------------
    def pump(self, until: float, stop: Callable[[], bool]) -> None:
        """Handle messages until `until` (monotonic) or `stop()` is true."""
        while not stop():
            now = time.monotonic()
            if now >= until:
                return
            wait = until - now
            if self._repair_due is not None:
                wait = min(wait, max(0.0, self._repair_due - now))
            item = self.session.get(min(wait, 0.5))
            if item is not None:
                self.handle(*item)
            self.flush_repairs()
            self.resend_silent()

    def waiting_for_subscription(self, sha: str) -> bool:
        return any(
            self.lacks(j, sha) and not j.done and j.state in ("sent", "queued", "accepted")
            for j in self.jobs.values()
        )

    def run(self, timeout: float) -> None:
        """Send every job, transfer blobs, wait for results (KeyboardInterrupt cancels)."""
        deadline = time.monotonic() + timeout
        for job in self.jobs.values():
            self.journal(job)  # before anything is sent: a host that dies later still knows
        try:
            for job in self.jobs.values():
                self.send_manifest(job)
                self.on_update(job)
            for sha, blob in self.blobs.items():
                if not any(self.lacks(j, sha) for j in self.jobs.values()):
                    logger.info("%s is cached on every target: no transfer", blob.ref.name)
                    continue
                # Chunks are not retained: wait until targets have subscribed (their
                # `downloading` event follows the subscription), stragglers ask later.
                grace = min(deadline, time.monotonic() + SUBSCRIBE_GRACE_S)
                self.pump(grace, lambda sha=sha: not self.waiting_for_subscription(sha))  # type: ignore[misc]
                if not any(self.lacks(j, sha) and not j.done for j in self.jobs.values()):
                    continue  # every target that lacked it rejected the job: send nothing
                self.publish_chunks(blob, range(blob.ref.chunks))
            self.pump(deadline, lambda: all(j.done for j in self.jobs.values()))
            self._finish("timed_out", "no result within the timeout")
        except KeyboardInterrupt:
            # Ctrl-C stops the waiting, not the jobs: they go on on their devices and
            # `hostctl collect` fetches their results later.
            self.interrupted = True
        self._journal_states()

    def _journal_states(self) -> None:
        """Each job's state at the end of the push, in the journal (best effort: the
        results are stored already, a store that fails now must not hide them).
        A job with a result was journaled when the result was stored."""
        try:
            for job in self.jobs.values():
                if job.result is None:
                    self.store.update_job(job.job_id, job.device_id, job.state, job.reason)
        except HostctlError as exc:
            logger.warning("job states not journaled: %s", exc)

    def _finish(self, state: str, reason: str) -> None:
        for job in self.jobs.values():
            if not job.done:
                device = self.fleet.devices.get(job.device_id)
                detail = reason
                if state == "timed_out" and device is not None and device.status == "offline":
                    detail = f"{reason} (the device went offline)"
                elif state == "timed_out" and job.state not in ("sent",):
                    detail = f"{reason} (last state: {job.state})"
                job.state, job.reason = state, detail
                self.on_update(job)

    def outcome(self, pre_failures: Sequence[Failure]) -> PushOutcome:
        results = [j.result for j in self.jobs.values() if j.result is not None]
        failures = list(pre_failures)
        waiting = []
        for job in self.jobs.values():
            if self.interrupted and not job.done:
                waiting.append(job)
            elif not job.ok:
                failures.append(Failure(job.device_id, job.model_name, job.state, _reason(job)))
        return PushOutcome(results, failures, list(self.jobs.values()), waiting)


def _model_blob(path: Path, chunk_size: int) -> Blob:
    """A model to push, with what the host vouches for about it."""
    from hostctl.provenance import model_facts

    blob = Blob.from_file(path, fmt=model_format(path), chunk_size=chunk_size)
    return replace(blob, facts=model_facts(path, blob.data))


def _reason(job: Job) -> str:
    text = job.reason or job.state
    if job.code and job.code not in text:
        text = f"{text} [{job.code}]"
    return text


def push(
    session: HostSession,
    store: ResultStore,
    key: SigningKey,
    *,
    models: Sequence[Path],
    settings: dict[str, Any] | Sequence[dict[str, Any]],
    devices: Sequence[str] = (),
    tags: Sequence[str] = (),
    all_devices: bool = False,
    label: str | None = None,
    timeout: float = 600.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    attachments: dict[str, Path] | None = None,
    on_update: UpdateCallback | None = None,
    on_targets: Callable[[list[Job]], None] | None = None,
    skip_offline: bool = False,
    plan: Sequence[tuple[int, int, str | None]] | None = None,
) -> PushOutcome:
    """Push `models` to the targets over a connected session and wait for the results.

    `attachments` are data files by kind ("eval": a labelled .npz for top-1
    accuracy, "inputs": a .npy/.npz of inputs); they travel and are cached like the
    models, and every job gets them. `settings` must not name files (eval_path,
    inputs_path): a device only uses the files it received.

    Results (error results too) are stored before they are shown and acknowledged.
    Failures cover unknown/offline targets, rejected/failed jobs, timed_out and
    canceled (Ctrl-C) ones. A list of `settings` is a sweep: one job per device x
    model x setting (each file is still transferred once).

    `plan` lists each device's jobs in the order they are sent as (model index,
    settings index, label) triples (a label of None: `label`); an entry may repeat
    (the gate's interleaved ABBA rounds). A device runs them in that order once their
    files are there: a job whose files it holds does not wait for one whose files are
    still downloading (the live check sends a warm-up run first for that reason).
    Without it: every model x setting, once.
    """
    sweep = [settings] if isinstance(settings, dict) else list(settings)
    blobs = [_model_blob(Path(m), chunk_size) for m in models]
    data = {
        kind: attachment_blob(kind, Path(path), chunk_size=chunk_size)
        for kind, path in (attachments or {}).items()
    }
    # Named devices only: no need to hear the whole fleet out.
    want = devices if devices and not tags and not all_devices else ()
    fleet, early = read_fleet(session, want=want)
    targets, failures = resolve_targets(
        fleet, devices=devices, tags=tags, all_devices=all_devices, skip_offline=skip_offline
    )
    for point in sweep:
        _warn_oversubscribed(fleet, targets, point.get("threads"))
    pusher = Pusher(session, store, key, fleet=fleet, on_update=on_update)
    if plan is None:
        plan = [(m, p, None) for m in range(len(blobs)) for p in range(len(sweep))]
    for device_id in targets:
        for model_index, point_index, job_label in plan:
            pusher.add_job(
                device_id, blobs[model_index], sweep[point_index], job_label or label, timeout, data
            )
    if on_targets is not None:
        on_targets(list(pusher.jobs.values()))
    for topic, payload in early:
        pusher.handle(topic, payload)
    pusher.run(timeout)
    session.wait_published(timeout=5.0)
    return pusher.outcome(failures)


def _warn_oversubscribed(fleet: Fleet, targets: Sequence[str], threads: Any) -> None:
    from hostctl.options import threads_warning

    if not isinstance(threads, int) or isinstance(threads, bool):
        return
    for device_id in targets:
        device = fleet.devices.get(device_id)
        cores = device.info.device.get("cores") if device and device.info else None
        if isinstance(cores, int) and not isinstance(cores, bool):
            warning = threads_warning(threads, cores, device_id)
            if warning:
                logger.warning("%s", warning)


@dataclass
class Collected:
    """What :func:`collect` received, stored and found lost."""

    received: int = 0
    """Results received that passed validation."""
    new: int = 0
    conflicts: int = 0
    """Results different from the one stored for their (job, device): kept as events."""
    refused: int = 0
    """Results of jobs the journal did not send to their device: not stored, not acked."""
    expired: list[JournalEntry] = field(default_factory=list)
    """Jobs past their expiry without a result, now journaled ``expired``."""


def collect(
    session: HostSession, store: ResultStore, key: SigningKey | None, *, wait: float = 3.0
) -> Collected:
    """Ask every known device to re-send unacknowledged results; store and ack them
    (only results of jobs the journal sent to their device); then journal the jobs
    that expired without a result as ``expired``.

    Without a key, nothing is sent to the devices but the results the broker queued
    for this session are still stored (and not acknowledged).
    """
    fleet, early = read_fleet(session)
    if key is not None:
        now = time.time()
        for device in fleet.sorted():
            if device.status != "offline":
                request = Collect(
                    device_id=device.id, issued_at=now, expires_at=now + CONTROL_TTL_S
                )
                session.publish(topics.job(device.id), seal(request, key))
    intake = ResultIntake(session, store, key)
    collected = Collected()
    pending = list(early)
    end = time.monotonic() + wait
    while True:
        for topic, payload in pending:
            if not topic.endswith("/result"):
                continue
            received = read_message(topic, payload)
            if received is None or not isinstance(received.message, JobResult):
                continue
            collected.received += 1
            filed = intake.take(received.message, topic)
            collected.new += filed == "new"
            collected.conflicts += filed == "conflict"
            collected.refused += filed == "refused"
        left = end - time.monotonic()
        if left <= 0:
            break
        item = session.get(left)
        pending = [item] if item is not None else []
    session.wait_published(timeout=5.0)
    collected.expired = expire_lost_jobs(store)
    return collected


def expire_lost_jobs(store: ResultStore, now: float | None = None) -> list[JournalEntry]:
    """Journal every pending job past its expiry without a stored result as
    ``expired`` (its device will not run it any more); the jobs, as they were."""
    lost = store.lost_jobs(now)
    for entry in lost:
        store.update_job(
            entry.job_id,
            entry.device_id,
            "expired",
            f"no result by its expiry (last state: {entry.state})",
        )
    return lost

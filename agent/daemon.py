"""The edgeprof agent: receives signed jobs, fetches models, runs the profiler,
publishes results.

Threads: paho's network thread only queues messages (agent.mqtt); the main
thread runs :meth:`Agent.run`, which handles every message and timer; one
runner thread profiles models one at a time (each run in its own child process,
started by profiler.runner), so the agent's own memory stays small and it never
imports a runtime. An unexpected error while handling one message is logged and
the agent goes on: a hostile model, a broken message or a dead broker never
take it down. Bad messages cost a rate-limited line each, never a traceback.

Workers die with the agent (profiler.workers), and are recorded under the
cache directory, so an agent started after ``kill -9`` first stops any worker
its previous life left behind. Each model runs from a directory of its own
(``run/<job>/``) holding only that job's files, so a model naming other files
(ONNX external data) finds none of the cache's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from agent.blobs import ChunkAssembler
from agent.cache import CacheError, ModelCache, atomic_write
from agent.config import AgentSettings
from agent.jobs import JobRecords, JobRunner, ReplayGuard
from agent.mqtt import Inbound, MqttSession
from agent.outbox import Outbox
from profiler.runtimes import job_refusal
from profiler.settings import ProfileSettings
from protocol import topics
from protocol.errors import ProtocolError, SignatureError
from protocol.messages import (
    BlobRef,
    Cancel,
    ChunkRequest,
    Collect,
    DeviceInfo,
    DeviceState,
    JobEvent,
    JobManifest,
    JobResult,
    ResultAck,
    decode_json,
)
from protocol.payload import MAX_CONTROL_BYTES, first_line
from protocol.ratelimit import LogLimiter
from protocol.result import RESULT_SCHEMA
from protocol.signing import envelope_body, open_envelope

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"

MAX_CONTROL_PAYLOAD = MAX_CONTROL_BYTES
FIRST_REQUEST_AFTER_S = 1.0
"""Ask for chunks when none came this long after subscribing."""
QUIET_REQUEST_AFTER_S = 2.0
"""Ask for the missing chunks after this long without a new one."""
MAX_REQUEST_BACKOFF_S = 15.0
PROGRESS_EVERY_S = 0.5
STALE_PARTIAL_S = 3600.0
"""A partial download nobody is fetching, untouched this long, is deleted (at
start-up and in the periodic prune); a younger one stays for a re-sent manifest."""
STALE_TEMP_S = 600.0
"""A temporary file of an interrupted atomic write older than this is deleted."""
PRUNE_EVERY_S = 600.0
HEARTBEAT_EVERY_S = 60.0
"""The retained info is re-published this often (with a new ``ts``), so the host
can say when a device was last heard even after its Last Will replaced its state."""
# Settings that name files on the device: a remote job must not choose them. Data
# files travel as attachments instead; the agent sets these to its cached copies.
_LOCAL_ONLY_SETTINGS = ("inputs_path", "eval_path")


class AgentState(Enum):
    """The daemon's life."""

    STARTING = "starting"
    CONNECTING = "connecting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"


@dataclass
class Job:
    """A verified, accepted job and the blobs (model, attachments) it still waits for."""

    manifest: JobManifest
    settings: ProfileSettings
    waiting: dict[str, BlobRef] = field(default_factory=dict)
    """Blobs by hash still being downloaded; the job runs when this is empty."""
    fetching: dict[str, BlobRef] = field(default_factory=dict)
    """Every blob this job had to download (its progress covers their bytes)."""
    pinned: list[str] = field(default_factory=list)
    """Hashes pinned in the cache for this job (released when it ends)."""
    ended: bool = False
    """Failed before running: downloads no longer serve it."""
    canceled: bool = False
    """Canceled by the host while it waited for its turn: it will not run."""

    def describe(self, sha256: str) -> str:
        """'the model' or 'the eval file NAME', for messages about one blob."""
        if sha256 == self.manifest.model.sha256:
            return "the model"
        for kind, ref in self.manifest.attachments.items():
            if ref.sha256 == sha256:
                return f"the {kind} file {ref.name}"
        return "a file"


@dataclass
class Download:
    """A model being assembled from chunks, and the jobs waiting for it."""

    assembler: ChunkAssembler
    jobs: list[Job]
    next_request_at: float
    backoff: float = QUIET_REQUEST_AFTER_S
    last_progress_at: float = 0.0
    requests_sent: int = 0

    @property
    def expires_at(self) -> float:
        return max((job.manifest.expires_at for job in self.jobs), default=0.0)


def signature_code(exc: SignatureError) -> str:
    """Machine-readable rejection code of a failed envelope check."""
    # A manifest from the future is refused for the same reason as an expired
    # one (its validity window does not hold now); hosts know that code.
    return "expired" if exc.code == "not_yet_valid" else exc.code


def _unverified_job_id(payload: bytes) -> str | None:
    """The job id claimed by an envelope that failed verification — used only to
    address the rejection event, after validating it as a topic level."""
    try:
        body = envelope_body(decode_json(payload, max_bytes=MAX_CONTROL_BYTES))
        job_id = decode_json(body).get("job_id")
        return topics.check_job_id(job_id) if isinstance(job_id, str) else None
    except ProtocolError:
        return None


class Agent:
    """One device's daemon. Call :meth:`run` (blocks) and :meth:`request_stop`."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.device_id = settings.device_id
        root = Path(settings.cache_dir)
        root.mkdir(parents=True, exist_ok=True)
        self.cache = ModelCache(root / "models", settings.cache_quota_bytes)
        self.partial_dir = root / "partial"
        self.outbox = Outbox(root / "outbox")
        self.records = JobRecords(root / "jobs.json")
        self.replays = ReplayGuard(root / "control.json")
        self.run_dir = root / "run"
        self.epoch = self._next_epoch(root / "agent.json")
        self._workers_dir = root / "workers"
        self._stop_leftover_workers()
        shutil.rmtree(self.run_dir, ignore_errors=True)  # an earlier life's, nothing runs now
        self._lines = LogLimiter(log, per_minute=10)
        self._jobs_lock = threading.Lock()
        self._queued: dict[str, Job] = {}
        """Jobs handed to the runner that have not started yet, by id."""
        self._cancel_running: threading.Event | None = None
        self.state = AgentState.STARTING
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._downloads: dict[str, Download] = {}
        self._running_job: str | None = None
        self._runtimes: dict[str, Any] = {}
        self._probe_done = threading.Event()
        self._probed = False
        """The runtimes are known (main thread): jobs can be checked against them."""
        self._awaiting_probe: dict[str, JobManifest] = {}
        """Manifests that came before the probe finished, by job id."""
        self._last_prune = 0.0
        self._last_heartbeat = time.monotonic()
        will = DeviceState(self.device_id, "offline", self.epoch, time.time())
        self.session = MqttSession(
            settings,
            client_id=f"edgeprof-agent-{self.device_id}",
            will_topic=topics.state(self.device_id),
            will_payload=will.to_bytes(),
            control_topic=topics.job(self.device_id),
        )
        self.session.subscribe(topics.job(self.device_id))
        self._prune_files(startup=True)
        self.runner: JobRunner[Job] = JobRunner(self._execute)

    def _stop_leftover_workers(self) -> bool:
        """Kill the workers an earlier life of this agent left running (after a
        kill -9 they should have died with it; a stuck one may not have).
        False while one still lives: no job may start beside it."""
        from profiler import workers

        workers.record_in(self._workers_dir)
        alive = workers.kill_leftovers(self._workers_dir)
        if alive:
            log.error(
                "profiling worker(s) %s of an earlier agent will not die: no job starts "
                "until they are gone",
                ", ".join(map(str, alive)),
            )
        return not alive

    @staticmethod
    def _next_epoch(path: Path) -> int:
        try:
            epoch = int(json.loads(path.read_text(encoding="utf-8")).get("epoch", 0)) + 1
        except (OSError, ValueError, AttributeError, TypeError):
            epoch = 1
        atomic_write(path, json.dumps({"epoch": epoch}).encode())
        return epoch

    # -- life ----------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask :meth:`run` to publish offline, disconnect and return (signal-safe)."""
        self._stop.set()

    def run(self) -> int:
        """Run until :meth:`request_stop`; returns the process exit status (0)."""
        if self.settings.allow_unsigned:
            log.warning(
                "!!! UNSIGNED JOBS ARE ALLOWED (--allow-unsigned): anyone who can publish to "
                "this device's job topic can make it run any model. Development only. !!!"
            )
        log.info("edgeprof-agent %s starting: %s", AGENT_VERSION, self.settings.redacted())
        threading.Thread(target=self._probe, name="edgeprof-probe", daemon=True).start()
        self.runner.start()
        self._set_state(AgentState.CONNECTING)
        self.session.start()
        while not self._stop.is_set():
            self._step()
        self._shutdown()
        return 0

    def _step(self) -> None:
        try:
            diagnosis = self.session.take_diagnosis()
            if diagnosis:
                log.warning("%s", diagnosis)
            if self.session.take_connect():
                self._on_connected()
            if self._probe_done.is_set():
                self._probe_done.clear()
                self._publish_info()
                self._probed = True
                waiting, self._awaiting_probe = self._awaiting_probe, {}
                for manifest in waiting.values():
                    self._on_manifest(manifest)
            message = self.session.next_message(timeout=0.2)
            if message is not None:
                self._handle(message)
            self._tick()
        except Exception as exc:  # a bug: worth a traceback, but not one per message
            self._lines.error(
                f"unexpected:{type(exc).__name__}",
                "unexpected error (%s: %s); the agent goes on",
                type(exc).__name__,
                first_line(exc)[:200],
                exc_info=True,
            )

    def _shutdown(self) -> None:
        self._set_state(AgentState.STOPPING)
        log.info("stopping: publishing offline state and disconnecting")
        for download in self._downloads.values():
            download.assembler.flush()
        # Workers lead their own sessions: the agent's exit would not reach one.
        from profiler.runner import kill_running_workers

        killed = kill_running_workers()
        if killed:
            log.info("stopped %d profiling worker(s) mid-measurement", killed)
        self.runner.stop(timeout=0)
        offline = DeviceState(self.device_id, "offline", self.epoch, time.time())
        self.session.stop([(topics.state(self.device_id), offline.to_bytes())])

    def _probe(self) -> None:
        try:
            from profiler.runtimes import probe_runtimes

            self._runtimes = probe_runtimes()
        except Exception as exc:  # the info message says so; jobs can still be tried
            log.warning("probing runtimes failed: %s", exc)
            self._runtimes = {"error": str(exc)}
        self._probe_done.set()

    def _set_state(self, state: AgentState) -> None:
        with self._state_lock:
            if self.state is not state:
                log.debug("agent state %s -> %s", self.state.name, state.name)
            self.state = state

    # -- announcing ----------------------------------------------------------
    def _on_connected(self) -> None:
        self._set_state(AgentState.BUSY if self.runner.busy else AgentState.IDLE)
        self._publish_state()
        self._publish_info()
        for result in self.outbox.pending():
            self._publish_result(result)
        for download in self._downloads.values():
            self._request_missing(download)

    def _publish_state(self) -> None:
        busy = self._running_job is not None
        state = DeviceState(
            self.device_id,
            "busy" if busy else "online",
            self.epoch,
            time.time(),
            job_id=self._running_job,
        )
        self.session.publish(topics.state(self.device_id), state.to_bytes(), retain=True)

    def _publish_info(self) -> None:
        from profiler.device import device_info

        try:
            free_mb: float | None = shutil.disk_usage(self.settings.cache_dir).free / 2**20
        except OSError:
            free_mb = None
        info = DeviceInfo(
            device_id=self.device_id,
            device=device_info(self.device_id, self.settings.tags),
            runtimes=self._runtimes,
            tags=list(self.settings.tags),
            free_disk_mb=free_mb,
            cached_models=self.cache.hashes(),
            agent_version=AGENT_VERSION,
            ts=time.time(),
            unsigned_jobs_allowed=self.settings.allow_unsigned,
        )
        self.session.publish(topics.info(self.device_id), info.to_bytes(), retain=True)

    def _event(
        self,
        job_id: str,
        state: str,
        *,
        code: str | None = None,
        reason: str | None = None,
        progress: dict[str, Any] | None = None,
    ) -> None:
        event = JobEvent(self.device_id, job_id, state, time.time(), reason, code, progress or {})
        self.session.publish(topics.job_event(self.device_id, job_id), event.to_bytes())

    def _publish_result(self, result: JobResult) -> None:
        self.session.publish(topics.job_result(self.device_id, result.job_id), result.to_bytes())

    # -- incoming ------------------------------------------------------------
    def _handle(self, message: Inbound) -> None:
        try:
            where = topics.parse(message.topic)
        except ProtocolError as exc:
            self._lines.warning("topic", "ignoring a message: %s", exc)
            return
        if where.kind == "job" and where.device_id == self.device_id:
            self._on_control(message.payload)
        elif where.kind == "chunk" and where.sha256 is not None and where.index is not None:
            self._on_chunk(where.sha256, where.index, message.payload)

    def _on_control(self, payload: bytes) -> None:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            self._lines.warning(
                "control-size",
                "ignoring a %d-byte control message (limit %d)",
                len(payload),
                MAX_CONTROL_PAYLOAD,
            )
            return
        try:
            opened = open_envelope(
                payload,
                dict(self.settings.trusted_keys),
                allow_unsigned=self.settings.allow_unsigned,
                now=time.time(),
            )
        except SignatureError as exc:
            self._reject_unverified(payload, signature_code(exc), str(exc))
            return
        except ProtocolError as exc:
            self._reject_unverified(payload, "bad_manifest", str(exc))
            return
        message = opened.message
        if isinstance(message, JobManifest):
            self._on_manifest(message)  # its replay guard is the job id (see _on_manifest)
            return
        if not isinstance(message, (ResultAck, Collect, Cancel)) or (
            message.device_id != self.device_id
        ):
            self._lines.warning(
                "not-ours", "ignoring a %r message not meant for this device", message.TYPE
            )
            return
        if not self.replays.first_time(opened.digest, message.expires_at):
            self._lines.info(
                f"replay-{message.TYPE}", "ignoring a replayed %r message", message.TYPE
            )
            return
        if isinstance(message, ResultAck):
            for job_id in message.job_ids:
                if self.outbox.remove(job_id):
                    log.info("result of job %s acknowledged", job_id)
        elif isinstance(message, Collect):
            self._on_connected()
        else:
            self._on_cancel(message)

    def _reject_unverified(self, payload: bytes, code: str, reason: str) -> None:
        job_id = _unverified_job_id(payload)
        self._lines.warning(
            f"rejected-{code}", "rejected a control message (%s): %s", code, reason[:300]
        )
        if job_id is not None:
            self._event(job_id, "rejected", code=code, reason=reason)

    def _reject(self, manifest: JobManifest, code: str, reason: str) -> None:
        log.warning("rejected job %s (%s): %s", manifest.job_id, code, reason)
        self.records.set(manifest.job_id, "rejected", manifest.expires_at)
        self._event(manifest.job_id, "rejected", code=code, reason=reason)

    def _on_manifest(self, manifest: JobManifest) -> None:
        job_id = manifest.job_id
        if manifest.device_id != self.device_id:
            # Not recorded: the id may be valid for the device it was meant for.
            self._event(
                job_id,
                "rejected",
                code="bad_manifest",
                reason=f"manifest is for device {manifest.device_id}, this is {self.device_id}",
            )
            return
        stored = self.outbox.get(job_id) if job_id in self.outbox else None
        if stored is not None:
            log.info("job %s was already run: re-sending its result", job_id)
            self._publish_result(stored)
            return
        record = self.records.get(job_id)
        if record is not None and self.records.is_active(job_id):
            # The host re-sends a manifest it heard nothing about for a while:
            # answer with the job's current state (and download progress).
            log.info("job %s is already %s", job_id, record.state)
            downloading = self._active_job(job_id)
            if record.state == "downloading" and downloading is not None:
                self._job_progress(downloading)
            else:
                self._event(job_id, record.state)
            return
        if self.records.is_replay(job_id):
            self._event(
                job_id,
                "rejected",
                code="replayed",
                reason=f"job {job_id} already ran on this device: push it again for a new run",
            )
            return
        settings = self._settings_of(manifest)
        if settings is None:
            return
        refs = manifest.blobs
        own = {ref.sha256 for ref in refs}
        try:
            for ref in refs:
                self.cache.check_fits(ref.size_bytes)
            # Partial downloads take disk space too: they count against the quota.
            held = self._make_partial_room(sum(r.size_bytes for r in refs), own)
            for ref in refs:
                self.cache.check_fits(ref.size_bytes, reserved_bytes=held)
        except CacheError as exc:
            what = Job(manifest, settings).describe(ref.sha256)
            self._reject(manifest, "too_large", f"{what}: {exc}")
            return
        total = sum(ref.size_bytes for ref in refs)
        if total > self.cache.quota_bytes:
            # All of a job's files are pinned in the cache together while it waits.
            self._reject(
                manifest,
                "too_large",
                f"the model and its data files ({total} bytes together) exceed the cache "
                f"quota of {self.cache.quota_bytes} bytes: raise --cache-quota-mb on the device",
            )
            return
        clash = self._download_clash(refs)
        if clash is not None:
            self._reject(manifest, "bad_manifest", clash)
            return
        if not self._probed:
            # Whether this device has the runtime is known once the probe is done (a
            # second or two after start): the job is answered then, before any download.
            self._awaiting_probe[job_id] = manifest
            return
        refusal = job_refusal(
            self._runtimes, manifest.model.format, settings.runtime, settings.provider
        )
        if refusal is not None:
            self._reject(manifest, *refusal)
            return
        job = Job(manifest, settings)
        self.records.set(job_id, "queued", manifest.expires_at)
        self._event(job_id, "queued")
        self.records.set(job_id, "accepted", manifest.expires_at)
        self._event(job_id, "accepted", progress={"queue": self.runner.pending()})
        for ref in refs:
            if ref.sha256 in self.cache:
                self._pin(job, ref.sha256)  # cached: only what is missing is fetched
            else:
                job.waiting[ref.sha256] = ref
        if job.waiting:
            self._start_downloads(job)
        else:
            self._submit(job)

    def _active_job(self, job_id: str) -> Job | None:
        """The job of that id waiting for a download, if any."""
        for download in self._downloads.values():
            for job in download.jobs:
                if job.manifest.job_id == job_id and not job.ended:
                    return job
        return None

    def _settings_of(self, manifest: JobManifest) -> ProfileSettings | None:
        chosen = [k for k in _LOCAL_ONLY_SETTINGS if manifest.settings.get(k) is not None]
        if chosen:
            self._reject(
                manifest,
                "bad_manifest",
                f"setting {chosen[0]!r} names a file on the device; remote jobs cannot use it",
            )
            return None
        try:
            return ProfileSettings.from_dict(manifest.settings)
        except (TypeError, ValueError) as exc:
            self._reject(manifest, "bad_manifest", f"invalid profile settings: {exc}")
            return None

    def _pin(self, job: Job, sha256: str) -> None:
        self.cache.pin(sha256)
        job.pinned.append(sha256)

    def _release(self, job: Job) -> None:
        """Unpin the job's cached files (idempotent)."""
        while job.pinned:
            self.cache.unpin(job.pinned.pop())

    # -- downloads -----------------------------------------------------------
    def _download_clash(self, refs: list[BlobRef]) -> str | None:
        """Why these blobs cannot join the downloads in progress (same hash, other shape)."""
        for ref in refs:
            download = self._downloads.get(ref.sha256)
            if download is None:
                continue
            if (download.assembler.ref.size_bytes, download.assembler.ref.chunk_size) != (
                ref.size_bytes,
                ref.chunk_size,
            ):
                return f"a file with hash {ref.sha256[:12]} but another size or chunk size is downloading"
        return None

    def _start_downloads(self, job: Job) -> None:
        """Fetch every blob the job waits for (joining downloads already under way)."""
        job.fetching = dict(job.waiting)
        self.records.set(job.manifest.job_id, "downloading", job.manifest.expires_at)
        for sha, ref in job.waiting.items():
            download = self._downloads.get(sha)
            if download is not None:
                download.jobs.append(job)
                continue
            assembler = ChunkAssembler(self.partial_dir, ref)
            self._downloads[sha] = Download(
                assembler, [job], next_request_at=time.monotonic() + FIRST_REQUEST_AFTER_S
            )
            if not assembler.complete:
                # Subscribed before the `downloading` event: a host that publishes
                # chunks when it sees that event does not publish them into the void.
                self.session.subscribe(topics.blob_chunks(sha))
        self._job_progress(job)
        for sha in list(job.waiting):
            download = self._downloads.get(sha)
            if download is not None and download.assembler.complete:  # resumed in full
                self._finish_download(download)

    def _progress(self, download: Download, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - download.last_progress_at < PROGRESS_EVERY_S:
            return
        download.last_progress_at = now
        for job in download.jobs:
            self._job_progress(job)

    def _job_progress(self, job: Job) -> None:
        """A `downloading` event over all the blobs the job fetches (chunks and bytes)."""
        received = total = received_bytes = total_bytes = 0
        for sha, ref in job.fetching.items():
            total += ref.chunks
            total_bytes += ref.size_bytes
            download = self._downloads.get(sha)
            if sha not in job.waiting:
                received += ref.chunks
                received_bytes += ref.size_bytes
            elif download is not None:
                received += download.assembler.received
                received_bytes += download.assembler.received_bytes
        progress = {
            "received": received,
            "total": total,
            "received_bytes": received_bytes,
            "total_bytes": total_bytes,
        }
        self._event(job.manifest.job_id, "downloading", progress=progress)

    def _on_chunk(self, sha256: str, index: int, data: bytes) -> None:
        download = self._downloads.get(sha256)
        if download is None or not download.assembler.add(index, data):
            return
        download.next_request_at = time.monotonic() + QUIET_REQUEST_AFTER_S
        download.backoff = QUIET_REQUEST_AFTER_S
        if download.assembler.complete:
            self._progress(download, force=True)
            self._finish_download(download)
        else:
            self._progress(download)

    def _request_missing(self, download: Download) -> None:
        missing = download.assembler.missing()
        if not missing or not self.session.connected:
            return
        ref = download.assembler.ref
        request = ChunkRequest(
            self.device_id, ref.sha256, missing, job_id=download.jobs[0].manifest.job_id
        )
        log.info("asking for %d missing chunk(s) of %s", len(missing), ref.sha256[:12])
        self.session.publish(topics.blob_request(ref.sha256), request.to_bytes())
        download.requests_sent += 1
        download.next_request_at = time.monotonic() + download.backoff
        download.backoff = min(download.backoff * 2, MAX_REQUEST_BACKOFF_S)

    def _finish_download(self, download: Download) -> None:
        assembler = download.assembler
        sha = assembler.ref.sha256
        self._downloads.pop(sha, None)
        self.session.unsubscribe(topics.blob_chunks(sha))
        jobs = [job for job in download.jobs if not job.ended]
        for job in jobs:
            if set(job.waiting) == {sha}:  # the job's last file: check it, then run
                self.records.set(job.manifest.job_id, "verifying", job.manifest.expires_at)
                self._event(job.manifest.job_id, "verifying")
        if not assembler.verify():
            assembler.discard()
            for job in jobs:
                self._fail(
                    job,
                    "bad_hash",
                    f"{job.describe(sha)} does not match its SHA-256 in the manifest: re-send it",
                )
            return
        try:
            self.cache.admit(assembler.part_path, sha, assembler.ref.format)
        except (CacheError, OSError) as exc:
            assembler.discard()
            for job in jobs:
                self._fail(job, "too_large", f"{job.describe(sha)}: {exc}")
            return
        assembler.discard()
        self._publish_info()  # the cached files changed
        for job in jobs:
            self._pin(job, sha)
            job.waiting.pop(sha, None)
            if job.waiting:
                self._job_progress(job)
            else:
                self._submit(job)

    def _fail(self, job: Job, code: str, reason: str) -> None:
        log.warning("job %s failed (%s): %s", job.manifest.job_id, code, reason)
        self._abandon(job)
        self.records.set(job.manifest.job_id, "failed", job.manifest.expires_at)
        self._event(job.manifest.job_id, "failed", code=code, reason=reason)

    def _abandon(self, job: Job) -> None:
        """Stop serving a job that failed: release its pins, leave its downloads
        (a download nobody waits for any more stops; its chunks stay for a resume)."""
        job.ended = True
        self._release(job)
        for sha in list(job.waiting):
            download = self._downloads.get(sha)
            if download is None:
                continue
            download.jobs = [j for j in download.jobs if j is not job]
            if not download.jobs:
                download.assembler.flush()
                self._downloads.pop(sha, None)
                self.session.unsubscribe(topics.blob_chunks(sha))
        job.waiting.clear()

    def _tick(self) -> None:
        now = time.monotonic()
        if not self.session.connected and self.state in (AgentState.IDLE, AgentState.BUSY):
            self._set_state(AgentState.CONNECTING)
        for download in list(self._downloads.values()):
            sha = download.assembler.ref.sha256
            if self._downloads.get(sha) is not download:
                continue  # dropped while failing the jobs of another download
            if time.time() > download.expires_at:
                download.assembler.flush()  # kept: a re-sent manifest resumes it
                self._downloads.pop(sha, None)
                self.session.unsubscribe(topics.blob_chunks(sha))
                for job in download.jobs:
                    if not job.ended:
                        self._fail(
                            job,
                            "download_timeout",
                            f"{job.describe(sha)} did not arrive before the manifest expired",
                        )
            elif now >= download.next_request_at:
                self._request_missing(download)
        if self.session.connected and now - self._last_heartbeat > HEARTBEAT_EVERY_S:
            self._last_heartbeat = now
            self._publish_info()
        if now - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = now
            self.records.prune()
            self._prune_files()

    # -- disk hygiene --------------------------------------------------------
    def _prune_files(self, *, startup: bool = False) -> None:
        """Delete partial downloads nobody fetches that are stale, and the temporary
        files of interrupted atomic writes (all of them at start-up: no write of
        this process is under way yet)."""
        now = time.time()
        root = Path(self.settings.cache_dir)
        for directory in (root, self.partial_dir, self.cache.directory, self.outbox.directory):
            for path in _files(directory, ".*.tmp"):
                if startup or _age(path, now) > STALE_TEMP_S:
                    log.info("deleting stray temporary file %s", path.name)
                    path.unlink(missing_ok=True)
        for sha, files in self._partials().items():
            if sha in self._downloads:
                continue
            if all(_age(f, now) > STALE_PARTIAL_S for f in files):
                log.info("deleting the stale partial download of %s", sha[:12])
                for f in files:
                    f.unlink(missing_ok=True)

    def _partials(self) -> dict[str, list[Path]]:
        """The partial-download files on disk, by hash (.part and .state.json)."""
        found: dict[str, list[Path]] = {}
        for path in _files(self.partial_dir, "*"):
            sha = path.name.split(".", 1)[0]
            found.setdefault(sha, []).append(path)
        return found

    def _partial_bytes(self, exclude: set[str]) -> int:
        """Bytes held in partial/ by downloads other than those of `exclude`."""
        total = 0
        for sha, files in self._partials().items():
            if sha not in exclude:
                total += sum(_size(f) for f in files)
        return total

    def _make_partial_room(self, needed: int, exclude: set[str]) -> int:
        """Delete partial downloads nobody fetches (oldest first) until `needed`
        bytes fit the quota beside the rest; returns the partial bytes that stay."""
        held = self._partial_bytes(exclude)
        if needed + held <= self.cache.quota_bytes:
            return held
        now = time.time()
        idle = [
            (min(_age(f, now) for f in files), sha, files)
            for sha, files in self._partials().items()
            if sha not in exclude and sha not in self._downloads
        ]
        for _age_s, sha, files in sorted(idle, reverse=True):
            if needed + held <= self.cache.quota_bytes:
                break
            log.info("deleting the partial download of %s to make room", sha[:12])
            for f in files:
                held -= _size(f)
                f.unlink(missing_ok=True)
        return held

    # -- canceling -----------------------------------------------------------
    def _on_cancel(self, message: Cancel) -> None:
        """Stop each named job wherever it is: its worker killed if it runs, taken
        out of the queue or its downloads if it waits; each ends ``canceled``."""
        for job_id in message.job_ids:
            with self._jobs_lock:
                if job_id == self._running_job and self._cancel_running is not None:
                    log.info("canceling job %s: stopping its worker", job_id)
                    self._cancel_running.set()  # _execute publishes the result
                    continue
                queued = self._queued.get(job_id)
                if queued is not None:
                    log.info("canceling job %s before it runs", job_id)
                    queued.canceled = True  # _execute publishes the result
                    continue
            downloading = self._active_job(job_id)
            if downloading is not None:
                log.info("canceling job %s while it downloads", job_id)
                self._abandon(downloading)
                self._store_and_publish(
                    downloading.manifest, self._canceled_document(downloading.manifest)
                )
                continue
            log.info("cancel of job %s: nothing to cancel (unknown or already finished)", job_id)

    def _canceled_document(self, manifest: JobManifest) -> dict[str, Any]:
        """The result of a job canceled before it ran."""
        return {
            "schema": RESULT_SCHEMA,
            "status": "error",
            "job_id": manifest.job_id,
            "label": manifest.label,
            "device": {"id": self.device_id, "tags": list(self.settings.tags)},
            "model": {
                "name": manifest.model.name,
                "sha256": manifest.model.sha256,
                "size_bytes": manifest.model.size_bytes,
                "format": manifest.model.format,
            },
            "error": {"code": "canceled", "message": "canceled by the host before it ran"},
        }

    # -- running -------------------------------------------------------------
    def _submit(self, job: Job) -> None:
        with self._jobs_lock:
            self._queued[job.manifest.job_id] = job
        self.runner.submit(job)  # its files are pinned until it has run

    def _execute(self, job: Job) -> None:
        """Runner thread: profile one model, store the result, publish it."""
        manifest = job.manifest
        with self._jobs_lock:
            self._queued.pop(manifest.job_id, None)
            canceled = job.canceled
            if not canceled:
                self._cancel_running = threading.Event()
                self._running_job = manifest.job_id
        if canceled:
            self._release(job)
            self._store_and_publish(manifest, self._canceled_document(manifest))
            return
        try:
            while not self._stop_leftover_workers():  # never measure beside an old worker
                if self._stop.wait(5.0):
                    return
            path = self.cache.path(manifest.model.sha256)
            data_paths = {
                kind: self.cache.path(ref.sha256) for kind, ref in manifest.attachments.items()
            }
            gone = [k for k, p in data_paths.items() if p is None]
            if path is None or gone:
                what = "the model" if path is None else f"the {gone[0]} file"
                self._fail(
                    job, "not_found", f"{what} left the cache before its turn: re-send the job"
                )
                return
            self._set_state(AgentState.BUSY)
            self._publish_state()
            self.records.set(manifest.job_id, "running", manifest.expires_at)
            self._event(manifest.job_id, "running", progress={"phase": "starting"})
            document = self._profile(job, path, {k: p for k, p in data_paths.items() if p})
            self._store_and_publish(manifest, document)
        finally:
            self._release(job)
            with self._jobs_lock:
                self._running_job = None
                self._cancel_running = None
            if self.state is AgentState.BUSY:
                self._set_state(AgentState.IDLE)
            if self.session.connected:
                self._publish_state()

    def _store_and_publish(self, manifest: JobManifest, document: dict[str, Any]) -> None:
        """Keep a finished job's result in the outbox, publish it and its final event."""
        try:
            result = JobResult(self.device_id, manifest.job_id, document)
        except ProtocolError as exc:  # a profiler bug must not lose the job's answer
            log.error("job %s produced an invalid result document: %s", manifest.job_id, exc)
            document = {
                "schema": RESULT_SCHEMA,
                "status": "error",
                "job_id": manifest.job_id,
                "label": manifest.label,
                "error": {"code": "internal", "message": f"invalid result document: {exc}"},
            }
            result = JobResult(self.device_id, manifest.job_id, document)
        self.outbox.put(result)  # on disk before it is published
        ok = document.get("status") == "ok"
        self.records.set(manifest.job_id, "succeeded" if ok else "failed", manifest.expires_at)
        self._publish_result(result)
        if ok:
            self._event(manifest.job_id, "succeeded")
        else:
            error = document["error"]  # checked by JobResult: {code, message} as strings
            self._event(manifest.job_id, "failed", code=error["code"], reason=error["message"])

    def _job_files(self, job_id: str, model: Path, data_paths: dict[str, Path]) -> dict[str, Path]:
        """A fresh ``run/<job>/`` holding only this job's files (hard links to the
        cache, copies where links fail): {"model"|kind: path in it}."""
        directory = self.run_dir / topics.check_job_id(job_id)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        wanted = {"model": model, **data_paths}
        placed = {}
        for kind, source in wanted.items():
            target = directory / f"{kind}{source.suffix}"
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            placed[kind] = target
        return placed

    def _profile(self, job: Job, cached: Path, cached_data: dict[str, Path]) -> dict[str, Any]:
        from profiler.limits import with_memory_limit
        from profiler.runner import profile

        manifest = job.manifest
        files = self._job_files(manifest.job_id, cached, cached_data)
        path = files.pop("model")
        data_paths = files
        # The data files are the agent's own copies: paths it chose, never the sender.
        settings = dataclasses.replace(
            with_memory_limit(job.settings, self.settings.max_memory_mb),
            eval_path=str(data_paths["eval"]) if "eval" in data_paths else None,
            inputs_path=str(data_paths["inputs"]) if "inputs" in data_paths else None,
        )
        try:
            document = profile(
                path,
                settings,
                label=manifest.label,
                job_id=manifest.job_id,
                device_id=self.device_id,
                tags=self.settings.tags,
                on_phase=lambda phase: self._event(
                    manifest.job_id, "running", progress={"phase": phase}
                ),
                # The job's files are named model.<fmt>, eval.npz, ...: every message
                # and the result name them as the host did.
                model_name=manifest.model.name,
                names={
                    str(data_paths[kind]): manifest.attachments[kind].name for kind in data_paths
                },
                cancel=self._cancel_running,
                allow_external_data=False,  # a job carries no such files
            )
        except Exception as exc:  # profile() should not raise; a result must still go back
            log.exception("the profiler raised on job %s", manifest.job_id)
            document = {
                "schema": RESULT_SCHEMA,
                "status": "error",
                "job_id": manifest.job_id,
                "label": manifest.label,
                "error": {"code": "internal", "message": f"profiler error: {exc}"},
            }
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        document.setdefault("schema", RESULT_SCHEMA)
        return document


def _files(directory: Path, pattern: str) -> list[Path]:
    try:
        return [p for p in directory.glob(pattern) if p.is_file()]
    except OSError:
        return []


def _age(path: Path, now: float) -> float:
    """Seconds since the file was last written (0 when it is gone)."""
    try:
        return now - path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


__all__ = ["Agent", "AgentState", "Job", "signature_code"]

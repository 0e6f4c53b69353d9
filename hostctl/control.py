"""Jobs already sent, as the host's journal knows them: their status for
`hostctl jobs` (pending, finished, lost) and canceling them (`hostctl cancel`).

Pure of typer and rich: the commands in :mod:`hostctl.cmd_jobs` print what
these functions return.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hostctl.intake import CONTROL_TTL_S, ResultIntake, read_message
from hostctl.store import FINISHED_JOB_STATES, JournalEntry, ResultStore
from protocol import topics
from protocol.messages import Cancel, Collect, JobResult
from protocol.result import ResultError, read_result

if TYPE_CHECKING:
    from protocol.signing import SigningKey

logger = logging.getLogger(__name__)

JOB_STATUSES = ("pending", "finished", "lost")
"""pending: it may still deliver a result; finished: it did (or was refused);
lost: it expired on its device without a result reaching this host."""

LOST_STATES = ("expired", "lost")


@dataclass(frozen=True)
class JobView:
    """One journaled job with what the store holds of it."""

    entry: JournalEntry
    status: str
    """One of :data:`JOB_STATUSES`."""
    result: dict[str, Any] | None
    """Its stored result document, if any."""
    conflicts: int = 0
    """Different results the device sent after the stored one (result events)."""

    def to_json(self) -> dict[str, Any]:
        """The `jobs --json` shape: the journal entry, ``status``, ``result``
        ({status, error} of the stored result, or null) and ``conflicts``."""
        summary = None
        if self.result is not None:
            try:
                read = read_result(self.result)
                error = read.error
                summary = {
                    "status": read.status,
                    "error": None
                    if error is None
                    else {"code": error.code, "message": error.message},
                }
            except ResultError:
                summary = {"status": "error", "error": None}
        return {
            **self.entry.to_dict(),
            "status": self.status,
            "result": summary,
            "conflicts": self.conflicts,
        }


def job_status(entry: JournalEntry, has_result: bool, now: float | None = None) -> str:
    """pending / finished / lost (see :data:`JOB_STATUSES`)."""
    if has_result:
        return "finished"
    if entry.state in LOST_STATES or entry.expired(now):
        return "lost"
    return "finished" if entry.state in FINISHED_JOB_STATES else "pending"


def job_views(
    store: ResultStore,
    *,
    device: str | None = None,
    statuses: Sequence[str] | None = None,
    job_ids: Sequence[str] | None = None,
    limit: int | None = None,
    now: float | None = None,
) -> list[JobView]:
    """The journaled jobs (oldest sent first), each with its status and stored
    result; only the given `statuses`; `limit` keeps the newest N of those."""
    moment = time.time() if now is None else now
    entries = store.jobs(device=device, job_ids=job_ids)
    ids = sorted({e.job_id for e in entries})
    results = {
        (str(doc.get("job_id")), str((doc.get("device") or {}).get("id"))): doc
        for doc in (store.query(job_ids=ids) if ids else [])
    }
    conflicts: dict[tuple[str, str], int] = {}
    for event in store.result_events(job_ids=ids) if ids else []:
        key = (event["job_id"], event["device_id"])
        conflicts[key] = conflicts.get(key, 0) + 1
    views = []
    for entry in entries:
        key = (entry.job_id, entry.device_id)
        result = results.get(key)
        status = job_status(entry, result is not None, moment)
        if statuses is None or status in statuses:
            views.append(JobView(entry, status, result, conflicts.get(key, 0)))
    if limit is not None:
        views = views[-limit:] if limit > 0 else []
    return views


# -- cancel ------------------------------------------------------------------------


@dataclass(frozen=True)
class Canceled:
    """What became of one job `hostctl cancel` named."""

    job_id: str
    device_id: str | None
    outcome: str
    """``canceled`` (its result says so, stored), ``finished`` (it had ended: its
    result is stored), ``failed`` (it ended otherwise), ``no_answer`` (the device
    said nothing in time), ``unknown`` (not in this host's journal)."""
    detail: str

    @property
    def ok(self) -> bool:
        return self.outcome in ("canceled", "finished", "failed")

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "device_id": self.device_id,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def cancel_targets(
    store: ResultStore, job_ids: Sequence[str]
) -> tuple[list[JournalEntry], list[Canceled]]:
    """The journaled jobs to cancel, and what is already decided: unknown jobs,
    and jobs whose result is stored already (nothing to stop)."""
    targets: list[JournalEntry] = []
    decided: list[Canceled] = []
    for job_id in dict.fromkeys(job_ids):
        entries = store.jobs(job_ids=[job_id])
        if not entries:
            decided.append(
                Canceled(
                    job_id,
                    None,
                    "unknown",
                    f"no job {job_id} in this host's journal ({store.location}): "
                    "see `hostctl jobs`",
                )
            )
            continue
        for entry in entries:
            doc = store.get(entry.job_id, entry.device_id)
            if doc is not None:
                decided.append(_from_result(entry.job_id, entry.device_id, doc, before=True))
            else:
                targets.append(entry)
    return targets, decided


def _from_result(job_id: str, device_id: str, doc: dict[str, Any], *, before: bool) -> Canceled:
    try:
        result = read_result(doc)
    except ResultError as exc:
        return Canceled(job_id, device_id, "failed", str(exc))
    if result.ok:
        when = "before" if before else "before the cancel reached it"
        return Canceled(job_id, device_id, "finished", f"it had finished {when}: result stored")
    error = result.error
    code = error.code if error is not None else "error"
    if code == "canceled":
        return Canceled(job_id, device_id, "canceled", "stopped on its device: result stored")
    message = error.message if error is not None else "failed"
    return Canceled(job_id, device_id, "failed", f"it had failed ({code}): {message}")


def cancel_jobs(
    session: Any,
    store: ResultStore,
    key: SigningKey,
    targets: Sequence[JournalEntry],
    *,
    wait: float = 30.0,
) -> list[Canceled]:
    """Send a signed Cancel for each target to its device (and a Collect, so a
    result that was already on its way comes again), then store the results that
    come back (under the journal's rule) until each target has one or `wait` ends."""
    from protocol.signing import seal

    by_device: dict[str, list[str]] = {}
    for entry in targets:
        by_device.setdefault(entry.device_id, []).append(entry.job_id)
    now = time.time()
    for device_id, job_ids in by_device.items():
        cancel = Cancel(device_id, job_ids, issued_at=now, expires_at=now + CONTROL_TTL_S)
        session.publish(topics.job(device_id), seal(cancel, key))
        collect = Collect(device_id, issued_at=now, expires_at=now + CONTROL_TTL_S)
        session.publish(topics.job(device_id), seal(collect, key))
        for job_id in job_ids:
            store.update_job(job_id, device_id, "canceled", "cancel sent by the host")
    intake = ResultIntake(session, store, key)
    waiting = {(e.job_id, e.device_id) for e in targets}
    end = time.monotonic() + wait
    while waiting and time.monotonic() < end:
        item = session.get(min(0.5, max(0.0, end - time.monotonic())))
        if item is None or not item[0].endswith("/result"):
            continue
        received = read_message(*item)
        if received is None or not isinstance(received.message, JobResult):
            continue
        message = received.message
        if intake.take(message, received.topic) != "refused":
            waiting.discard((message.job_id, message.device_id))
    session.wait_published(timeout=5.0)
    outcomes = []
    for entry in targets:
        doc = store.get(entry.job_id, entry.device_id)
        if doc is not None:
            outcomes.append(_from_result(entry.job_id, entry.device_id, doc, before=False))
        else:
            outcomes.append(
                Canceled(
                    entry.job_id,
                    entry.device_id,
                    "no_answer",
                    f"{entry.device_id} did not answer within {wait:.0f} s: it gets the "
                    "cancel when it reconnects (for an hour); `hostctl collect` stores the result",
                )
            )
    return outcomes

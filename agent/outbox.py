"""Results kept on disk until the host acknowledges them.

A result is written (atomically) before it is published, so a crash, a lost
connection or a broker restart never loses it: it is re-published on every
connect and on a Collect request until a ResultAck removes it. Files are named
by the validated job id.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from agent.cache import atomic_write
from protocol.errors import ProtocolError
from protocol.messages import JobResult, parse_as
from protocol.topics import check_job_id

log = logging.getLogger(__name__)


class Outbox:
    """Unacknowledged JobResult messages under `directory`, one file per job."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self.directory / f"{check_job_id(job_id)}.json"

    def put(self, result: JobResult) -> None:
        atomic_write(self._path(result.job_id), result.to_bytes())

    def __contains__(self, job_id: object) -> bool:
        try:
            return isinstance(job_id, str) and self._path(job_id).is_file()
        except ProtocolError:
            return False

    def get(self, job_id: str) -> JobResult | None:
        try:
            return parse_as(self._path(job_id).read_bytes(), JobResult)
        except FileNotFoundError:
            return None
        except (OSError, ProtocolError) as exc:
            log.error("outbox entry %s is unreadable (%s): dropped", job_id, exc)
            self._path(job_id).unlink(missing_ok=True)
            return None

    def job_ids(self) -> list[str]:
        """Job ids of stored results, oldest first."""
        files = [p for p in self.directory.glob("*.json") if not p.name.startswith(".")]
        files.sort(key=lambda p: p.stat().st_mtime)
        return [p.stem for p in files]

    def pending(self) -> list[JobResult]:
        """Every stored result, oldest first."""
        out = []
        for job_id in self.job_ids():
            result = self.get(job_id)
            if result is not None:
                out.append(result)
        return out

    def remove(self, job_id: str) -> bool:
        """Forget an acknowledged result; True if it was there."""
        try:
            path = self._path(job_id)
        except ProtocolError:
            return False
        existed = path.is_file()
        path.unlink(missing_ok=True)
        return existed

"""The results store: one SQLite file, one row per result document.

Rows are keyed by ``job_id`` so a result that arrives twice (an agent re-sends
every unacknowledged result on reconnect) is stored once. A few columns are
extracted for filtering; the full JSON document is kept as it came, so keys a
newer profiler adds are never lost.

The schema is versioned with ``PRAGMA user_version``: :data:`MIGRATIONS` is
append-only, entry *n* upgrades a database from version *n* to *n + 1*.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from hostctl.errors import HostctlError

logger = logging.getLogger(__name__)

# Append-only: never edit a released migration, add a new one.
MIGRATIONS: Sequence[str] = (
    # 0 -> 1: first schema
    """
    CREATE TABLE results (
        job_id      TEXT PRIMARY KEY,
        device_id   TEXT,
        model_name  TEXT,
        sha256      TEXT,
        label       TEXT,
        status      TEXT,
        created_at  TEXT,
        stored_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        document    TEXT NOT NULL
    );
    CREATE INDEX results_device ON results(device_id);
    CREATE INDEX results_model ON results(model_name);
    CREATE INDEX results_sha256 ON results(sha256);
    CREATE INDEX results_label ON results(label);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``results.sqlite`` in the user data directory (platformdirs)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("edgeprof")) / "results.sqlite"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


class ResultStore:
    """Result documents in a SQLite file (created on first use)."""

    @staticmethod
    def resolve(path: str | Path | None) -> Path:
        """The file a store opened with `path` (``--db``; None: the default) uses."""
        return Path(path).expanduser() if path is not None else default_db_path()

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = self.resolve(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise HostctlError(f"cannot open the results store {self.path}: {exc}") from None
        try:
            # WAL: a reader (`hostctl results`) never blocks a writer (`hostctl push`).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise HostctlError(
                f"{self.path} is not a usable edgeprof results store ({exc}): "
                "choose another file with --db"
            ) from None

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HostctlError(
                f"{self.path} was written by a newer edgeprof (store version {version}, "
                f"this one knows {SCHEMA_VERSION}): upgrade edgeprof"
            )
        for number in range(version, SCHEMA_VERSION):
            logger.info("migrating %s to store version %d", self.path, number + 1)
            with self._db:
                self._db.executescript(
                    "BEGIN;" + MIGRATIONS[number] + f"; PRAGMA user_version = {number + 1};"
                )

    def add(self, doc: Mapping[str, Any]) -> bool:
        """Store one result document; return False when its job id is already stored.

        A document without a job id (a local ``hostctl profile`` run) gets a
        generated ``local-…`` id, written into the stored document.
        """
        document = dict(doc)
        job_id = _text(document.get("job_id")) or f"local-{uuid.uuid4().hex[:16]}"
        document["job_id"] = job_id
        device, model = _section(document, "device"), _section(document, "model")
        try:
            with self._db:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO results (job_id, device_id, model_name, sha256, "
                    "label, status, created_at, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        _text(device.get("id")),
                        _text(model.get("name")),
                        _text(model.get("sha256")),
                        _text(document.get("label")),
                        _text(document.get("status")),
                        _text(document.get("created_at")),
                        json.dumps(document, sort_keys=True),
                    ),
                )
        except sqlite3.Error as exc:
            raise HostctlError(f"cannot write to the results store {self.path}: {exc}") from None
        return cursor.rowcount == 1

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The stored document of one job, or None."""
        row = self._db.execute(
            "SELECT document FROM results WHERE job_id = ?", (job_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def query(
        self,
        device: str | None = None,
        model: str | None = None,
        label: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored documents, oldest first; `limit` keeps the newest N.

        `model` matches the model's file name or a prefix of its SHA-256.
        """
        where: list[str] = []
        params: list[Any] = []
        if device is not None:
            where.append("device_id = ?")
            params.append(device)
        if model is not None:
            where.append("(model_name = ? OR sha256 LIKE ?)")
            params.extend([model, model.lower().replace("%", "") + "%"])
        if label is not None:
            where.append("label = ?")
            params.append(label)
        sql = "SELECT document FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # Newest first so LIMIT keeps the latest; reversed below to read oldest first.
        sql += " ORDER BY COALESCE(created_at, stored_at) DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        try:
            rows = self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HostctlError(f"cannot read the results store {self.path}: {exc}") from None
        return [dict(json.loads(row[0])) for row in reversed(rows)]

    def count(self) -> int:
        """Number of stored results."""
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

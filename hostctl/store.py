"""The results store: result documents and the job journal, in SQLite (the
default, one file) or PostgreSQL (``--db postgresql://…``, a store a team and
its CI runners share), with the same behaviour on both.

Results are keyed by ``(job_id, device_id)``: a result that arrives twice (an
agent re-sends every unacknowledged result on reconnect) is stored once, and a
device cannot overwrite another device's result by naming its job. A few
columns are extracted for filtering; the full JSON document is kept as it came,
so keys a newer profiler adds are never lost.

The job journal records every job the host sends, *before* it is sent (job id,
device, model, label, settings, sent/expiry times, state), so the host knows
which device a job went to and which jobs never came back. A device that sends
a second, *different* result for a stored (job, device) does not replace it:
the newcomer is kept as a result event (:meth:`ResultStore.add_received`).

The schema is versioned (SQLite: ``PRAGMA user_version``; PostgreSQL: the
``edgeprof_schema`` table): :data:`MIGRATIONS` is append-only, entry *n*
upgrades a store from version *n* to *n + 1*. The PostgreSQL driver (psycopg 3,
``pip install 'edgeprof[postgres]'``) is imported only when such a store is used.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hostctl.errors import HostctlError

logger = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""``--db`` values with these prefixes name a PostgreSQL store."""

MAX_RESULT_EVENTS = 16
"""Conflicting results kept per (job, device); more are refused (and not acknowledged)."""

FINISHED_JOB_STATES = ("succeeded", "failed", "rejected", "expired", "lost")
"""Journal states after which nothing more is expected from the device. The host's
``timed_out`` and ``canceled`` only mean hostctl stopped waiting: the job may still
deliver its result (``hostctl collect``), so it stays pending until then or its expiry."""

SHA_PREFIX_MIN = 4
"""A model filter of at least this many hex digits also matches a SHA-256 prefix."""

_RESULTS_V2 = """
CREATE TABLE results (
    job_id      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    model_name  TEXT,
    model_stem  TEXT,
    sha256      TEXT,
    label       TEXT,
    status      TEXT,
    created_at  TEXT,
    created_ts  {real},
    stored_at   TEXT NOT NULL,
    document    TEXT NOT NULL,{seq}
    PRIMARY KEY (job_id, device_id)
)
"""

_JOBS_V2 = """
CREATE TABLE jobs (
    job_id      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    model_name  TEXT,
    sha256      TEXT,
    label       TEXT,
    settings    TEXT NOT NULL,
    sent_at     {real} NOT NULL,
    expires_at  {real},
    state       TEXT NOT NULL,
    reason      TEXT,
    updated_at  {real} NOT NULL,
    PRIMARY KEY (job_id, device_id)
)
"""

_INDEXES_V2 = (
    "CREATE INDEX results_device ON results(device_id)",
    "CREATE INDEX results_model ON results(model_name)",
    "CREATE INDEX results_stem ON results(model_stem)",
    "CREATE INDEX results_sha256 ON results(sha256)",
    "CREATE INDEX results_label ON results(label)",
    "CREATE INDEX results_created ON results(created_ts)",
    "CREATE INDEX jobs_state ON jobs(state)",
    "CREATE INDEX jobs_sent ON jobs(sent_at)",
)

_POSTGRES_V2 = (
    # seq: insertion order (SQLite has its rowid)
    _RESULTS_V2.format(real="DOUBLE PRECISION", seq="\n    seq         BIGSERIAL,"),
    _JOBS_V2.format(real="DOUBLE PRECISION"),
    *_INDEXES_V2,
)


def _sqlite_v2(db: sqlite3.Connection) -> None:
    """1 -> 2: results keyed by (job_id, device_id), model stem and numeric creation
    time for filters, and the job journal. Existing rows keep their order."""
    db.execute("ALTER TABLE results RENAME TO results_v1")
    db.execute(_RESULTS_V2.format(real="REAL", seq=""))
    rows = db.execute(
        "SELECT job_id, device_id, model_name, sha256, label, status, created_at, stored_at, "
        "document FROM results_v1 ORDER BY rowid"
    ).fetchall()
    for job_id, device_id, name, sha, label, status, created, stored, document in rows:
        db.execute(
            "INSERT OR IGNORE INTO results (job_id, device_id, model_name, model_stem, sha256, "
            "label, status, created_at, created_ts, stored_at, document) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                device_id or "",
                name,
                _stem(name),
                sha,
                label,
                status,
                created,
                _timestamp(created) or _timestamp(stored),
                stored,
                document,
            ),
        )
    db.execute("DROP TABLE results_v1")  # its indexes go with it
    db.execute(_JOBS_V2.format(real="REAL"))
    for statement in _INDEXES_V2:
        db.execute(statement)


_RESULT_EVENTS_V3 = """
CREATE TABLE result_events (
    job_id      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    received_at {real} NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (job_id, device_id, digest)
)
"""


@dataclass(frozen=True)
class Migration:
    """One step of the schema, for each backend."""

    sqlite: str | Callable[[sqlite3.Connection], None]
    postgres: Sequence[str]
    """Statements for PostgreSQL; empty where PostgreSQL has nothing to do (its
    stores started at version 2)."""


# Append-only: never edit a released migration, add a new one.
MIGRATIONS: Sequence[Migration] = (
    # 0 -> 1: first schema (SQLite only: PostgreSQL stores start at version 2)
    Migration(
        sqlite="""
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
        postgres=(),
    ),
    # 1 -> 2: keyed by (job, device); model stem and created_ts; the job journal
    Migration(sqlite=_sqlite_v2, postgres=_POSTGRES_V2),
    # 2 -> 3: result events (a second, different result for a stored (job, device))
    Migration(
        sqlite=_RESULT_EVENTS_V3.format(real="REAL"),
        postgres=(_RESULT_EVENTS_V3.format(real="DOUBLE PRECISION"),),
    ),
    # 3 -> 4: what the host vouches for about each job's model (hostctl.provenance:
    # its variant record, its gzip size), attached to the result when it arrives
    Migration(
        sqlite="ALTER TABLE jobs ADD COLUMN model_facts TEXT",
        postgres=("ALTER TABLE jobs ADD COLUMN model_facts TEXT",),
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``results.sqlite`` in the user data directory (platformdirs)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("edgeprof")) / "results.sqlite"


def is_postgres_url(db: str | Path | None) -> bool:
    """True when ``db`` names a PostgreSQL store rather than a SQLite file."""
    return isinstance(db, str) and db.lower().startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


# --------------------------------------------------------------------------- values


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def _stem(name: Any) -> str | None:
    """The file name without its extension ("m.tflite" -> "m")."""
    if not isinstance(name, str) or not name:
        return None
    return PurePosixPath(name).stem


def _timestamp(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (naive = UTC), or None."""
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def _bound(value: str | float | _dt.datetime | None, what: str) -> float | None:
    """A since/until filter as epoch seconds; HostctlError for an unreadable time."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    stamp = _timestamp(value)
    if stamp is None:
        raise HostctlError(
            f"{what} {value!r} is not a time: give an ISO 8601 date or time, e.g. "
            "2026-01-31 or 2026-01-31T14:00:00Z"
        )
    return stamp


def _now_iso() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class JournalEntry:
    """One job as the host journaled it: sent to one device, with its last known state."""

    job_id: str
    device_id: str
    model_name: str | None
    sha256: str | None
    label: str | None
    settings: dict[str, Any]
    sent_at: float
    expires_at: float | None
    state: str
    reason: str | None
    updated_at: float
    model_facts: dict[str, Any] = field(default_factory=dict)
    """What the host vouched for about the model it sent (``hostctl.provenance``)."""

    @property
    def pending(self) -> bool:
        """True while the job may still deliver a result."""
        return self.state not in FINISHED_JOB_STATES

    def expired(self, now: float | None = None) -> bool:
        """True for a pending job past its manifest's expiry: the device will not run it."""
        moment = time.time() if now is None else now
        return self.pending and self.expires_at is not None and self.expires_at < moment

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "device_id": self.device_id,
            "model": {"name": self.model_name, "sha256": self.sha256},
            "label": self.label,
            "settings": dict(self.settings),
            "sent_at": self.sent_at,
            "expires_at": self.expires_at,
            "state": self.state,
            "reason": self.reason,
            "updated_at": self.updated_at,
            "model_facts": dict(self.model_facts),
        }


_JOB_COLUMNS = (
    "job_id, device_id, model_name, sha256, label, settings, sent_at, expires_at, state, "
    "reason, updated_at, model_facts"
)


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text is not None else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _entry(row: Sequence[Any]) -> JournalEntry:
    settings = _json_object(row[5])
    return JournalEntry(
        job_id=row[0],
        device_id=row[1],
        model_name=row[2],
        sha256=row[3],
        label=row[4],
        settings=settings,
        sent_at=float(row[6]),
        expires_at=None if row[7] is None else float(row[7]),
        state=row[8],
        reason=row[9],
        updated_at=float(row[10]),
        model_facts=_json_object(row[11]),
    )


# --------------------------------------------------------------------------- backends


class _Backend:
    """What differs between SQLite and PostgreSQL: connection, placeholders,
    transactions, schema version, error types. SQL is written with ``?``."""

    location: str
    """Where the store is, for messages (a path, or a URL without password)."""
    path: Path
    """A local path naming the store: the file itself for SQLite; for PostgreSQL
    an anchor in the user data dir (the persistent MQTT session and its lock are
    derived from it)."""
    errors: tuple[type[BaseException], ...]
    tiebreak: str
    """Column ordering rows stored in the same second: insertion order."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run the statements in one transaction; their row counts."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Backend):
    errors = (sqlite3.Error,)
    tiebreak = "rowid"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE for writes).
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HostctlError(f"cannot open the results store {path}: {exc}") from None
        try:
            # WAL: a reader (`hostctl results`) never blocks a writer (`hostctl push`).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise HostctlError(
                f"{path} is not a usable edgeprof results store ({exc}): "
                "choose another file with --db"
            ) from None
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        _check_version(version, self.location)
        for number in range(version, SCHEMA_VERSION):
            logger.info("migrating %s to store version %d", self.path, number + 1)
            step = MIGRATIONS[number].sqlite
            if isinstance(step, str):
                self._db.executescript(
                    "BEGIN;" + step + f"; PRAGMA user_version = {number + 1}; COMMIT;"
                )
                continue
            self._db.execute("BEGIN IMMEDIATE")
            try:
                step(self._db)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._db.execute(sql, tuple(params)).fetchall()]

    def write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        counts: list[int] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                counts.append(self._db.execute(sql, tuple(params)).rowcount)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return counts

    def close(self) -> None:
        self._db.close()


_PG_LOCK = 0x6564676570726F66  # b"edgeprof": serializes migrations of one database


class _Postgres(_Backend):
    tiebreak = "seq"

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = redact_url(url)
        try:
            import psycopg
        except ImportError:
            raise HostctlError(
                f"--db {self.location} needs the PostgreSQL driver: "
                "pip install 'edgeprof[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        from platformdirs import user_data_dir

        digest = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        self.path = Path(user_data_dir("edgeprof")) / f"postgres-{digest}"
        self._db = self._connect()
        try:
            self._migrate()
        except psycopg.Error as exc:
            self._db.close()
            raise HostctlError(
                f"{self.location} is not a usable edgeprof results store ({_first_line(exc)})"
            ) from None
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as exc:
            raise HostctlError(
                f"cannot connect to the results store {self.location}: {_first_line(exc)}"
            ) from None

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _migrate(self) -> None:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS edgeprof_schema (version INTEGER NOT NULL)"
            )
            row = self._db.execute("SELECT version FROM edgeprof_schema").fetchone()
            if row is None:
                self._db.execute("INSERT INTO edgeprof_schema (version) VALUES (0)")
                version = 0
            else:
                version = int(row[0])
            _check_version(version, self.location)
            for number in range(version, SCHEMA_VERSION):
                logger.info("migrating %s to store version %d", self.location, number + 1)
                for statement in MIGRATIONS[number].postgres:
                    self._db.execute(statement)
            self._db.execute("UPDATE edgeprof_schema SET version = %s", (SCHEMA_VERSION,))

    @contextmanager
    def _reconnecting(self) -> Iterator[None]:
        """Reconnect once when the server dropped the connection (a restart)."""
        if self._db.closed or self._db.broken:
            logger.info("results store connection lost: reconnecting to %s", self.location)
            self._db = self._connect()
        yield

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reconnecting():
            return [tuple(r) for r in self._db.execute(self._sql(sql), tuple(params)).fetchall()]

    def write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        counts: list[int] = []
        with self._reconnecting(), self._db.transaction():
            for sql, params in statements:
                counts.append(self._db.execute(self._sql(sql), tuple(params)).rowcount)
        return counts

    def close(self) -> None:
        self._db.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_version(version: int, location: str) -> None:
    if version > SCHEMA_VERSION:
        raise HostctlError(
            f"{location} was written by a newer edgeprof (store version {version}, "
            f"this one knows {SCHEMA_VERSION}): upgrade edgeprof"
        )


class _Where:
    """A WHERE clause built from optional filters (``?`` placeholders)."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []
        self.empty = False
        """True when a filter can match nothing (an empty list of ids)."""

    def equal(self, column: str, value: Any) -> None:
        if value is not None:
            self.clauses.append(f"{column} = ?")
            self.params.append(value)

    def among(self, column: str, values: Sequence[Any] | None, *, negate: bool = False) -> None:
        if values is None:
            return
        if not values:
            self.empty = self.empty or not negate
            return
        marks = ", ".join("?" * len(values))
        self.clauses.append(f"{column} {'NOT IN' if negate else 'IN'} ({marks})")
        self.params.extend(values)

    def between(
        self,
        column: str,
        since: str | float | _dt.datetime | None,
        until: str | float | _dt.datetime | None,
    ) -> None:
        """Both bounds inclusive (see :func:`_bound`)."""
        low, high = _bound(since, "--since"), _bound(until, "--until")
        if low is not None:
            self.clauses.append(f"{column} >= ?")
            self.params.append(low)
        if high is not None:
            self.clauses.append(f"{column} <= ?")
            self.params.append(high)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


# --------------------------------------------------------------------------- the store


class ResultStore:
    """Result documents and the job journal, in SQLite (a file, created on first
    use; the default) or PostgreSQL (``db`` = ``postgresql://…``)."""

    @staticmethod
    def resolve(db: str | Path | None) -> str | Path:
        """What a store opened with `db` (``--db``; None: the default) uses: the
        SQLite file, or the PostgreSQL URL as given."""
        if is_postgres_url(db):
            return str(db)
        return Path(db).expanduser() if db is not None else default_db_path()

    def __init__(self, db: str | Path | None = None) -> None:
        where = self.resolve(db)
        if isinstance(where, str):
            self._backend: _Backend = _Postgres(where)
        else:
            self._backend = _SQLite(where)
        self.path = self._backend.path
        self.location = self._backend.location

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        return "postgresql" if isinstance(self._backend, _Postgres) else "sqlite"

    # -- plumbing ------------------------------------------------------------------
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._backend.query(sql, params)
        except self._backend.errors as exc:
            raise HostctlError(
                f"cannot read the results store {self.location}: {_first_line(exc)}"
            ) from None

    def _write(self, *statements: tuple[str, Sequence[Any]]) -> list[int]:
        try:
            return self._backend.write(statements)
        except self._backend.errors as exc:
            raise HostctlError(
                f"cannot write to the results store {self.location}: {_first_line(exc)}"
            ) from None

    # -- results -------------------------------------------------------------------
    def add(self, doc: Mapping[str, Any]) -> bool:
        """Store one result document; False when (job id, device id) is already stored.

        A document without a job id (a local ``hostctl profile`` run) gets a
        generated ``local-…`` id, written into the stored document.
        """
        document = dict(doc)
        job_id = _text(document.get("job_id")) or f"local-{uuid.uuid4().hex[:16]}"
        document["job_id"] = job_id
        device, model = _section(document, "device"), _section(document, "model")
        name = _text(model.get("name"))
        created = _text(document.get("created_at"))
        stored = _now_iso()
        (count,) = self._write(
            (
                "INSERT INTO results (job_id, device_id, model_name, model_stem, sha256, label, "
                "status, created_at, created_ts, stored_at, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, device_id) DO NOTHING",
                (
                    job_id,
                    _text(device.get("id")) or "",
                    name,
                    _stem(name),
                    _text(model.get("sha256")),
                    _text(document.get("label")),
                    _text(document.get("status")),
                    created,
                    _timestamp(created) or _timestamp(stored),
                    stored,
                    json.dumps(document, sort_keys=True),
                ),
            )
        )
        return count == 1

    def add_received(self, doc: Mapping[str, Any]) -> str:
        """Store a result document a device sent (its job id and ``device.id`` set).

        Returns ``"new"`` when it was stored; ``"same"`` when that (job, device)
        result is stored already, identical (an agent re-sends unacknowledged
        results); ``"conflict"`` when a *different* one is stored: the stored
        result stays and the new one is kept as a result event
        (:meth:`result_events`), never as a second row; ``"refused"`` when that
        job already has :data:`MAX_RESULT_EVENTS` such events (nothing kept).
        """
        document = dict(doc)
        job_id = _text(document.get("job_id"))
        device_id = _text(_section(document, "device").get("id"))
        if not job_id or not device_id:
            raise ValueError("a received result needs its job id and device id")
        if self.add(document):
            return "new"
        stored = self.get(job_id, device_id)
        text = json.dumps(document, sort_keys=True)
        if stored is not None and json.dumps(stored, sort_keys=True) == text:
            return "same"
        (held,) = self._read(
            "SELECT COUNT(*) FROM result_events WHERE job_id = ? AND device_id = ?",
            (job_id, device_id),
        )
        if int(held[0]) >= MAX_RESULT_EVENTS:
            return "refused"
        self._write(
            (
                "INSERT INTO result_events (job_id, device_id, kind, digest, received_at, "
                "document) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, device_id, digest) DO NOTHING",
                (
                    job_id,
                    device_id,
                    "conflict",
                    hashlib.sha256(text.encode()).hexdigest(),
                    time.time(),
                    text,
                ),
            )
        )
        return "conflict"

    def result_events(
        self, *, job_ids: Sequence[str] | None = None, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Result events, oldest first: ``{job_id, device_id, kind, received_at, document}``
        (kind ``"conflict"``: a result that differed from the one stored)."""
        where = _Where()
        where.among("job_id", job_ids)
        where.equal("device_id", device)
        if where.empty:
            return []
        rows = self._read(
            "SELECT job_id, device_id, kind, received_at, document FROM result_events"
            + where.sql()
            + " ORDER BY received_at, digest",
            where.params,
        )
        return [
            {
                "job_id": job_id,
                "device_id": device_id,
                "kind": kind,
                "received_at": float(received),
                "document": json.loads(document),
            }
            for job_id, device_id, kind, received, document in rows
        ]

    def get(self, job_id: str, device_id: str | None = None) -> dict[str, Any] | None:
        """The stored document of one job (of one device when given), or None."""
        sql = "SELECT document FROM results WHERE job_id = ?"
        params: list[Any] = [job_id]
        if device_id is not None:
            sql += " AND device_id = ?"
            params.append(device_id)
        rows = self._read(sql + f" ORDER BY {self._backend.tiebreak} LIMIT 1", params)
        return None if not rows else dict(json.loads(rows[0][0]))

    def query(
        self,
        *,
        job_ids: Sequence[str] | None = None,
        device: str | None = None,
        model: str | None = None,
        label: str | None = None,
        status: str | None = None,
        since: str | float | _dt.datetime | None = None,
        until: str | float | _dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored documents, oldest first; `limit` keeps the newest N.

        `model` matches the model's file name with or without its extension, or
        (from :data:`SHA_PREFIX_MIN` hex digits) a prefix of its SHA-256.
        `status` is "ok" or "error". `since`/`until` bound the creation time
        (both inclusive): ISO 8601 dates or times (UTC when no offset is given),
        datetimes or epoch seconds.
        """
        where = _Where()
        where.among("job_id", job_ids)
        where.equal("device_id", device)
        if model is not None:
            clause = "(model_name = ? OR model_stem = ?"
            where.params.extend([model, model])
            prefix = model.lower()
            if len(prefix) >= SHA_PREFIX_MIN and all(c in "0123456789abcdef" for c in prefix):
                clause += " OR substr(sha256, 1, ?) = ?"
                where.params.extend([len(prefix), prefix])
            where.clauses.append(clause + ")")
        where.equal("label", label)
        where.equal("status", status)
        where.between("created_ts", since, until)
        if where.empty:
            return []
        # Newest first so LIMIT keeps the latest; reversed below to read oldest first.
        sql = "SELECT document FROM results" + where.sql()
        sql += f" ORDER BY created_ts DESC, {self._backend.tiebreak} DESC"
        params = where.params
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        return [dict(json.loads(row[0])) for row in reversed(self._read(sql, params))]

    def delete(self, job_ids: Sequence[str]) -> int:
        """Delete the results of these jobs (every device's, with their result events);
        how many results were deleted."""
        if not job_ids:
            return 0
        marks = ", ".join("?" * len(job_ids))
        count, _events = self._write(
            (f"DELETE FROM results WHERE job_id IN ({marks})", list(job_ids)),
            (f"DELETE FROM result_events WHERE job_id IN ({marks})", list(job_ids)),
        )
        return count

    def prune_errors(self) -> int:
        """Delete every error result (status "error"); how many were deleted."""
        (count,) = self._write(("DELETE FROM results WHERE status = ?", ["error"]))
        return count

    def count(self) -> int:
        """Number of stored results."""
        return int(self._read("SELECT COUNT(*) FROM results")[0][0])

    # -- job journal -----------------------------------------------------------------
    def journal_job(
        self,
        *,
        job_id: str,
        device_id: str,
        model_name: str | None,
        sha256: str | None,
        label: str | None,
        settings: Mapping[str, Any],
        sent_at: float,
        expires_at: float | None,
        state: str = "sent",
        model_facts: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a job before it is sent; False when (job, device) is journaled already.

        ``model_facts``: what the host vouches for about the model it sends (its
        variant record, its gzip size), attached to the job's result on arrival."""
        (count,) = self._write(
            (
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, device_id) DO NOTHING",
                (
                    job_id,
                    device_id,
                    model_name,
                    sha256,
                    label,
                    json.dumps(dict(settings), sort_keys=True, default=str),
                    float(sent_at),
                    None if expires_at is None else float(expires_at),
                    state,
                    None,
                    time.time(),
                    json.dumps(dict(model_facts), sort_keys=True) if model_facts else None,
                ),
            )
        )
        return count == 1

    def update_job(
        self,
        job_id: str,
        device_id: str,
        state: str,
        reason: str | None = None,
        *,
        at: float | None = None,
    ) -> bool:
        """Set a journaled job's state; False when the job is not journaled for that
        device, or when it would move a finished job back to a pending state (a late
        event after the result)."""
        sql = "UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE job_id = ? AND device_id = ?"
        params: list[Any] = [state, reason, time.time() if at is None else at, job_id, device_id]
        if state not in FINISHED_JOB_STATES:
            sql += f" AND state NOT IN ({', '.join('?' * len(FINISHED_JOB_STATES))})"
            params.extend(FINISHED_JOB_STATES)
        (count,) = self._write((sql, params))
        return count == 1

    def get_job(self, job_id: str, device_id: str) -> JournalEntry | None:
        rows = self._read(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ? AND device_id = ?",
            (job_id, device_id),
        )
        return _entry(rows[0]) if rows else None

    def sent_to(self, job_id: str, device_id: str) -> bool:
        """True when the journal says this job was sent to this device."""
        return bool(
            self._read("SELECT 1 FROM jobs WHERE job_id = ? AND device_id = ?", (job_id, device_id))
        )

    def job_devices(self, job_id: str) -> list[str]:
        """The devices a job was sent to (one, for jobs this host made)."""
        rows = self._read(
            "SELECT device_id FROM jobs WHERE job_id = ? ORDER BY device_id", (job_id,)
        )
        return [row[0] for row in rows]

    def jobs(
        self,
        *,
        job_ids: Sequence[str] | None = None,
        device: str | None = None,
        states: Sequence[str] | None = None,
        pending: bool | None = None,
        since: str | float | _dt.datetime | None = None,
        until: str | float | _dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Journaled jobs, oldest sent first; `limit` keeps the newest N.

        `pending` True keeps jobs that may still deliver a result, False the
        finished ones (see :data:`FINISHED_JOB_STATES`); `since`/`until` bound
        the time they were sent.
        """
        where = _Where()
        where.among("job_id", job_ids)
        where.equal("device_id", device)
        where.among("state", states)
        if pending is not None:
            where.among("state", FINISHED_JOB_STATES, negate=pending)
        where.between("sent_at", since, until)
        if where.empty:
            return []
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs" + where.sql()
        params = where.params
        sql += " ORDER BY sent_at DESC, job_id DESC, device_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        return [_entry(row) for row in reversed(self._read(sql, params))]

    def lost_jobs(self, now: float | None = None) -> list[JournalEntry]:
        """Pending jobs past their expiry: the device will not run them any more, and
        no result of theirs is stored."""
        moment = time.time() if now is None else now
        return [
            job
            for job in self.jobs(pending=True)
            if job.expired(moment) and self.get(job.job_id, job.device_id) is None
        ]

    # -- lifetime --------------------------------------------------------------------
    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

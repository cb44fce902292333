"""Where the chain lives: sqlite (WAL) by default, PostgreSQL by URL. One schema, one append path.

Appends are serialised per log (sqlite `BEGIN IMMEDIATE`, a Postgres transaction-scoped advisory
lock), so concurrent writers extend the chain one at a time and never fork it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from governance.audit.chain import GENESIS, AuditRecord, Entry, seal

_COLUMNS = "seq, at, actor, action, subject, versions, decision, reasons, prev_hash, hash"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, versions TEXT NOT NULL, decision TEXT NOT NULL, reasons TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL
)"""
_ADVISORY_LOCK = 0x6A7564  # any constant shared by every writer of the table


class AuditLog(Protocol):
    def append(self, entry: Entry) -> AuditRecord: ...

    def records(self, subject: str | None = None) -> Iterator[AuditRecord]: ...


class _SqlAuditLog:
    """The shared SQL; subclasses give the connection, the placeholder and the exclusive begin."""

    placeholder = "?"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        raise NotImplementedError

    def _begin_exclusive(self, cursor: Any) -> None:
        raise NotImplementedError

    def append(self, entry: Entry) -> AuditRecord:
        marks = ", ".join([self.placeholder] * 10)
        with self._lock:
            conn = self._connection()
            cursor = conn.cursor()
            try:
                self._begin_exclusive(cursor)
                cursor.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                last = cursor.fetchone()
                seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
                record = seal(seq, datetime.now(UTC).isoformat(timespec="microseconds"), entry, prev)
                cursor.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({marks})", _row(record))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return record

    def records(self, subject: str | None = None) -> Iterator[AuditRecord]:
        query = f"SELECT {_COLUMNS} FROM audit_log"
        params: tuple[str, ...] = ()
        if subject is not None:
            query += f" WHERE subject = {self.placeholder}"
            params = (subject,)
        with self._lock:
            cursor = self._connection().cursor()
            cursor.execute(query + " ORDER BY seq", params)
            rows = cursor.fetchall()
            self._connection().commit()
        return (_record(row) for row in rows)


class SqliteAuditLog(_SqlAuditLog):
    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE takes the write
        # lock up front, so two writers never both read the same chain head).
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def _connection(self) -> Any:
        return _AutoCommit(self._conn)

    def _begin_exclusive(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")


class PostgresAuditLog(_SqlAuditLog):
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        import psycopg

        super().__init__()
        self._conn = psycopg.connect(url, connect_timeout=10)
        with self._conn.transaction():
            self._conn.execute(_SCHEMA)

    def _connection(self) -> Any:
        return self._conn

    def _begin_exclusive(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))


class _AutoCommit:
    """sqlite3 in autocommit mode behind the commit/rollback/cursor surface psycopg offers."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def cursor(self) -> sqlite3.Cursor:
        return self._conn.cursor()

    def commit(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


def open_audit_log(default_path: Path, url: str | None = None) -> AuditLog:
    """`url` None: sqlite at `default_path`; `postgresql://…`: that database."""
    if url is None or url.startswith("sqlite:///"):
        return SqliteAuditLog(Path(url.removeprefix("sqlite:///")) if url else default_path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditLog(url)
    raise ValueError("audit log URL must be sqlite:///PATH or postgresql://…")


def _row(record: AuditRecord) -> tuple[Any, ...]:
    return (
        record.seq,
        record.at,
        record.actor,
        record.action,
        record.subject,
        json.dumps(record.versions, sort_keys=True),
        record.decision,
        json.dumps(list(record.reasons)),
        record.prev_hash,
        record.hash,
    )


def _record(row: tuple[Any, ...]) -> AuditRecord:
    seq, at, actor, action, subject, versions, decision, reasons, prev_hash, digest = row
    return AuditRecord(
        int(seq),
        at,
        actor,
        action,
        subject,
        json.loads(versions),
        decision,
        tuple(json.loads(reasons)),
        prev_hash,
        digest,
    )


class AuditTrail:
    """An audit log bound to who is acting (`dagster:<run id>`, `cli:<user>`)."""

    def __init__(self, log: AuditLog, actor: str) -> None:
        self.log = log
        self.actor = actor

    def record(
        self,
        action: str,
        subject: str,
        versions: Mapping[str, str],
        decision: str = "",
        reasons: Sequence[str] = (),
    ) -> AuditRecord:
        return self.log.append(Entry(self.actor, action, subject, versions, decision, reasons))

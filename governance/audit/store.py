"""Where the chain lives: sqlite (WAL) by default, PostgreSQL by URL. One schema, one append path.

Appends are serialised per log (sqlite `BEGIN IMMEDIATE`, a Postgres transaction-scoped advisory
lock), so concurrent writers extend the chain one at a time and never fork it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from governance.audit.chain import GENESIS, AuditRecord, Entry, seal
from governance.errors import AuditUnavailable, PermanentError

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

    def __init__(self, where: str) -> None:
        self.where = where
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        raise NotImplementedError

    def _discard(self) -> None:
        """Close, leaving nothing behind that opening created (a damaged log was refused)."""
        self._connection().close()

    def _begin_exclusive(self, cursor: Any) -> None:
        raise NotImplementedError

    def append(self, entry: Entry) -> AuditRecord:
        """Extend the chain by one record, or raise AuditUnavailable having written nothing."""
        marks = ", ".join([self.placeholder] * 10)
        with self._lock:
            conn = self._connection()
            try:
                cursor = conn.cursor()
                self._begin_exclusive(cursor)
                cursor.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                last = cursor.fetchone()
                seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
                record = seal(seq, datetime.now(UTC).isoformat(timespec="microseconds"), entry, prev)
                cursor.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({marks})", _row(record))
                conn.commit()
            except Exception as exc:
                _quietly(conn.rollback)
                raise AuditUnavailable(
                    f"audit log {self.where} cannot be written ({_first_line(exc)})"
                ) from None
        return record

    def records(self, subject: str | None = None) -> Iterator[AuditRecord]:
        query = f"SELECT {_COLUMNS} FROM audit_log"
        params: tuple[str, ...] = ()
        if subject is not None:
            query += f" WHERE subject = {self.placeholder}"
            params = (subject,)
        with self._lock:
            try:
                cursor = self._connection().cursor()
                cursor.execute(query + " ORDER BY seq", params)
                rows = cursor.fetchall()
                self._connection().commit()
            except sqlite3.DatabaseError as exc:
                if _passing(exc):  # locked, busy, I/O: try again
                    raise AuditUnavailable(
                        f"audit log {self.where} cannot be read ({_first_line(exc)})"
                    ) from None
                self._discard()
                raise PermanentError(  # malformed: trying again cannot help
                    f"audit log {self.where} is damaged ({_first_line(exc)}); restore it from a "
                    "backup and run `governance audit verify`"
                ) from None
            except Exception as exc:
                raise AuditUnavailable(
                    f"audit log {self.where} cannot be read ({_first_line(exc)})"
                ) from None
        try:
            return iter([_record(row) for row in rows])
        except (ValueError, TypeError) as exc:
            self._discard()  # refused: nothing left beside the file by this connection
            raise PermanentError(
                f"audit log {self.where} holds a malformed record ({_first_line(exc)}): "
                "run `governance audit verify`"
            ) from None


class SqliteAuditLog(_SqlAuditLog):
    def __init__(self, path: Path, busy_timeout_s: float = 30) -> None:
        super().__init__(str(path))
        _refuse_unreadable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The WAL and shared-memory files this connection creates: removed again if the file is
        # refused as damaged, so a refused input leaves nothing beside it.
        self._created = [
            side for side in (Path(f"{path}-wal"), Path(f"{path}-shm")) if not side.exists()
        ]
        self._conn: Any = None
        try:
            # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE takes the
            # write lock up front, so two writers never both read the same chain head).
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):  # a read-only log can still be read and verified
                raise AuditUnavailable(f"audit log {path} cannot be opened ({exc})") from None
        except sqlite3.DatabaseError as exc:
            self._discard()
            raise PermanentError(f"audit log {path} is not an audit database ({exc})") from None

    def _connection(self) -> Any:
        return _AutoCommit(self._conn)

    def _discard(self) -> None:
        """The log is refused as damaged: close, and remove the WAL and shared-memory files this
        connection created (whatever their size: a checkpoint into a damaged file can fail and
        leave them, and they hold nothing but this refused attempt)."""
        if self._conn is not None:
            self._conn.close()
        for side in self._created:
            side.unlink(missing_ok=True)

    def _begin_exclusive(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")


class PostgresAuditLog(_SqlAuditLog):
    placeholder = "%s"

    def __init__(self, url: str, connect_timeout_s: int = 10) -> None:
        import psycopg

        from governance.redaction import redact_url

        super().__init__(redact_url(url))
        try:
            self._conn = psycopg.connect(url, connect_timeout=connect_timeout_s)
            with self._conn.transaction():
                self._conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise AuditUnavailable(
                f"audit log {self.where} cannot be opened ({_first_line(exc)})"
            ) from None

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

    def close(self) -> None:
        self._conn.close()


_PASSING = ("locked", "busy", "disk i/o", "unable to open", "interrupted")


def _passing(exc: sqlite3.DatabaseError) -> bool:
    """A lock, a busy file or an I/O error passes; anything else (sqlite reports a text it cannot
    decode as an OperationalError too) is damage that trying again cannot mend."""
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in _PASSING
    )


def _refuse_unreadable(path: Path) -> None:
    """A file that is not a readable database is refused before a connection opens it: opening
    one in WAL mode creates files beside it, and a refused input must leave the home as it was.
    The probe is immutable (it creates nothing)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    from urllib.parse import quote

    probe = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)
    probe.text_factory = lambda raw: raw.decode("utf-8", "replace")  # quick_check quotes damage
    try:
        probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
        probe.execute("PRAGMA quick_check(1)").fetchone()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        raise PermanentError(f"audit log {path} is not an audit database ({exc})") from None
    finally:
        probe.close()


def open_audit_log(default_path: Path, url: str | None = None) -> AuditLog:
    """`url` None: sqlite at `default_path`; `postgresql://…`: that database."""
    if url is None or url.startswith("sqlite:///"):
        return SqliteAuditLog(Path(url.removeprefix("sqlite:///")) if url else default_path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditLog(url)
    raise PermanentError("the audit log URL must be sqlite:///PATH or postgresql://…")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _quietly(action: Any) -> None:
    try:
        action()
    except Exception:  # the connection may be gone; the append already failed
        return


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

    def record_or_undo(
        self,
        action: str,
        subject: str,
        versions: Mapping[str, str],
        decision: str,
        reasons: Sequence[str],
        *,
        undo: Callable[[], object],
        done: str,
    ) -> AuditRecord:
        """Record an action that has just happened; when the record cannot be written, undo the
        action, so the two succeed together or not at all. `done` says what happened, for the error.
        """
        try:
            return self.record(action, subject, versions, decision, reasons)
        except AuditUnavailable as exc:
            try:
                undo()
            except Exception as undo_exc:
                raise AuditUnavailable(
                    f"{done}, but it is NOT recorded and could not be undone "
                    f"({_first_line(undo_exc)}); undo it by hand: {exc}"
                ) from None
            raise AuditUnavailable(f"{done}: undone, because it could not be recorded: {exc}") from None

"""The durable outbox: every event is written here first, then delivered in order. It is a sqlite
file under the home, or a table of the shared Postgres database (GOVERNANCE_DATABASE_URL).

It is also the record of the events emitted (`governance lineage events` and the explorer read it):
every pending one, and the newest delivered ones `retention.lineage_events` keeps (the backend, a
file or Marquez, has every delivered event). An event is delivered once per event id: delivery is
marked right after the transport accepts it, and one flusher runs at a time (a lock with a deadline:
a file, or the database's advisory lock), so the sensor and the CLI never send the same event
twice. An event the backend rejects (a 4xx) is dead-lettered, visibly, and does not hold back the
events behind it; a transient failure stops the flush so order is kept.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.errors import PermanentError, TransientError
from governance.lineage.transport import RejectedEvent, Transport
from governance.locks import advisory_lock, file_lock
from governance.shared_database import classified, connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)"""
_DEAD_LETTER_COLUMN = "ALTER TABLE outbox ADD COLUMN dead_at REAL"
_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS governance_lineage_outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dead_at DOUBLE PRECISION
)"""
FLUSH_LOCK_TIMEOUT_S = 5.0
COLLECT_LOCK_TIMEOUT_S = 60.0  # a flush in progress finishes first
_DELIVERED = "delivered_at IS NOT NULL"
_ALL = 2**62  # LIMIT without a limit, in both dialects


@dataclass(frozen=True)
class FlushResult:
    delivered: int
    pending: int
    error: str | None = None
    dead_lettered: int = 0


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    event_id: str
    error: str
    event: dict[str, Any]


class Outbox:
    """The SQL both stores share; a subclass gives the connection, its table and placeholder, the
    flush lock and compaction."""

    table = "outbox"
    placeholder = "?"
    _conn: Any

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(
            query.replace("{table}", self.table).replace("?", self.placeholder), params
        )

    def _flush_lock(self, timeout_s: float) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _compact(self) -> None:
        """Give the space of deleted rows back."""

    def _size(self) -> int:
        raise NotImplementedError

    def append(self, event: Mapping[str, Any]) -> str:
        event_id = uuid.uuid4().hex
        self._run(
            "INSERT INTO {table} (event_id, payload, created_at) VALUES (?, ?, ?)",
            (event_id, json.dumps(event, sort_keys=True), time.time()),
        )
        return event_id

    def events(self) -> Iterator[dict[str, Any]]:
        for (payload,) in self._run("SELECT payload FROM {table} ORDER BY seq").fetchall():
            yield json.loads(payload)

    def pending_count(self) -> int:
        query = "SELECT COUNT(*) FROM {table} WHERE delivered_at IS NULL AND dead_at IS NULL"
        return int(self._run(query).fetchone()[0])

    def oldest_pending_at(self) -> float | None:
        """When the oldest event still waiting for delivery was recorded (None: nothing waits)."""
        query = "SELECT MIN(created_at) FROM {table} WHERE delivered_at IS NULL AND dead_at IS NULL"
        oldest = self._run(query).fetchone()[0]
        return float(oldest) if oldest is not None else None

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._run(
            "SELECT seq, event_id, last_error, payload FROM {table} WHERE dead_at IS NOT NULL "
            "ORDER BY seq"
        ).fetchall()
        return [
            DeadLetter(seq, eid, error or "", json.loads(payload)) for seq, eid, error, payload in rows
        ]

    def flush(
        self,
        transport: Transport,
        limit: int | None = None,
        lock_timeout_s: float = FLUSH_LOCK_TIMEOUT_S,
    ) -> FlushResult:
        """Deliver pending events oldest first; stop at the first transient failure so order is
        kept, dead-letter what the backend rejects. Raises TransientError if another flush holds
        the lock beyond `lock_timeout_s` (0: do not wait)."""
        delivered = dead = 0
        with self._flush_lock(lock_timeout_s):
            rows = self._run(
                "SELECT seq, payload FROM {table} WHERE delivered_at IS NULL AND dead_at IS NULL "
                "ORDER BY seq LIMIT ?",
                (limit or _ALL,),
            ).fetchall()
            for seq, payload in rows:
                try:
                    transport.send(json.loads(payload))
                except RejectedEvent as exc:
                    self._mark(seq, "dead_at = ?, last_error = ?", time.time(), str(exc))
                    dead += 1
                    continue
                except TransientError as exc:
                    self._mark(seq, "last_error = ?", str(exc))
                    return FlushResult(delivered, self.pending_count(), str(exc), dead)
                self._mark(seq, "delivered_at = ?", time.time())
                delivered += 1
        return FlushResult(delivered, self.pending_count(), None, dead)

    def collect_delivered(self, keep: int, dry_run: bool = False) -> tuple[int, int, int]:
        """Delivered events beyond the newest `keep` removed, and the store compacted: (removed,
        kept, bytes freed). Pending and dead-lettered events always stay: they are not delivered
        yet. Holds the flush lock, so no flush marks a row this removes."""
        with self._flush_lock(COLLECT_LOCK_TIMEOUT_S):
            query = f"SELECT seq, LENGTH(payload) FROM {{table}} WHERE {_DELIVERED} ORDER BY seq DESC"
            delivered = self._run(query).fetchall()
            beyond = delivered[keep:]
            kept = len(delivered) - len(beyond)
            if dry_run or not beyond:
                return len(beyond), kept, sum(size for _, size in beyond)
            before = self._size()
            newest_removed = beyond[0][0]
            self._run(f"DELETE FROM {{table}} WHERE {_DELIVERED} AND seq <= ?", (newest_removed,))
            self._compact()
            return len(beyond), kept, max(before - self._size(), 0)

    def _mark(self, seq: int, assignments: str, *values: object) -> None:
        self._run(
            f"UPDATE {{table}} SET {assignments}, attempts = attempts + 1 WHERE seq = ?",
            (*values, seq),
        )


class SqliteOutbox(Outbox):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(outbox)")}
            if "dead_at" not in columns:  # an outbox written before dead-lettering existed
                self._conn.execute(_DEAD_LETTER_COLUMN)
        except sqlite3.DatabaseError as exc:
            raise PermanentError(f"lineage outbox {path} cannot be used: {exc}") from None

    def _flush_lock(self, timeout_s: float) -> AbstractContextManager[None]:
        return file_lock(self.path.with_suffix(".flush.lock"), timeout_s=timeout_s)

    def _compact(self) -> None:
        self._conn.execute("VACUUM")  # deleted rows free pages, not bytes on disk
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _size(self) -> int:
        files = (self.path, self.path.with_name(self.path.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.is_file())


_WHAT = "the lineage outbox"


class PostgresOutbox(Outbox):
    """The outbox as a table of the shared database, which every run container reaches."""

    table = "governance_lineage_outbox"
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = connect(url, _WHAT, _POSTGRES_SCHEMA)

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with classified(_WHAT):
            return super()._run(query, params)

    def _flush_lock(self, timeout_s: float) -> AbstractContextManager[None]:
        return advisory_lock(self.url, "lineage-outbox-flush", timeout_s)

    def _compact(self) -> None:
        self._run("VACUUM FULL {table}")  # a plain VACUUM keeps the space for the table's reuse

    def _size(self) -> int:
        return int(self._run("SELECT pg_total_relation_size('{table}')").fetchone()[0])

"""The durable outbox: every event is written here first, then delivered in order.

It is also the record of every event ever emitted (`governance lineage events` reads it). An event is
delivered once per event id: delivery is marked right after the transport accepts it, and one
flusher runs at a time (a file lock), so the sensor and the CLI never send the same event twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.errors import TransientError
from governance.lineage.transport import Transport
from governance.locks import file_lock

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


@dataclass(frozen=True)
class FlushResult:
    delivered: int
    pending: int
    error: str | None = None


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def append(self, event: Mapping[str, Any]) -> str:
        event_id = uuid.uuid4().hex
        self._conn.execute(
            "INSERT INTO outbox (event_id, payload, created_at) VALUES (?, ?, ?)",
            (event_id, json.dumps(event, sort_keys=True), time.time()),
        )
        return event_id

    def events(self) -> Iterator[dict[str, Any]]:
        for (payload,) in self._conn.execute("SELECT payload FROM outbox ORDER BY seq"):
            yield json.loads(payload)

    def pending_count(self) -> int:
        return int(
            self._conn.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]
        )

    def flush(self, transport: Transport, limit: int | None = None) -> FlushResult:
        """Deliver pending events oldest first; stop at the first failure so order is kept."""
        delivered = 0
        with file_lock(self.path.with_suffix(".flush.lock")):
            rows = self._conn.execute(
                "SELECT seq, payload FROM outbox WHERE delivered_at IS NULL ORDER BY seq LIMIT ?",
                (limit or -1,),
            ).fetchall()
            for seq, payload in rows:
                try:
                    transport.send(json.loads(payload))
                except TransientError as exc:
                    self._conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                        (str(exc), seq),
                    )
                    return FlushResult(delivered, self.pending_count(), str(exc))
                self._conn.execute(
                    "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE seq = ?",
                    (time.time(), seq),
                )
                delivered += 1
        return FlushResult(delivered, self.pending_count())

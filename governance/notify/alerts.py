"""Alerts on everything that fails: one place where a failure becomes a message, whatever raised it
(a Dagster run, a blocking check, an image build or its preflight, a slow build, self-heal, a lineage
backlog).

Alerting never gets in the way of the work. A message is sent on its own thread, in one attempt,
within a deadline, and the caller never waits for it. A failure to send or to consult the ledger is
logged (without the webhook) and forgotten. The ledger (`alerts.db` under the home, or a table of
the shared database with GOVERNANCE_DATABASE_URL; shared by every process) holds back the same
cause repeated within the window: it is sent once, and the next message after the window carries
the count of those held back.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from governance.display import one_line
from governance.redaction import redact

log = logging.getLogger(__name__)

TITLES = {
    "run_failed": "Dagster run failed",
    "check_failed": "blocking check failed",
    "build_failed": "image build failed",
    "build_slow": "image build delayed",
    "preflight_failed": "build preflight failed",
    "self_heal": "self-heal acted",
    "lineage_backlog": "lineage backlog",
}


@dataclass(frozen=True)
class Alert:
    kind: str  # one of TITLES
    subject: str  # what: an asset, a check, an image, a release, a job
    reason: str  # why: the error (only its first line is sent)
    link: str | None = None  # the Dagster run, when there is one
    ok: bool = False  # a recovery (self-heal that worked) rather than a failure
    details: tuple[str, ...] = ()  # shown, but not part of the cause (counts, ages)

    def __post_init__(self) -> None:
        if self.kind not in TITLES:
            raise ValueError(f"unknown alert kind {self.kind!r}")

    @property
    def cause(self) -> str:
        """What makes two alerts the same: kind, subject and reason, not the run or the time."""
        text = f"{self.kind}\0{self.subject}\0{first_line(self.reason)}"
        return hashlib.sha256(text.encode()).hexdigest()


class Notifier(Protocol):
    def send(self, title: str, lines: list[str], *, ok: bool) -> bool: ...


def first_line(text: str) -> str:
    lines = [line for line in redact(text).splitlines() if line.strip()]
    return one_line(lines[0] if lines else "(no detail)")[:300]


class Alerts:
    def __init__(
        self, notifier: Notifier, ledger: Path, window_s: float, database_url: str | None = None
    ) -> None:
        self.notifier = notifier
        self.ledger = ledger
        self.window_s = window_s
        self.database_url = database_url  # the ledger is a table there rather than `ledger`

    def alert(self, alert: Alert) -> threading.Thread | None:
        """Send `alert` unless its cause was sent within the window; returns the sending thread
        (a caller that ends right away need not wait: the thread is not a daemon, and its one
        attempt has a deadline)."""
        try:
            held_back = self._admit(alert.cause)
        except Exception as exc:  # the ledger's own failure (sqlite, Postgres, the disk)
            where = "in the database" if self.database_url else str(self.ledger)
            detail = first_line(str(exc))
            log.warning("alert ledger %s unusable (%s): sending without deduplication", where, detail)
            held_back = (0, None)
        if held_back is None:
            return None
        return _in_background(lambda: self._deliver(alert, *held_back))

    def notify(self, title: str, lines: list[str], *, ok: bool) -> threading.Thread:
        """A message that is news every time (a release decision): sent like an alert, never held
        back."""
        return _in_background(lambda: self._send(title, lines, ok))

    def _send(self, title: str, lines: list[str], ok: bool) -> None:
        try:
            self.notifier.send(title, lines, ok=ok)
        except Exception as exc:  # alerting never fails the work: logged, without the webhook
            log.warning("message %r not delivered: %s", title, type(exc).__name__)

    def _deliver(self, alert: Alert, count: int, since: float | None) -> None:
        lines = [f"why: {first_line(alert.reason)}", *(first_line(d) for d in alert.details)]
        if alert.link:
            lines.append(f"run: {alert.link}")
        if count and since is not None:
            at = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M UTC")
            lines.append(f"the same happened {count} more time(s) since {at}")
        self._send(f"{TITLES[alert.kind]}: {alert.subject}", lines, alert.ok)

    def _admit(self, cause: str) -> tuple[int, float | None] | None:
        """None when the cause was sent within the window (it is counted); otherwise how many were
        held back since when, and the cause is marked sent now."""
        now = time.time()
        ledger = (
            _postgres_ledger(self.database_url) if self.database_url else _sqlite_ledger(self.ledger)
        )
        with ledger as run:  # one transaction, exclusive among the ledger's writers
            row = run("SELECT sent_at, held_back, held_since FROM {table} WHERE cause = ?", (cause,))
            if row is not None and now - row[0] < self.window_s:
                run(
                    "UPDATE {table} SET held_back = held_back + 1, "
                    "held_since = COALESCE(held_since, ?) WHERE cause = ?",
                    (now, cause),
                )
                return None
            run(
                "INSERT INTO {table} (cause, sent_at, held_back, held_since) VALUES (?, ?, 0, NULL)"
                " ON CONFLICT (cause) DO UPDATE SET sent_at = ?, held_back = 0, held_since = NULL",
                (cause, now, now),
            )
            return (int(row[1]), row[2]) if row is not None else (0, None)


# One statement in the ledger's transaction: its first row, if any.
Run = Callable[[str, tuple[object, ...]], tuple[Any, ...] | None]
_LEDGER_COLUMNS = (
    "(cause TEXT PRIMARY KEY, sent_at {real} NOT NULL, held_back INTEGER NOT NULL, held_since {real})"
)


@contextmanager
def _sqlite_ledger(path: Path) -> Iterator[Run]:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=2.0, isolation_level=None)
    try:
        db.execute(f"CREATE TABLE IF NOT EXISTS alerts {_LEDGER_COLUMNS.format(real='REAL')}")
        db.execute("BEGIN IMMEDIATE")
        yield lambda query, params: db.execute(query.format(table="alerts"), params).fetchone()
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()


@contextmanager
def _postgres_ledger(url: str) -> Iterator[Run]:
    from governance.shared_database import classified, connect

    table = "governance_alerts"
    ddl = f"CREATE TABLE IF NOT EXISTS {table} {_LEDGER_COLUMNS.format(real='DOUBLE PRECISION')}"
    what = "the alert ledger"
    with connect(url, what, ddl, timeout_s=2) as db, classified(what), db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext('governance-alerts'))")

        def run(query: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
            cursor = db.execute(query.format(table=table).replace("?", "%s"), params)
            return cursor.fetchone() if cursor.description else None

        yield run


def _in_background(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, name="governance-alert", daemon=False)
    thread.start()
    return thread

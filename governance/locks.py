"""Exclusive locks for state that several processes (runs, sensors, the CLI) share.

On one machine a lock is a file (`flock`); with GOVERNANCE_DATABASE_URL, where runs are containers
or pods that share no kernel, it is a Postgres session advisory lock. Either way the lock goes with
its holder: the kernel releases a dead process's flock, the server a dead connection's advisory
lock. Every wait has a deadline when asked for one: a holder that hangs (a flush stuck on a dead
backend, a killed process's successor) must not stall the next caller forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from governance.errors import TransientError

_POLL_S = 0.05
_ADVISORY_POLL_S = 0.2


@dataclass(frozen=True)
class Locks:
    """Where this installation's locks live: files, or the shared database when it has one."""

    database_url: str | None = None

    def hold(
        self, name: str, path: Path, timeout_s: float | None = None
    ) -> AbstractContextManager[None]:
        """The lock `name`: the file at `path` on one machine, else the database's advisory lock
        of that name. `timeout_s`: give up after that long with a TransientError (0: try once)."""
        if self.database_url:
            return advisory_lock(self.database_url, name, timeout_s)
        return file_lock(path, timeout_s)


LOCAL = Locks()  # files on this machine: the embedded default


@contextmanager
def advisory_lock(url: str, name: str, timeout_s: float | None = None) -> Iterator[None]:
    """A session advisory lock keyed by `name`, held on a connection of its own."""
    import psycopg

    from governance.shared_database import classified, connect

    key = int.from_bytes(hashlib.sha256(f"governance:{name}".encode()).digest()[:8], signed=True)
    with connect(url, f"lock {name}") as conn:
        with classified(f"lock {name}"):  # taking it; the holder's own work is not the lock's
            if timeout_s is None:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            else:
                deadline = time.monotonic() + timeout_s
                while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                    if time.monotonic() >= deadline:
                        raise TransientError(f"lock {name} is held by another process; try again later")
                    time.sleep(_ADVISORY_POLL_S)
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):  # a lost connection released it already
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def file_lock(path: Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the lock; with `timeout_s`, give up after that long with a TransientError (0: try once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        if timeout_s is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:
            _acquire_by(handle, path, time.monotonic() + timeout_s)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire_by(handle: IO[str], path: Path, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TransientError(f"{path} is held by another process; try again later") from None
            time.sleep(_POLL_S)

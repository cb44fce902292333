"""An exclusive lock on a file, for state that several processes (runs, sensors, the CLI) share.

Every wait has a deadline: a holder that hangs (a flush stuck on a dead backend, a killed process's
successor) must not stall the next caller forever. The kernel releases the lock if its holder dies.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from governance.errors import TransientError

_POLL_S = 0.05


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

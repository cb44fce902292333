"""Lanes for the suite's long modules: at most one per core runs at a time, whatever the number of
pytest-xdist workers.

A long module (marked `runs_for`) builds images, serves and launches runs, and keeps about a core
busy; three of them on two cores ran the season past its timeout. The short modules are single
Python processes waiting on their subprocesses, and two workers left a core idle for most of the
suite's last eight minutes. So the suite runs a worker more than the cores, and a worker whose next
module is long first takes a lane (a lock file in the session's directory), waiting while the
others hold them; the wait comes before the module's first test, outside its timeout.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO


class Lanes:
    def __init__(self, directory: Path, count: int) -> None:
        self._files = [directory / f"lane-{index}.lock" for index in range(count)]
        self._module: str | None = None
        self._held: IO[bytes] | None = None

    def enter(self, module: str, *, long: bool) -> None:
        """Called before each test: a new module gives its lane back, and a long one takes one."""
        if module == self._module:
            return
        self._module = module
        if self._held is not None:
            self._held.close()  # closing the file releases its lock
            self._held = None
        if long:
            self._held = self._take()

    def _take(self) -> IO[bytes]:
        while True:
            for path in self._files:
                handle = path.open("ab")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                return handle
            time.sleep(1)


def lanes_for(directory: Path) -> Lanes:
    return Lanes(directory, os.cpu_count() or 1)

"""Lanes for the suite's long modules: at most one per core runs at a time, whatever the number of
pytest-xdist workers, and they start longest first.

A long module (marked `runs_for`) builds images, serves and launches runs, and keeps about a core
busy; three of them on two cores ran the season past its timeout. The short modules are single
Python processes waiting on their subprocesses, and two workers left a core idle for most of the
suite's last eight minutes. So the suite runs a worker more than the cores, and a worker whose next
module is long waits, before the module's first test (outside its timeout), until a lane is free
and every longer module has started: the workers come up in no particular order, and the first
one up must not take a lane from a longer module whose worker comes up a second later.
The lanes are lock files in the session's directory, and each start leaves a file there.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO


class Lanes:
    def __init__(self, directory: Path, count: int, long_modules: list[str]) -> None:
        """`long_modules`: longest first, the same list in every worker."""
        self._directory = directory
        self._files = [directory / f"lane-{index}.lock" for index in range(count)]
        self._rank = {module: rank for rank, module in enumerate(long_modules)}
        self._module: str | None = None
        self._held: IO[bytes] | None = None

    def enter(self, module: str) -> None:
        """Called before each test: a new module gives its lane back, and a long one takes one."""
        if module == self._module:
            return
        self._module = module
        if self._held is not None:
            self._held.close()  # closing the file releases its lock
            self._held = None
        rank = self._rank.get(module)
        if rank is not None:
            self._held = self._take(rank)
            (self._directory / f"started-{rank}").touch()

    def _take(self, rank: int) -> IO[bytes]:
        while True:
            if all((self._directory / f"started-{r}").exists() for r in range(rank)):
                for path in self._files:
                    handle = path.open("ab")
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        handle.close()
                        continue
                    return handle
            time.sleep(1)


def lanes_for(directory: Path, long_modules: list[str]) -> Lanes:
    return Lanes(directory, os.cpu_count() or 1, long_modules)

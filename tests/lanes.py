"""Lanes for the suite's long modules: at most one per core runs at a time, whatever the number of
pytest-xdist workers, and they start longest first.

A long module (marked `runs_for`) builds images, serves and launches runs, and keeps about a core
busy; three of them on two cores ran the season past its timeout. The short modules are single
Python processes waiting on their subprocesses, and two workers left a core idle for most of the
suite's last eight minutes. So the suite runs a worker more than the cores; the scheduler below hands a
worker a long module only while a lane is free, and a short one otherwise. A worker whose next
module is long still waits, before the module's first test (outside its timeout), until a lane is
free and every longer module has started: the workers come up in no particular order, and the
first one up must not take a lane from a longer module whose worker comes up a second later; and
once the short modules are all handed out, a long one goes to the next worker that asks.
The lanes are lock files in the session's directory, and each start leaves a file there.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

LANE_COUNT = os.cpu_count() or 1
LONG_MODULES = "long-modules.json"


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
    return Lanes(directory, LANE_COUNT, long_modules)


def record_long_modules(directory: Path, long_modules: set[str]) -> None:
    """For the scheduler, which runs in pytest-xdist's controller and sees node ids, no markers.
    Every worker writes the same set before it reports its collection."""
    partial = directory / f"{LONG_MODULES}.{os.getpid()}"
    partial.write_text(json.dumps(sorted(long_modules)))
    partial.replace(directory / LONG_MODULES)


class LaneScheduling(LoadScopeScheduling):
    """pytest-xdist's loadscope hands a worker the next module in order, whatever it is, and a
    worker handed a long module while every lane was held stood idle until one was free: in a full
    run, 900 s of worker time, with the short modules queued behind. This one hands out a long
    module only while a lane is free, and otherwise a short one; the lanes' locks still hold."""

    def __init__(self, config: pytest.Config, log: Producer | None, directory: Path, lanes: int) -> None:
        super().__init__(config, log)
        self._directory = directory
        self._lanes = lanes
        self._long: set[str] | None = None

    def _assign_work_unit(self, node: WorkerController) -> None:
        if self._long is None:
            self._long = set(json.loads((self._directory / LONG_MODULES).read_text()))
        held = sum(
            1
            for work in self.assigned_work.values()
            for scope, unit in work.items()
            if self._is_long(scope) and not all(unit.values())
        )
        wanted = held < self._lanes
        chosen = next((scope for scope in self.workqueue if self._is_long(scope) == wanted), None)
        if chosen is not None:
            self.workqueue.move_to_end(chosen, last=False)
        super()._assign_work_unit(node)

    def _is_long(self, scope: str) -> bool:
        assert self._long is not None
        return scope.split("::")[0] in self._long

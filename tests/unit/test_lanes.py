"""The suite's lanes (tests/lanes.py): a long module waits while every lane is held, or while a
longer one has not started, and goes as soon as both are so; short modules never wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

from tests.lanes import Lanes, LaneScheduling, record_long_modules

LONG = ["tests/e2e/test_longest.py", "tests/e2e/test_long.py", "tests/e2e/test_less_long.py"]


def _enter_in_background(lanes: Lanes, module: str) -> tuple[threading.Thread, threading.Event]:
    entered = threading.Event()
    thread = threading.Thread(target=lambda: (lanes.enter(module), entered.set()))
    thread.start()
    return thread, entered


def test_a_long_module_waits_for_a_lane_and_short_ones_never_do(tmp_path: Path) -> None:
    first, second = Lanes(tmp_path, 1, LONG), Lanes(tmp_path, 1, LONG)
    first.enter(LONG[0])
    second.enter("tests/unit/test_short.py")  # returns at once, the lane being held

    waiter, entered = _enter_in_background(second, LONG[1])
    assert not entered.wait(1.5)  # the only lane is the first worker's
    first.enter(LONG[0])  # its next test, same module: keeps it
    assert not entered.wait(1.5)
    first.enter("tests/unit/test_short.py")  # its next module gives it back
    assert entered.wait(5)
    waiter.join()
    started = time.monotonic()
    first.enter("tests/unit/test_other_short.py")
    assert time.monotonic() - started < 0.5


def test_a_long_module_waits_for_every_longer_one_to_start(tmp_path: Path) -> None:
    """The worker of the third longest module comes up first: a lane is free, yet it waits for the
    two longer ones, which take the two lanes as their workers come up."""
    early, late = Lanes(tmp_path, 2, LONG), Lanes(tmp_path, 2, LONG)
    waiter, entered = _enter_in_background(early, LONG[2])
    assert not entered.wait(1.5)
    late.enter(LONG[0])
    assert not entered.wait(1.5)  # the second longest has not started
    other = Lanes(tmp_path, 2, LONG)
    other.enter(LONG[1])  # takes the second lane at once
    assert not entered.wait(1.5)  # both lanes held
    late.enter("tests/unit/test_short.py")
    assert entered.wait(5)
    waiter.join()


class Worker:
    """What pytest-xdist's scheduler uses of a worker: its id, the test indexes it is sent, its
    shutdown."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent += indexes

    def shutdown(self) -> None:
        self.shutting_down = True


def test_a_long_module_is_handed_out_only_while_a_lane_is_free(tmp_path: Path) -> None:
    """Three workers, two lanes: the third worker gets short modules, not the third long one,
    until a long module ends; then the next worker to ask gets it."""
    short = [f"tests/unit/test_{name}.py" for name in "abcdef"]
    collection = [f"{module}::test" for module in LONG] + [
        f"{module}::test_{n}" for module in short for n in range(3)
    ]
    record_long_modules(tmp_path, set(LONG))
    config = SimpleNamespace(
        getvalue=lambda name: ["3*popen"] if name == "tx" else None,
        option=SimpleNamespace(loadscopereorder=False),
    )
    scheduler = LaneScheduling(config, None, tmp_path, lanes=2)  # type: ignore[arg-type]
    workers = [Worker(f"gw{n}") for n in range(3)]
    for worker in workers:
        scheduler.add_node(worker)  # type: ignore[arg-type]
        scheduler.add_node_collection(worker, collection)  # type: ignore[arg-type]
    scheduler.schedule()

    def modules(worker: Worker) -> list[str]:
        return list(dict.fromkeys(collection[i].split("::")[0] for i in worker.sent))

    assert modules(workers[0])[0] == LONG[0] and modules(workers[1])[0] == LONG[1]
    assert LONG[2] not in {m for worker in workers for m in modules(worker)}
    done = list(workers[2].sent)
    for index in done:  # the third worker's first short module ends
        scheduler.mark_test_complete(workers[2], index)  # type: ignore[arg-type]
    assert LONG[2] not in modules(workers[2])  # it got another short one: no lane is free
    scheduler.mark_test_complete(workers[0], 0)  # type: ignore[arg-type]  # the longest ends
    for index in [i for i in workers[2].sent if i not in done]:  # its next short module ends
        scheduler.mark_test_complete(workers[2], index)  # type: ignore[arg-type]
    assert LONG[2] in modules(workers[2])  # and the lane freed is its

"""The suite's lanes (tests/lanes.py): a long module waits while every lane is held, or while a
longer one has not started, and goes as soon as both are so; short modules never wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.lanes import Lanes

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

"""The suite's lanes (tests/lanes.py): a long module waits while every lane is held, and gets one
as soon as a holder moves on to another module; short modules never wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.lanes import Lanes


def test_a_long_module_waits_for_a_lane_and_short_ones_never_do(tmp_path: Path) -> None:
    first, second = Lanes(tmp_path, 1), Lanes(tmp_path, 1)
    first.enter("tests/e2e/test_long.py", long=True)
    second.enter("tests/unit/test_short.py", long=False)  # returns at once, the lane being held

    entered = threading.Event()
    waiter = threading.Thread(
        target=lambda: (second.enter("tests/e2e/test_other.py", long=True), entered.set())
    )
    waiter.start()
    assert not entered.wait(1.5)  # the only lane is the first worker's
    first.enter("tests/e2e/test_long.py", long=True)  # its next test, same module: keeps it
    assert not entered.wait(1.5)
    first.enter("tests/unit/test_short.py", long=False)  # its next module gives it back
    assert entered.wait(5)
    waiter.join()
    started = time.monotonic()
    first.enter("tests/unit/test_other_short.py", long=False)
    assert time.monotonic() - started < 0.5

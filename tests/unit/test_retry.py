from __future__ import annotations

import pytest

from governance.errors import PermanentError, TransientError
from governance.retry import Backoff, with_retries


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_transient_failures_back_off_exponentially_then_succeed() -> None:
    waits: list[float] = []
    action = Flaky([TransientError("locked"), TransientError("locked"), TransientError("locked")])
    result = with_retries(
        action,
        what="x",
        backoff=Backoff(attempts=4, base_delay=1, max_delay=3, jitter=0),
        sleep=waits.append,
    )
    assert result == "ok" and action.calls == 4
    assert waits == [1, 2, 3]  # doubled, then capped


def test_gives_up_with_what_and_how_many_attempts() -> None:
    action = Flaky([TransientError("503 from registry")] * 3)
    with pytest.raises(TransientError, match=r"^push failed after 3 attempts: 503 from registry$"):
        with_retries(
            action, what="push", backoff=Backoff(attempts=3, base_delay=0), sleep=lambda _: None
        )


def test_permanent_failures_are_not_retried() -> None:
    action = Flaky([PermanentError("lockfile mismatch")])
    with pytest.raises(PermanentError):
        with_retries(action, what="x", sleep=lambda _: None)
    assert action.calls == 1


def test_jitter_stays_within_bounds() -> None:
    backoff = Backoff(base_delay=1, jitter=0.1)
    assert all(0.9 <= backoff.delay(1) <= 1.1 for _ in range(100))

"""Retry transient failures with exponential backoff; fail permanent ones at once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from governance.errors import TransientError
from governance.redaction import redact

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """Delay after failed attempt number `attempt` (1-based): base * 2^(attempt-1), capped."""
        raw = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(raw * (1 + random.uniform(-self.jitter, self.jitter)))


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    backoff: Backoff = Backoff(),
    is_transient: Callable[[BaseException], bool] = lambda exc: isinstance(exc, TransientError),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`; on a transient failure wait and try again, up to `backoff.attempts` times.

    The final transient failure is raised as TransientError naming `what` and the attempt count;
    anything else propagates unchanged on the first occurrence.
    """
    for attempt in range(1, backoff.attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == backoff.attempts:
                raise TransientError(
                    f"{what} failed after {attempt} attempts: {_one_line(exc)}"
                ) from None  # the cause may quote a credential; the message is redacted
            wait = backoff.delay(attempt)
            log.warning(
                "%s failed (attempt %d/%d), retrying in %.1fs: %s",
                redact(what),
                attempt,
                backoff.attempts,
                wait,
                redact(_one_line(exc)),
            )
            sleep(wait)
    raise AssertionError("unreachable")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

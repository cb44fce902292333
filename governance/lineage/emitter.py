"""Emit without ever failing or stalling the caller.

`emit` writes to the outbox (a local sqlite insert) and then tries to deliver what is pending, unless
a delivery failed within the last `backoff_s` seconds: with the backend down, an event costs one
insert, not a timeout. Whatever stays pending is delivered, in order, by the next successful emit,
`governance lineage flush` or the outbox sensor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from governance.lineage.outbox import FlushResult, Outbox
from governance.lineage.transport import Transport

log = logging.getLogger(__name__)


class LineageEmitter:
    def __init__(self, outbox: Outbox, transport: Transport, backoff_s: float = 30.0) -> None:
        self.outbox = outbox
        self.transport = transport
        self.backoff_s = backoff_s
        self._failed_at: float | None = None

    def emit(self, event: Mapping[str, Any]) -> None:
        try:
            self.outbox.append(event)
        except Exception as exc:  # lineage must never fail the run it describes
            log.warning("lineage event not recorded: %s", exc)
            return
        if self._failed_at is not None and time.monotonic() - self._failed_at < self.backoff_s:
            return
        self.flush()

    def flush(self) -> FlushResult:
        try:
            result = self.outbox.flush(self.transport)
        except Exception as exc:
            log.warning("lineage delivery to %s failed: %s", self.transport.describe(), exc)
            self._failed_at = time.monotonic()
            return FlushResult(0, -1, str(exc))
        if result.error:
            log.warning(
                "lineage delivery to %s deferred (%d pending): %s",
                self.transport.describe(),
                result.pending,
                result.error,
            )
            self._failed_at = time.monotonic()
        else:
            self._failed_at = None
        return result

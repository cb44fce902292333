"""Emit without ever failing or stalling the caller.

`emit` writes to the outbox (a local sqlite insert) and returns; delivery runs on a background
thread, one at a time per emitter, and skips a round while another process flushes or while a
recent failure backs it off. With the backend slow, black-holed or down, an event costs one insert.
What stays pending is delivered, in order, by the next round, `governance lineage flush` or the
outbox sensor. `drain` gives the last round a bounded moment before a step process exits.
"""

from __future__ import annotations

import logging
import threading
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
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._again = False

    def emit(self, event: Mapping[str, Any]) -> None:
        try:
            self.outbox.append(event)
        except Exception as exc:  # lineage must never fail the run it describes
            log.warning("lineage event not recorded: %s", exc)
            return
        if self._failed_at is not None and time.monotonic() - self._failed_at < self.backoff_s:
            return
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                self._again = True  # the running round picks this event up
                return
            self._worker = threading.Thread(target=self._deliver, name="lineage-delivery", daemon=True)
            self._worker.start()

    def drain(self, timeout_s: float) -> None:
        """Wait at most `timeout_s` for the background delivery round to end."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)

    def _deliver(self) -> None:
        while True:
            self._again = False
            result = self.flush(lock_timeout_s=0)
            with self._lock:
                if result.error or not self._again:
                    return

    def flush(self, lock_timeout_s: float | None = None) -> FlushResult:
        """One delivery round now (the sensor and the CLI call this directly)."""
        from governance.redaction import redact

        try:
            if lock_timeout_s is None:
                result = self.outbox.flush(self.transport)
            else:
                result = self.outbox.flush(self.transport, lock_timeout_s=lock_timeout_s)
        except Exception as exc:
            log.warning("lineage delivery to %s failed: %s", self.transport.describe(), redact(str(exc)))
            self._failed_at = time.monotonic()
            return FlushResult(0, -1, redact(str(exc)))
        if result.dead_lettered:
            log.warning(
                "lineage backend %s rejected %d event(s); see `governance lineage dead-letters`",
                self.transport.describe(),
                result.dead_lettered,
            )
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

"""Lineage emission overhead (backend up and down), audit appends/s with 4 writers, verify over 100k.

Run: uv run python -m tests.bench.bench_lineage_audit
Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from governance.audit.chain import Entry, verify
from governance.audit.store import SqliteAuditLog
from governance.lineage.emitter import LineageEmitter
from governance.lineage.events import JobRef, new_run_id, run_event
from governance.lineage.outbox import SqliteOutbox
from governance.lineage.transport import HttpTransport
from tests.services import LineageBackend, free_port

EVENTS = 300
WRITERS, APPENDS = 4, 2500
VERIFY_RECORDS = 100_000


def emission_ms(url: str, root: Path) -> list[float]:
    emitter = LineageEmitter(
        SqliteOutbox(root / "outbox.db"), HttpTransport(url, timeout_s=2), backoff_s=30
    )
    events = [run_event("START", JobRef(f"job-{n}"), new_run_id()) for n in range(EVENTS)]
    timings = []
    for event in events:
        started = time.perf_counter()
        emitter.emit(event)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _append(path: str) -> None:
    log = SqliteAuditLog(Path(path))
    for i in range(APPENDS):
        log.append(Entry("bench", "bench.append", "subject", {"i": str(i)}, "ok"))


def main() -> None:
    print(
        f"({EVENTS} events per emission run; the down run's first attempt is refused, then backed off)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-lineage-") as tmp:
        measure(Path(tmp))


def measure(root: Path) -> None:
    backend = LineageBackend()
    try:
        up = emission_ms(backend.url, root / "up")
    finally:
        backend.close()
    down = emission_ms(f"http://127.0.0.1:{free_port()}", root / "down")
    for label, timings in (("backend up", up), ("backend down", down)):
        p99 = statistics.quantiles(timings, n=100)[98]
        median = statistics.median(timings)
        print(
            f"emit, {label:12}: median {median:6.2f} ms, p99 {p99:6.2f} ms, max {max(timings):7.1f} ms"
        )

    audit = root / "audit.db"
    SqliteAuditLog(audit)
    started = time.perf_counter()
    with ProcessPoolExecutor(WRITERS) as pool:
        list(pool.map(_append, [str(audit)] * WRITERS))
    elapsed = time.perf_counter() - started
    total = WRITERS * APPENDS
    rate = total / elapsed
    print(f"audit appends, {WRITERS} writers: {rate:8.0f} /s ({total} records, {elapsed:.2f} s)")

    log = SqliteAuditLog(root / "verify.db")
    for i in range(VERIFY_RECORDS):
        log.append(Entry("bench", "bench.append", "subject", {"i": str(i)}, "ok"))
    started = time.perf_counter()
    records = list(log.records())
    broken = verify(records)
    seconds = time.perf_counter() - started
    print(f"audit verify over {len(records)} records: {seconds:.2f} s (intact: {broken is None})")


if __name__ == "__main__":
    main()

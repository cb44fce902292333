"""Preflight before a build: are the package and image registries reachable, and does the machine
have the disk, memory and headroom? Each verdict comes within its timeout; nothing hangs.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from governance.redaction import redact_url

GIB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    required: bool = True  # a failing check that is not required is reported, not fatal
    transient: bool = False  # a failure that may clear by itself (network, load), so worth a retry

    @property
    def blocking(self) -> bool:
        return self.required and not self.ok

    @property
    def status(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.required else "warn")

    def __str__(self) -> str:
        return f"{self.status:4}  {self.name}: {self.detail} ({self.seconds * 1000:.0f} ms)"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status}


def registry_reachable(url: str, timeout_s: float = 5.0, *, required: bool = True) -> Check:
    """A GET answered below 500 means reachable (an OCI registry's /v2/ may answer 401)."""
    return replace(_registry(url, timeout_s), required=required, transient=True)


def _registry(url: str, timeout_s: float) -> Check:
    name = f"registry {redact_url(url)}"
    started = time.monotonic()
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method="GET"), timeout=timeout_s
        ) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(name, False, f"unreachable: {reason}", time.monotonic() - started)
    elapsed = time.monotonic() - started
    if status >= 500:
        return Check(name, False, f"answered {status}: the registry is failing, retry later", elapsed)
    return Check(name, True, f"answered {status}", elapsed)


def disk_free(path: Path, minimum_gib: float) -> Check:
    free = shutil.disk_usage(path).free / GIB
    return Check(
        f"disk at {path}", free >= minimum_gib, f"{free:.1f} GiB free, need {minimum_gib:.1f} GiB"
    )


def memory_available(minimum_gib: float, meminfo: Path = Path("/proc/meminfo")) -> Check:
    fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
    available = int(fields["MemAvailable"].strip().split()[0]) * 1024 / GIB
    return Check(
        "memory", available >= minimum_gib, f"{available:.1f} GiB available, need {minimum_gib:.1f} GiB"
    )


def load_headroom(maximum_per_cpu: float) -> Check:
    per_cpu = os.getloadavg()[0] / (os.cpu_count() or 1)
    return Check(
        "load",
        per_cpu <= maximum_per_cpu,
        f"1-minute load {per_cpu:.2f} per CPU, limit {maximum_per_cpu:.2f}",
        transient=True,
    )


def run_preflight(
    registries: Sequence[str],
    workdir: Path,
    *,
    min_disk_gib: float,
    min_memory_gib: float,
    max_load_per_cpu: float,
    timeout_s: float = 5.0,
    optional: Collection[str] = (),
) -> list[Check]:
    """`optional` registries are checked and reported but not needed this time (say, a cached fetch)."""
    checks = [registry_reachable(url, timeout_s, required=url not in optional) for url in registries]
    return [
        *checks,
        disk_free(workdir, min_disk_gib),
        memory_available(min_memory_gib),
        load_headroom(max_load_per_cpu),
    ]

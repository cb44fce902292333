"""HTTP probes with a hard timeout: image smoke tests and release targets ask the same way."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_BODY = 1 << 20  # a page is read whole (its answer may be at the end), within a bound


@dataclass(frozen=True)
class Probe:
    ok: bool
    status: int | None  # None when nothing answered
    detail: str
    body: Any = None
    seconds: float = 0.0


def probe_url(url: str, body: Any = None, timeout_s: float = 5.0) -> Probe:
    started = time.monotonic()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = _json(response.read(MAX_BODY))
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return Probe(
            False,
            exc.code,
            f"{url} answered {exc.code}",
            _json(exc.read(MAX_BODY)),
            time.monotonic() - started,
        )
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Probe(False, None, f"{url}: {reason}", None, time.monotonic() - started)
    return Probe(status == 200, status, f"{url} answered {status}", payload, time.monotonic() - started)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")

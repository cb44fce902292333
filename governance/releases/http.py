"""Small HTTP probes with a hard timeout, shared by the targets."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from governance.releases.target import Probe


def probe_url(url: str, body: Any = None, timeout_s: float = 5.0) -> Probe:
    started = time.monotonic()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = _json(response.read())
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return Probe(
            False, exc.code, f"{url} answered {exc.code}", _json(exc.read()), time.monotonic() - started
        )
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Probe(False, None, f"{url}: {reason}", None, time.monotonic() - started)
    return Probe(status == 200, status, f"{url} answered {status}", payload, time.monotonic() - started)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200]

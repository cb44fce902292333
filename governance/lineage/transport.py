"""Where delivered events go: a JSON-lines file (the default) or an HTTP endpoint (Marquez API).

Configured the standard OpenLineage way: `OPENLINEAGE_URL` (+ `OPENLINEAGE_ENDPOINT`,
`OPENLINEAGE_API_KEY`), else an `openlineage.yml` (`OPENLINEAGE_CONFIG`, the working directory,
`~/.openlineage/`), else the file under the home. The HTTP send is ours, not openlineage-python's
synchronous transport, so each attempt is bounded by a short timeout and never retried inline:
the outbox retries later (the shape of OpenLineage PR #557).
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from governance.deadlines import post_by_deadline
from governance.errors import ConfigError, PermanentError, TransientError
from governance.redaction import redact_url


class RejectedEvent(PermanentError):
    """The backend refused this event (a 4xx): sending it again cannot succeed."""


class Transport(Protocol):
    def send(self, event: Mapping[str, Any]) -> None:
        """Deliver one event; raise TransientError (try later) or RejectedEvent (never again)."""

    def describe(self) -> str: ...


class FileTransport:
    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, event: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(event, sort_keys=True) + "\n")

    def describe(self) -> str:
        return f"file {self.path}"


class HttpTransport:
    """POST each event with a deadline for the whole request (connect, send, every byte of the
    answer): a socket timeout alone is per read, so a backend that trickles bytes would hold the
    sender for minutes."""

    def __init__(
        self,
        url: str,
        endpoint: str = "api/v1/lineage",
        api_key: str | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self._url = f"{url.rstrip('/')}/{endpoint.lstrip('/')}"
        self.target = redact_url(self._url)
        try:
            parts = urlsplit(self._url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # an unclosed [IPv6] bracket, a port out of range
            valid = False
        if not valid:
            raise ConfigError(f"lineage backend URL must be http(s)://HOST/…, got {self.target!r}")
        self._api_key = api_key
        self.timeout_s = timeout_s

    def send(self, event: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            status = post_by_deadline(self._url, json.dumps(event).encode(), headers, self.timeout_s)
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"lineage backend {self.target} unreachable: {exc}") from None
        if status in _RETRYABLE or status >= 500:
            raise TransientError(f"lineage backend {self.target} answered {status}")
        if status >= 400:
            raise RejectedEvent(f"lineage backend {self.target} rejected the event with {status}")

    def describe(self) -> str:
        return f"http {self.target}"  # never the API key


_RETRYABLE = {408, 425, 429}


def transport_from_environment(default_file: Path, environ: Mapping[str, str] = os.environ) -> Transport:
    url = environ.get("OPENLINEAGE_URL")
    if url:
        return HttpTransport(
            url,
            environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
            environ.get("OPENLINEAGE_API_KEY"),
        )
    config = _config_file(environ)
    if config is not None:
        return _from_config(config, default_file)
    return FileTransport(default_file)


def _config_file(environ: Mapping[str, str]) -> Path | None:
    candidates = [
        environ.get("OPENLINEAGE_CONFIG"),
        "openlineage.yml",
        str(Path.home() / ".openlineage" / "openlineage.yml"),
    ]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def _from_config(path: Path, default_file: Path) -> Transport:
    from governance.yamlsafe import load_yaml

    config = load_yaml(path, "OpenLineage config")
    transport = config.get("transport") if isinstance(config, dict) else None
    if not isinstance(transport, dict):
        raise ConfigError(f"{path}: needs a `transport` mapping (type: http or file)")
    kind = transport.get("type")
    if kind == "http":
        auth = transport.get("auth") or {}
        url, timeout = transport.get("url"), transport.get("timeout", 2.0)
        if not isinstance(url, str) or not isinstance(auth, dict):
            raise ConfigError(f"{path}: transport.url must be a URL and transport.auth a mapping")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 60:
            raise ConfigError(f"{path}: transport.timeout must be a number of seconds in (0, 60]")
        endpoint = transport.get("endpoint", "api/v1/lineage")
        try:
            return HttpTransport(url, str(endpoint), auth.get("apiKey"), float(timeout))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if kind == "file":
        log_file = transport.get("log_file_path", default_file)
        if not isinstance(log_file, str | Path):
            raise ConfigError(f"{path}: transport.log_file_path must be a path")
        return FileTransport(Path(log_file))
    raise ConfigError(f"{path}: transport.type must be `http` or `file`, got {kind!r}")

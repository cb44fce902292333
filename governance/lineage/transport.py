"""Where delivered events go: a JSON-lines file (the default) or an HTTP endpoint (Marquez API).

Configured the standard OpenLineage way: `OPENLINEAGE_URL` (+ `OPENLINEAGE_ENDPOINT`,
`OPENLINEAGE_API_KEY`), else an `openlineage.yml` (`OPENLINEAGE_CONFIG`, the working directory,
`~/.openlineage/`), else the file under the home. The HTTP send is ours, not openlineage-python's
synchronous transport, so each attempt is bounded by a short timeout and never retried inline:
the outbox retries later (the shape of OpenLineage PR #557).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from governance.errors import ConfigError, TransientError
from governance.redaction import redact_url


class Transport(Protocol):
    def send(self, event: Mapping[str, Any]) -> None:
        """Deliver one event or raise TransientError."""

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
    def __init__(
        self,
        url: str,
        endpoint: str = "api/v1/lineage",
        api_key: str | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self.target = redact_url(f"{url.rstrip('/')}/{endpoint.lstrip('/')}")
        self._url = f"{url.rstrip('/')}/{endpoint.lstrip('/')}"
        self._api_key = api_key
        self.timeout_s = timeout_s

    def send(self, event: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self._url, json.dumps(event).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise TransientError(f"lineage backend {self.target} answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientError(f"lineage backend {self.target} unreachable: {reason}") from None

    def describe(self) -> str:
        return f"http {self.target}"  # never the API key


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
    try:
        transport = (yaml.safe_load(path.read_text()) or {}).get("transport", {})
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable OpenLineage config: {exc}") from None
    kind = transport.get("type")
    if kind == "http":
        auth = transport.get("auth") or {}
        return HttpTransport(
            transport["url"],
            transport.get("endpoint", "api/v1/lineage"),
            auth.get("apiKey"),
            float(transport.get("timeout", 2.0)),
        )
    if kind == "file":
        return FileTransport(Path(transport.get("log_file_path", default_file)))
    raise ConfigError(f"{path}: transport.type must be `http` or `file`, got {kind!r}")

"""Keep credentials out of every message, log line and stored error.

Three kinds of secret reach text: the user-info of a URL (`postgresql://app:pw@db`), a credential in
a URL's query or a `key=value` pair (`?api_key=…`, `password=…` in a libpq DSN, `Bearer …`), and the
value of a secret environment variable quoted by a library in its own words. `redact` removes all
three; `GovernanceError` applies it to every message it carries, so no caller has to remember.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SENSITIVE = (
    r"(?:pass(?:word|wd)?|secret|token|api[_-]?key|apikey|access[_-]?key|auth|signature|sig"
    r"|credential|private[_-]?key|session)"
)
_SENSITIVE_NAME = re.compile(rf"(?:^|[_\-.]){_SENSITIVE}(?:$|[_\-.])|^{_SENSITIVE}", re.IGNORECASE)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+")
_PAIR_NAME = r"(?:pass(?:word|wd)|secret|token|api[_-]?key|apikey|access[_-]?key)"
_PAIR = re.compile(rf"(\b[\w.\-]*{_PAIR_NAME}[\w.\-]*\s*[=:]\s*)(['\"]?)([^\s'\"&,;]+)\2", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)
# Environment variables whose values are secrets, by name (OPENLINEAGE_API_KEY, …_TOKEN, …).
_SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|WEBHOOK|CREDENTIAL)", re.I)
_URL_ENV = re.compile(r"(_URL|_URI|_DSN)$", re.IGNORECASE)
_MIN_SECRET_LENGTH = 6


def is_sensitive_name(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name))


def redact_url(url: str) -> str:
    """The URL without user-info and with sensitive query parameters masked."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _URL.sub(MASK, url)
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{parts.hostname or ''}" + (f":{port}" if port else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_sensitive_name(key) for key, _ in pairs):
            query = urlencode([(k, MASK if is_sensitive_name(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # untouched: urlunsplit would drop the empty authority of `sqlite:///…`
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def secret_values(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Values that must never be shown: secret-named variables and passwords inside URL variables."""
    found: set[str] = set()
    for name, value in environ.items():
        if _SECRET_ENV.search(name) and len(value) >= _MIN_SECRET_LENGTH:
            found.add(value)
        elif _URL_ENV.search(name) and "@" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password and len(password) >= _MIN_SECRET_LENGTH:
                found.add(password)
    return sorted(found, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """`text` with every credential masked (URLs, key=value pairs, bearer tokens, secret values)."""
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    text = _BEARER.sub(lambda match: f"{match.group(1)} {MASK}", text)
    return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)


class RedactingFilter(logging.Filter):
    """Redacts every record a handler emits, whichever library logged it (MLflow's HTTP client
    quotes its tracking URI, credentials included, in its own warnings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def install_log_redaction() -> None:
    """Put the filter on every handler of the root logger (adding a stderr one if there is none)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

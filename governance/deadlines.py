"""An HTTP POST bounded by a deadline for the whole request (connect, send, every byte of the
answer). A socket timeout alone is per read: a peer that trickles bytes, or a hanging webhook, would
hold the sender for minutes."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit


def post_by_deadline(url: str, body: bytes, headers: Mapping[str, str], deadline_s: float) -> int:
    """The answer's status, or OSError once `deadline_s` has passed, whatever the peer does."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "", parts.port, timeout=deadline_s)
    # The watchdog closes the socket at the deadline, which ends any read that is still waiting.
    watchdog = threading.Timer(deadline_s, _shut, [connection])
    watchdog.daemon = True
    started = time.monotonic()
    watchdog.start()
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path or "/", body, dict(headers))
        response = connection.getresponse()
        response.read()
        return int(response.status)
    except (OSError, http.client.HTTPException):
        if time.monotonic() - started >= deadline_s:
            raise TimeoutError(f"no complete answer within {deadline_s:g} s") from None
        raise
    finally:
        watchdog.cancel()
        connection.close()


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return

"""Slack alerts through an incoming webhook. An alert never fails or stalls what it reports on:
delivery has a deadline for the whole request, and a failure is logged, not raised. The webhook URL
is a secret (`GOVERNANCE_SLACK_WEBHOOK_URL`): it is never logged, only its host."""

from __future__ import annotations

import http.client
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from governance.deadlines import post_by_deadline

WEBHOOK_ENV = "GOVERNANCE_SLACK_WEBHOOK_URL"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackNotifier:
    webhook_url: str | None
    timeout_s: float = 3.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SlackNotifier:
        return cls(environ.get(WEBHOOK_ENV) or None)

    def send(self, title: str, lines: list[str], *, ok: bool) -> bool:
        """Post one message; returns whether Slack accepted it (False when not configured)."""
        if not self.webhook_url:
            return False
        icon = ":white_check_mark:" if ok else ":rotating_light:"
        text = f"{icon} *{title}*\n" + "\n".join(f"• {line}" for line in lines)
        body = json.dumps({"text": text}).encode()
        host = urlsplit(self.webhook_url).hostname  # the path is the secret: never log it
        try:
            status = post_by_deadline(
                self.webhook_url, body, {"Content-Type": "application/json"}, self.timeout_s
            )
        except (OSError, http.client.HTTPException) as exc:
            log.warning("Slack alert to %s not delivered: %s", host, type(exc).__name__)
            return False
        if not 200 <= status < 300:
            log.warning("Slack alert to %s not delivered: HTTP %s", host, status)
        return 200 <= status < 300

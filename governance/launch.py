"""Launching a materialization on a Dagster deployment through its GraphQL API, as the UI does, so a
deployment from CI goes through the same gates, approvals and audit records as one from the UI.
Plain HTTP: the library never imports Dagster.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from governance.errors import PermanentError, TransientError
from governance.redaction import redact_url

TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}"""
_STATUS = """
query Status($id: ID!) {
  runOrError(runId: $id) { __typename ... on Run { status } ... on Error { message } }
}"""


class DagsterApi:
    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def run_url(self, run_id: str) -> str:
        return f"{self.base_url}/runs/{run_id}"

    def query(self, text: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables}).encode()
        where = redact_url(self.base_url)
        try:
            request = urllib.request.Request(
                f"{self.base_url}/graphql", body, {"Content-Type": "application/json"}
            )
        except ValueError as exc:
            raise PermanentError(f"{where} is not a Dagster webserver URL ({exc})") from None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            error = TransientError if exc.code >= 500 else PermanentError
            raise error(f"Dagster at {where} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientError(f"Dagster at {where} is unreachable: {reason}") from None
        except ValueError as exc:  # the answer is not JSON, or the URL is not one urllib can use
            raise PermanentError(f"Dagster at {where}: {exc}") from None
        if payload.get("errors"):
            raise PermanentError(f"Dagster at {where}: {payload['errors'][0].get('message')}")
        return dict(payload["data"])

    def launch(self, location: str, asset_keys: Sequence[str], tags: Mapping[str, str]) -> str:
        """The run id of a new run materializing `asset_keys` (and their checks)."""
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": key.split("/")} for key in asset_keys],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in sorted(tags.items())]},
        }
        answer = self.query(_LAUNCH, params=params)["launchRun"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise PermanentError(
                f"Dagster refused the launch ({answer['__typename']}): {answer.get('message', '')}"
            )
        return str(answer["run"]["runId"])

    def wait(
        self,
        run_id: str,
        timeout_s: float,
        on_status: Callable[[str], None] = lambda status: None,
        poll_s: float = 2.0,
    ) -> str:
        """The run's terminal status; every change of status is reported as it happens."""
        deadline = time.monotonic() + timeout_s
        seen = ""
        while True:
            answer = self.query(_STATUS, id=run_id)["runOrError"]
            if answer["__typename"] != "Run":
                raise PermanentError(f"run {run_id}: {answer.get('message', answer['__typename'])}")
            status = str(answer["status"])
            if status != seen:
                on_status(status)
                seen = status
            if status in TERMINAL:
                return status
            if time.monotonic() > deadline:
                raise TransientError(
                    f"run {run_id} is still {status} after {timeout_s:.0f} s: {self.run_url(run_id)}"
                )
            time.sleep(poll_s)

from __future__ import annotations

import pytest

from governance.redaction import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@db:5432/audit", "postgresql://***@db:5432/audit"),
        ("http://token@mlflow.internal/", "http://***@mlflow.internal/"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_urls_in_messages_lose_their_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown

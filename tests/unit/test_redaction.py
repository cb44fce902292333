from __future__ import annotations

import pytest

from governance.redaction import redact, redact_url, secret_values


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


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET http://h:5000/api?api_key=k3y&x=1 failed", "GET http://h:5000/api?api_key=***&x=1 failed"),
        ("to https://h/x?sig=abc&token=def", "to https://h/x?sig=***&token=***"),
        ("host=db password=hunter22 user=app", "host=db password=*** user=app"),
        ("Authorization: Bearer abcdef123456", "Authorization: Bearer ***"),
        (
            "MLflow at sqlite:////tmp/h/mlflow.db?timeout=30 failed",
            "MLflow at sqlite:////tmp/h/mlflow.db?timeout=30 failed",
        ),
        (
            "request to http://bob:pw@127.0.0.1:1/api failed",
            "request to http://***@127.0.0.1:1/api failed",
        ),
        ("the literal value s3cr3t-value leaked", "the literal value *** leaked"),
    ],
)
def test_every_form_of_credential_is_masked(text: str, shown: str) -> None:
    assert redact(text, {"OPENLINEAGE_API_KEY": "s3cr3t-value", "HOME": "/root"}) == shown


def test_passwords_inside_url_variables_are_secrets_too() -> None:
    environ = {"GOVERNANCE_AUDIT_URL": "postgresql://app:pa55w0rd@db/audit", "PATH": "/usr/bin"}
    assert secret_values(environ) == ["pa55w0rd"]
    assert redact("connect failed: password pa55w0rd rejected", environ) == (
        "connect failed: password *** rejected"
    )


def test_errors_carry_redacted_messages() -> None:
    from governance.errors import TransientError

    assert str(TransientError("MLflow at http://u:pw@h/ failed")) == "MLflow at http://***@h/ failed"

"""No secret from the environment lands in an event, an audit record, metadata, a log line or a file."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from pipelines.definitions import build_definitions
from pipelines.resources import AuditResource, LineageResource
from tests.conftest import repository_estate_data, run_governance, write_estate
from tests.services import LineageBackend, free_port

SECRET = "s3cr3t-9f8e7d6c5b4a"


def test_planted_secrets_appear_nowhere(
    image_lab: tuple[str, Path],
    penguins_csv: Path,
    home: Path,
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS audit_log")
    audit_url = postgres_url.replace(
        "postgres@", f"postgres:{SECRET}@"
    )  # trust auth: any password works
    monkeypatch.setenv("GOVERNANCE_AUDIT_URL", audit_url)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
    backend, slack = LineageBackend(), LineageBackend()
    # The webhook URL's path is the secret, as with Slack's incoming webhooks.
    monkeypatch.setenv("GOVERNANCE_SLACK_WEBHOOK_URL", f"{slack.url}/services/T000/B000/{SECRET}")
    data = repository_estate_data()
    data["datasets"]["penguins"]["source"] = {"path": str(penguins_csv)}
    ports = {"service_port": free_port(), "blue_port": free_port(), "green_port": free_port()}
    data["releases"]["penguin_service"]["local"] = ports
    del data["releases"]["penguin_web"]  # one release is enough to carry the secrets
    estate = write_estate(data, tmp_path / "estate")
    try:
        defs = build_definitions(estate)
        resources = {
            **defs.resources,
            "lineage": LineageResource(url=backend.url, api_key=dg.EnvVar("OPENLINEAGE_API_KEY")),
            "audit": AuditResource(url=dg.EnvVar("GOVERNANCE_AUDIT_URL")),
        }
        (home / "dagster").mkdir(parents=True, exist_ok=True)
        with dg.DagsterInstance.local_temp(tempdir=str(home / "dagster")) as instance:
            result = dg.materialize(defs.assets, instance=instance, resources=resources)
            assert result.success
            records = instance.get_records_for_run(result.run_id).records
            dagster_events = "\n".join(str(r.event_log_entry.to_json()) for r in records)
    finally:
        backend.close()
        slack.close()
        run_governance("--estate", str(estate.path), "release", "down", "--all")

    # The secrets were really in use: the backend got the key, the audit rows went to Postgres.
    assert backend.received and all(
        h.get("Authorization") == f"Bearer {SECRET}" for h in backend.headers
    )
    with psycopg.connect(postgres_url) as conn:
        audit_rows = json.dumps(
            conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall(), default=str
        )
    assert "dataset.published" in audit_rows and "model.gated" in audit_rows
    assert "release.promoted" in audit_rows and "image.built" in audit_rows
    # One promotion, one alert about it (a build slower than its history, on a loaded machine,
    # alerts too; every alert is searched for the secret below).
    (alert,) = [a for a in slack.received if "release penguin_service" in str(a["text"])]
    assert str(alert["text"]).startswith(":white_check_mark: *release penguin_service: promoted*")

    captured = capfd.readouterr()
    written = [p for p in home.rglob("*") if p.is_file()]
    assert len(written) > 20
    places = {
        "lineage events sent": json.dumps(backend.received),
        "slack alerts sent": json.dumps(slack.received),
        "audit records": audit_rows,
        "dagster event log and metadata": dagster_events,
        "stdout/stderr": captured.out + captured.err,
        "log records": caplog.text,
    }
    places.update({str(p): p.read_bytes().decode("latin-1") for p in written})
    leaks = [where for where, text in places.items() if SECRET in text]
    assert leaks == []

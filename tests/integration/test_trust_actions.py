"""No action without its record, no secret in a message, one name per actor, one source of
settings, and a switch that is only done when it is done.

Each test drives the real part (DVC, MLflow's store, the sqlite and Postgres audit logs, nginx,
Dagster) with the failure planted as it happens in production.
"""

from __future__ import annotations

import http.server
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.audit.chain import Entry, verify
from governance.audit.store import AuditTrail, SqliteAuditLog
from governance.config import DatasetSpec
from governance.datasets.lifecycle import publish
from governance.datasets.versioning import DatasetStore
from governance.errors import AuditUnavailable, TransientError
from governance.home import GovernanceHome
from governance.releases import local
from governance.releases.local import LocalTarget, accepting_workers, listening_sockets
from tests.conftest import materialize_groups, repository_estate_data, run_governance, write_estate
from tests.services import free_port

SECRET = "pa55-w0rd-7e1l"


# 3. A governed action and its audit record succeed together or not at all.
def refuse_audit_writes(db: Path) -> None:
    """The audit database refuses every append from now on, as a full disk or a revoked grant
    would (root ignores file modes, so a read-only file proves nothing here)."""
    SqliteAuditLog(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )


def test_publishing_without_its_record_leaves_the_previous_version_current(
    home: Path, clean_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path
) -> None:
    gh = GovernanceHome(home)
    store = DatasetStore(gh.datasets_repo, str(gh.dvc_remote))
    trail = AuditTrail(SqliteAuditLog(gh.audit_db), "cli:test")
    first = publish(penguins_spec, clean_csv, store, gh.gx, trail).version
    published = store.workspace_file("penguins").read_bytes()
    smaller = tmp_path / "smaller.csv"
    smaller.write_text("\n".join(clean_csv.read_text().splitlines()[:320]) + "\n")

    class Broken:
        def append(self, entry: object) -> object:
            raise AuditUnavailable("audit log test cannot be written (disk I/O error)")

        def records(self, subject: str | None = None) -> Iterator[object]:
            return iter([])

    with pytest.raises(AuditUnavailable, match="publication undone"):
        publish(penguins_spec, smaller, store, gh.gx, AuditTrail(Broken(), "cli:test"))  # type: ignore[arg-type]
    assert store.current("penguins") == first
    assert [v.md5 for v in store.history("penguins")] == [first.md5]
    assert store.workspace_file("penguins").read_bytes() == published
    records = list(trail.log.records())
    assert [r.action for r in records] == ["dataset.published"]
    assert verify(records) is None


def test_alias_moves_are_undone_when_the_audit_log_cannot_be_written(home: Path) -> None:
    from governance.models.registry import ModelRegistry
    from governance.models.settings import mlflow_settings

    registry = ModelRegistry(mlflow_settings(GovernanceHome(home)))
    client = registry.client
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source="file:///nowhere", run_id=None)
    assert run_governance_models("promote", "1").returncode == 0
    refuse_audit_writes(GovernanceHome(home).audit_db)
    for args in (("promote", "2"), ("demote",)):
        result = run_governance_models(*args)
        assert result.returncode == 4, result.stderr
        assert "undone, because it could not be recorded" in result.stderr
        assert "Traceback" not in result.stderr
        assert registry.aliases("m") == {"champion": "1"}
    verified = run_governance("audit", "verify")
    assert verified.returncode == 0 and "1 records" in verified.stdout


def run_governance_models(*args: str) -> subprocess.CompletedProcess[str]:
    """`governance models ARGS` on the estate's classifier, registered as `m` here."""
    data = repository_estate_data()
    data["models"]["penguin_classifier"]["registered_name"] = "m"
    path = write_estate(data, Path(os.environ["GOVERNANCE_HOME"]).parent / "estate").path
    command, *rest = args
    return run_governance(
        "--estate", str(path), "models", command, "penguin_classifier", *rest,
        "--by", "alice", "--reason", "test",
    )  # fmt: skip


def test_an_append_the_database_refuses_writes_nothing_and_says_where(home: Path) -> None:

    db = GovernanceHome(home).audit_db
    refuse_audit_writes(db)
    with pytest.raises(AuditUnavailable, match=f"audit log {db} cannot be written"):
        SqliteAuditLog(db).append(Entry("cli:a", "x", "s", {}))
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM audit_log").fetchone() == (0,)


# 4. Secrets never reach a message.
def test_a_password_in_the_tracking_uri_is_never_printed(home: Path) -> None:
    port = free_port()
    result = run_governance(
        "models", "list", env={"MLFLOW_TRACKING_URI": f"http://bob:{SECRET}@127.0.0.1:{port}"}
    )
    assert result.returncode == 4, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert f"127.0.0.1:{port}" in result.stderr


def test_an_unclassified_error_reaches_dagster_redacted(
    home: Path, penguins_csv: Path, tmp_path: Path
) -> None:
    """A trainer (user code) fails with a library's own error that quotes a connection URL: the
    run fails, and neither the Dagster event log nor the lineage FAIL event holds the password."""
    import dagster as dg

    trainer = tmp_path / "leaky_train.py"
    trainer.write_text(
        "def train(features, labels, *, params, seed):\n"
        f"    raise RuntimeError('cannot reach postgresql://ml:{SECRET}@db:5432/features')\n"
    )
    data = repository_estate_data()
    data["datasets"]["penguins"]["source"] = {"path": str(penguins_csv)}
    data["models"]["penguin_classifier"]["trainer"] = f"{trainer}:train"
    estate = write_estate(data, tmp_path / "estate")
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_groups(estate, instance, "datasets", "models", raise_on_error=False)
        assert not result.success
        logged = "\n".join(
            r.event_log_entry.to_json() for r in instance.get_records_for_run(result.run_id).records
        )
    assert "cannot reach postgresql://***@db:5432/features" in logged
    assert SECRET not in logged
    events = run_governance("lineage", "events").stdout
    assert "RuntimeError" in events and SECRET not in events


# 5. Names are validated the same way everywhere.
@pytest.mark.parametrize("name", ["   ", "", "eve\nmallory  cli:admin  release.approved", "x\x1b[2Jy"])
def test_blank_or_forged_names_are_refused(home: Path, name: str) -> None:
    for args in (
        ("release", "approve", "penguin_service", "--by", name),
        ("release", "rollback", "penguin_service", "--by", name),
        ("models", "promote", "penguin_classifier", "1", "--by", name, "--reason", "r"),
    ):
        result = run_governance(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "--by must" in result.stderr and "Traceback" not in result.stderr
    assert not GovernanceHome(home).audit_db.exists() or run_governance("audit", "show").stdout == ""


# 9. A switch is done only when no worker of the previous configuration accepts connections.
class ColorServer:
    def __init__(self, color: str, port: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"color": color}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _service_only(tmp_path: Path) -> tuple[LocalTarget, dict[str, int]]:
    """A local target on free ports, of which only the service (nginx) is exercised: no container
    storage is needed for a switch."""
    ports = {"service_port": free_port(), "blue_port": free_port(), "green_port": free_port()}
    data = repository_estate_data()
    data["releases"]["penguin_service"]["local"] = ports
    spec = write_estate(data, tmp_path / "estate").release("penguin_service")
    target = LocalTarget(
        spec, tmp_path / "release", storage=None, model_dir=lambda c: tmp_path, upstreams={}
    )  # type: ignore[arg-type]
    return target, ports


def test_a_switch_returns_only_once_old_workers_stopped_accepting(home: Path, tmp_path: Path) -> None:
    target, ports = _service_only(tmp_path)
    servers = [ColorServer("blue", ports["blue_port"]), ColorServer("green", ports["green_port"])]
    port = ports["service_port"]
    try:
        # Each round from a stopped nginx: a switch that starts it races the first worker's start.
        for _ in range(20):
            for color in ["blue", "green", "blue"]:
                master = target._nginx_pid()
                before = set(accepting_workers(master, listening_sockets(port))) if master else set()
                target.switch(color)
                master = target._nginx_pid()
                assert master is not None
                after = set(accepting_workers(master, listening_sockets(port)))
                # One generation (the configuration has one worker), none of the previous one.
                assert len(after) == 1 and not after & before, (before, after)
                answers = {target.probe(None, "/version").body["color"] for _ in range(10)}
                assert answers == {color}
                assert target.active_color() == color
            target._nginx("-s", "quit")
            while target._nginx_pid() is not None:
                time.sleep(0.01)
    finally:
        if target._nginx_pid() is not None:
            target._nginx("-s", "quit")
        for server in servers:
            server.close()


@pytest.mark.parametrize("when", ["start", "reload"])
def test_an_nginx_whose_worker_cannot_start_fails_the_switch_with_its_reason(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The master starts or reloads, its new worker exits at once (here: a working directory that
    is not there): the switch fails saying so, in nginx's own words. CI once saw this switch
    pass under load: a worker holds the service's socket from its fork until it exits, never
    accepting, and a switch that had not yet read the new master's pid did not wait at all."""
    monkeypatch.setattr(local, "NGINX_START_S", 1.0)
    monkeypatch.setattr(local, "SWITCH_S", 2.0)
    broken = "worker_processes 1;\nworking_directory /nonexistent;"
    target, _ = _service_only(tmp_path)
    try:
        if when == "reload":
            target.switch("blue")
            conf = target.nginx_dir / "nginx.conf"
            conf.write_text(conf.read_text().replace("worker_processes 1;", broken))
        else:
            monkeypatch.setattr(
                local, "NGINX_CONF", local.NGINX_CONF.replace("worker_processes 1;", broken)
            )
        waited = {"start": 1, "reload": 2}[when]
        with pytest.raises(
            TransientError, match=rf"had no worker accepting connections after {waited} s: .*chdir"
        ):
            target.switch("green")
    finally:
        target._nginx("-s", "quit")


# 10. One source of settings: the variable the CLI honours is the one Dagster's resources honour.
def test_dagster_and_the_cli_use_the_same_audit_log_and_model_registry(
    home: Path,
    penguins_csv: Path,
    estate_with_source: object,
    postgres_url: str,
    mlflow_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS audit_log")
    monkeypatch.setenv("GOVERNANCE_AUDIT_URL", postgres_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_url)
    estate = estate_with_source(penguins_csv)  # type: ignore[operator]
    with dg.DagsterInstance.ephemeral() as instance:
        # The default resources, no explicit URL: the environment decides, as for the CLI.
        result = materialize_groups(estate, instance, "datasets", "models")
    assert result.success
    assert not GovernanceHome(home).audit_db.exists()
    assert not (GovernanceHome(home).mlflow / "mlflow.db").exists()
    shown = run_governance("--estate", str(estate.path), "audit", "show", "--json")
    actions = [r["action"] for r in json.loads(shown.stdout)]
    assert {"dataset.published", "model.registered", "model.gated"} <= set(actions)
    assert all(r["actor"].startswith("dagster:") for r in json.loads(shown.stdout))
    listed = run_governance("--estate", str(estate.path), "models", "list", "--json")
    (model,) = json.loads(listed.stdout)
    newest = model["versions"][0]  # the session's server may hold other tests' versions too
    assert "challenger" in newest["aliases"]
    assert newest["tags"]["dagster.run_id"] == result.run_id

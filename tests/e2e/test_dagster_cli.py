"""`dagster asset materialize`, as an operator or a cron job runs it: every step in its own process
(the multiprocess executor), on one persistent instance, across days; on the embedded stores, and
with every shared store in Postgres (GOVERNANCE_DATABASE_URL) and MLflow as a server on it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.home import DATABASE_URL_ENV, SHARED_DIR_ENV, GovernanceHome
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from governance.services import Services
from tests.conftest import REPO, dagster_materialize, run_governance
from tests.services import free_port, postgres_server, process_group, sqlite_files, wait_http

pytestmark = pytest.mark.runs_for(165)


@pytest.fixture(params=["embedded", "shared database"])
def stores(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The embedded default, or Postgres for every shared store with `scripts/mlflow.sh` serving
    MLflow on it (what `make dev` starts when GOVERNANCE_DATABASE_URL is set), and the files runs
    share (GOVERNANCE_SHARED_DIR) on a directory standing in for the volume they all mount."""
    if request.param == "embedded":
        yield request.param
        return
    monkeypatch.setenv(SHARED_DIR_ENV, str(home.parent / "shared-volume"))
    with postgres_server() as url:
        monkeypatch.setenv(DATABASE_URL_ENV, url)
        port = free_port()
        log = home.parent / "mlflow-server.log"
        env = {**os.environ, "MLFLOW_PORT": str(port)}
        with process_group([str(REPO / "scripts" / "mlflow.sh")], log, env=env) as server:
            tracking = f"http://127.0.0.1:{port}"
            wait_http(f"{tracking}/health", server, log, timeout=120)
            monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
            yield request.param


def test_train_promote_retrain_and_promote_again_from_the_command_line(home: Path, stores: str) -> None:
    """Day one trains v1 and an operator makes it champion. Day two retrains: the gate, in a step
    process that never trained, scores the champion through the registry, passes v2 as challenger,
    and the operator promotes it. Every action is in one intact audit chain."""
    dagster_home = home / "dagster"
    registry = ModelRegistry(
        mlflow_settings(GovernanceHome.resolve(), os.environ.get("MLFLOW_TRACKING_URI"))
    )

    day_one = dagster_materialize(dagster_home, "+key:penguin_classifier")
    assert day_one.returncode == 0, day_one.stderr[-3000:]
    assert "RUN_SUCCESS" in day_one.stderr
    assert "Asset check 'meets_promotion_policy' on 'penguin_classifier' passed" in day_one.stderr
    assert registry.aliases("penguin-classifier") == {"challenger": "1"}
    promote = ("models", "promote", "penguin_classifier")
    first = run_governance(*promote, "1", "--by", "alice", "--reason", "day one")
    assert first.returncode == 0, first.stderr

    day_two = dagster_materialize(dagster_home, "key:penguin_classifier")
    assert day_two.returncode == 0, day_two.stderr[-3000:]
    assert "Asset check 'meets_promotion_policy' on 'penguin_classifier' passed" in day_two.stderr
    assert registry.aliases("penguin-classifier") == {"challenger": "2", "champion": "1"}
    second = run_governance(*promote, "2", "--by", "bob", "--reason", "day two")
    assert second.returncode == 0, second.stderr
    assert registry.aliases("penguin-classifier")["champion"] == "2"

    verified = run_governance("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    records = json.loads(run_governance("audit", "show", "--json").stdout)
    gated = [r for r in records if r["action"] == "model.gated"]
    assert [r["versions"]["model_version"] for r in gated] == [
        "penguin-classifier/1",
        "penguin-classifier/2",
    ]
    assert gated[1]["versions"]["champion_version"] == "penguin-classifier/1"
    assert all(r["actor"].startswith("dagster:") for r in gated)
    promoted = [r for r in records if r["action"] == "alias.champion.promoted"]
    assert [(r["actor"], r["versions"]["model_version"]) for r in promoted] == [
        ("cli:alice", "penguin-classifier/1"),
        ("cli:bob", "penguin-classifier/2"),
    ]

    # Lineage keeps one model under one name, with each day's version in its version facet.
    events = Services().outbox().events()
    trained = [
        dataset
        for event in events
        if event["job"]["name"] == "penguin_classifier" and event["eventType"] == "COMPLETE"
        for dataset in event["outputs"]
    ]
    assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in trained] == [
        ("models/penguin-classifier", "1"),
        ("models/penguin-classifier", "2"),
    ]

    if stores == "shared database":
        # Every store that runs share is in Postgres, the MLflow server or the shared volume; the
        # volume holds no sqlite file. What stays in the home is a run's own (DVC's caches of its
        # working copy, GX's files), none of it a shared store.
        volume = home.parent / "shared-volume"
        assert sqlite_files(volume) == [] and (volume / "datasets.git" / "HEAD").is_file()
        assert list((volume / "dvc-remote").rglob("*")) and list((volume / "mlflow").rglob("MLmodel"))
        assert list((volume / "gx").rglob("index.html")) and not (home / "gx").exists()
        shared = {"audit.db", "outbox.db", "alerts.db", "state.json", "mlflow.db"}
        assert not [p for p in home.rglob("*") if p.name in shared]
        assert [p for p in sqlite_files(home) if ".dvc/tmp" not in p] == []
        assert "storage:\n  postgres:" in (dagster_home / "dagster.yaml").read_text()

"""`dagster asset materialize`, as an operator or a cron job runs it: every step in its own process
(the multiprocess executor), on one persistent instance, across days."""

from __future__ import annotations

import json
from pathlib import Path

from governance.home import GovernanceHome
from governance.lineage.outbox import Outbox
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from tests.conftest import dagster_materialize, run_governance


def test_train_promote_retrain_and_promote_again_from_the_command_line(home: Path) -> None:
    """Day one trains v1 and an operator makes it champion. Day two retrains: the gate, in a step
    process that never trained, scores the champion through the registry, passes v2 as challenger,
    and the operator promotes it. Every action is in one intact audit chain."""
    dagster_home = home / "dagster"
    registry = ModelRegistry(mlflow_settings(GovernanceHome.resolve()))

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
    events = Outbox(GovernanceHome.resolve().lineage / "outbox.db").events()
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

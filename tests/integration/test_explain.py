"""`governance models explain`: from what serves back to the data, with the evidence for each step."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from governance.config import Estate
from tests.conftest import materialize_groups, run_governance


def governance(estate: Estate, *args: str) -> subprocess.CompletedProcess[str]:
    return run_governance("--estate", str(estate.path), *args)


def test_explain_walks_from_the_champion_to_its_dataset_version(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path
) -> None:
    estate = estate_with_source(penguins_csv)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_groups(estate, instance, "datasets", "models")
    md5 = result.asset_materializations_for_node("penguins")[0].metadata["dvc_md5"].value
    promoted = governance(
        estate, "models", "promote", "penguin_classifier", "1", "--by", "alice", "--reason", "ok"
    )
    assert promoted.returncode == 0, promoted.stderr

    explained = governance(estate, "models", "explain", "penguin_classifier", "--json")
    assert explained.returncode == 0, explained.stderr
    links = json.loads(explained.stdout)
    kinds = [link["kind"] for link in links]
    assert kinds[:2] == ["model version", "dataset version"]
    model, dataset = links[0], links[1]
    assert model["ref"] == "penguin-classifier/1"
    assert model["details"]["aliases"] == ["challenger", "champion"]
    assert model["details"]["gate"] == "passed" and model["details"]["dagster_run_id"] == result.run_id
    assert dataset["ref"] == f"penguins@{md5}" and dataset["at"]

    validations = {link["ref"] for link in links if link["kind"] == "validation"}
    assert validations == {"dataset.published published", "dataset.checked passed"}
    lineage = {link["ref"] for link in links if link["kind"] == "lineage run"}
    assert {
        "penguins COMPLETE",
        "penguin_classifier COMPLETE",
        "penguin_classifier.meets_promotion_policy COMPLETE",
    } <= lineage
    audit = [link["ref"] for link in links if link["kind"] == "audit record"]
    assert "model.registered registered" in audit and "alias.champion.promoted promoted" in audit
    assert all(link["at"] for link in links)

    text = governance(estate, "models", "explain", "penguin_classifier", "--alias", "challenger")
    assert text.returncode == 0 and f"penguins@{md5}" in text.stdout
    missing = governance(estate, "models", "explain", "penguin_classifier", "--alias", "nobody")
    assert missing.returncode == 2 and "no version with alias 'nobody'" in missing.stderr

"""`materialize()` of the images group: the asset's DataVersion is the pushed digest, its metadata
says what came from cache, and the blocking checks judge exactly that digest."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from governance.audit.store import open_audit_log
from governance.config import Estate
from governance.home import GovernanceHome
from governance.images.registry import manifest_digest
from pipelines.definitions import build_definitions
from tests.conftest import repository_estate_data, write_estate

SERVER = dg.AssetKey("model_server")
pytestmark = pytest.mark.usefixtures("image_lab")


def materialize(estate: Estate, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = build_definitions(estate)
    return dg.materialize(
        defs.assets,
        instance=instance,
        resources=defs.resources,
        selection=dg.AssetSelection.assets(SERVER),
        raise_on_error=False,
    )


def test_image_asset_versions_by_digest_and_passes_its_checks(tmp_path: Path) -> None:
    estate = write_estate(repository_estate_data(), tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(estate, instance)
        assert result.success
        (materialization,) = result.asset_materializations_for_node("model_server")
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        digest = str(metadata["digest"])
        event = instance.get_latest_materialization_event(SERVER)
        assert event is not None and event.asset_materialization is not None
        assert event.asset_materialization.tags["dagster/data_version"] == digest

    registry, repository = str(metadata["reference"]).split("/", 1)[0], "penguins/model-server"
    assert manifest_digest(registry, repository, digest) == digest
    assert metadata["lockfile"] == "uv.lock" and str(metadata["lockfile_digest"]).startswith("sha256:")
    assert str(metadata["base BASE_IMAGE"]).startswith(f"{registry}/governance/python@sha256:")
    assert isinstance(metadata["size_mb"], float) and metadata["steps_total"] >= 10
    steps = metadata["steps"].records  # type: ignore[attr-defined]
    install = next(r.data for r in steps if "pip install" in r.data["instruction"])
    assert set(install) == {"step", "instruction", "cached", "seconds"}

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"passes_dockerfile_policy", "answers_health_check", "within_size_budget"}
    assert all(e.passed for e in evaluations.values())
    assert all(e.metadata["digest"].value == digest for e in evaluations.values())

    (record,) = [
        r
        for r in open_audit_log(GovernanceHome.resolve().audit_db).records()
        if r.action == "image.built"
    ]
    assert record.subject == "image:model_server" and record.versions["digest"] == digest


def test_size_over_budget_fails_the_blocking_check(tmp_path: Path) -> None:
    data = repository_estate_data()
    data["images"]["apps"]["model_server"]["size_budget_mb"] = 1
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(write_estate(data, tmp_path), instance)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    size = evaluations["within_size_budget"]
    assert not size.passed and size.metadata["budget_mb"].value == 1
    assert evaluations["answers_health_check"].passed

"""`materialize()` of the datasets group with real DVC and GX in a temporary GOVERNANCE_HOME."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import yaml

from governance.config import Estate
from governance.datasets.versioning import DatasetStore
from governance.home import GovernanceHome
from governance.services import Services
from pipelines.definitions import build_definitions
from tests.badfiles import BAD_FILES, BadFile
from tests.conftest import materialize_groups

PENGUINS = dg.AssetKey("penguins")
SUITE_CHECK = dg.AssetCheckKey(PENGUINS, "matches_expectation_suite")


def run(
    estate: Estate, instance: dg.DagsterInstance, everything: bool = False
) -> dg.ExecuteInProcessResult:
    """The datasets group; `everything` adds what is downstream of it (the model)."""
    groups = ("datasets", *(["models"] if everything else []))
    return materialize_groups(estate, instance, *groups, raise_on_error=False)


def store() -> DatasetStore:
    home = GovernanceHome.resolve()
    return DatasetStore(home.datasets_repo, str(home.dvc_remote))


def dvc_file_md5() -> str:
    text = (GovernanceHome.resolve().datasets_repo / "data" / "penguins.csv.dvc").read_text()
    return str(yaml.safe_load(text)["outs"][0]["md5"])


def latest_data_version(instance: dg.DagsterInstance) -> str | None:
    event = instance.get_latest_materialization_event(PENGUINS)
    assert event is not None and event.asset_materialization is not None
    return (
        event.asset_materialization.tags.get("dagster/data_version")
        if event.asset_materialization.tags
        else None
    )


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_datasets_group_materializes_with_dvc_version_and_passing_check(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path, instance: dg.DagsterInstance
) -> None:
    estate = estate_with_source(penguins_csv)
    result = run(estate, instance)
    assert result.success

    md5 = dvc_file_md5()
    materialization = next(
        e for e in result.get_asset_materialization_events() if e.asset_key == PENGUINS
    )
    metadata = materialization.materialization.metadata
    assert latest_data_version(instance) == md5
    raw = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("penguins_raw")
    )
    assert [c.name for c in raw["dagster/column_schema"].value.columns] == list(
        estate.dataset("penguins").columns
    )  # the columns the raw file was read against, shown on its page
    assert metadata["dvc_md5"].value == md5
    assert metadata["dagster/row_count"].value == 333
    assert metadata["previous_dvc_md5"].value == "(none)"
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == list(
        estate.dataset("penguins").columns
    )

    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "matches_expectation_suite" and evaluation.passed
    assert evaluation.metadata["dataset_md5"].value == md5
    assert evaluation.metadata["expectations_failed"].value == 0
    table = evaluation.metadata["expectations"].value
    assert len(table.records) == evaluation.metadata["expectations_evaluated"].value == 23
    docs = evaluation.metadata["data_docs"].value  # a page of the site, which the UI can open
    site = Services().site()
    page = site.local_path(urllib.parse.urlparse(docs).path)
    assert docs.startswith(f"{site.base_url}/data-docs/") and page is not None and page.is_file()

    # Same input again: the same version, no new DVC commit.
    again = run(estate, instance)
    assert again.success and latest_data_version(instance) == md5
    assert len(store().history("penguins")) == 1


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda b: b.name)
def test_bad_raw_file_fails_and_keeps_the_last_good_version(
    bad: BadFile,
    estate_with_source: Callable[[Path], Estate],
    penguins_csv: Path,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    assert run(estate_with_source(penguins_csv), instance).success
    good_md5 = dvc_file_md5()

    bad_path = bad.write(penguins_csv, tmp_path)
    result = run(estate_with_source(bad_path), instance, everything=True)

    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == bad.rejected_by
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert str(bad_path) in message
    for phrase in bad.says:
        assert phrase in message, message
    # Nothing downstream ran: no check evaluation, no new materialization of the dataset.
    assert result.get_asset_check_evaluations() == []
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert PENGUINS not in materialized and dg.AssetKey("penguin_classifier") not in materialized
    # The last good version stays current in DVC and in Dagster.
    assert dvc_file_md5() == good_md5
    assert store().current("penguins").md5 == good_md5  # type: ignore[union-attr]
    assert latest_data_version(instance) == good_md5
    if bad.rejected_by == "penguins":
        evidence = failure.step_failure_data.user_failure_data.metadata  # type: ignore[union-attr]
        assert evidence["expectations_failed"].value >= 1
        assert "offending_rows_sample" in evidence


def test_scheduled_quality_job_revalidates_the_current_version(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path, instance: dg.DagsterInstance
) -> None:
    estate = estate_with_source(penguins_csv)
    assert run(estate, instance).success
    job = build_definitions(estate).resolve_job_def("dataset_quality")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.asset_check_key == SUITE_CHECK and evaluation.passed
    assert result.get_asset_materialization_events() == []

    # Someone edits the governed file behind DVC's back: the next quality run catches it.
    workspace = store().workspace_file("penguins")
    workspace.write_text(workspace.read_text().replace("Biscoe", "Bisco"))
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "column 'island' breaks expect_column_values_to_be_in_set" in evaluation.description


def test_check_before_any_version_fails_clearly(
    estate_with_source: Callable[[Path], Estate], penguins_csv: Path, instance: dg.DagsterInstance
) -> None:
    job = build_definitions(estate_with_source(penguins_csv)).resolve_job_def("dataset_quality")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "no version has been published yet" in evaluation.description

"""The code location loads, and its groups, checks, jobs and schedules resolve."""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

import governance
from governance.warm import HEAVY_MODULES
from pipelines.definitions import defs
from pipelines.executor import preload_modules
from tests.conftest import REPO, dagster_materialize

HEAVY = (
    "great_expectations",
    "mlflow",
    "dvc",
    "sklearn",
    "pandas",
    "kubernetes",
    "docker",
    "openlineage",
)


def test_definitions_validate() -> None:
    dg.Definitions.validate_loadable(defs)


def test_datasets_group() -> None:
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {
        "penguins_raw": "datasets",
        "penguins": "datasets",
        "penguin_classifier": "models",
        "model_server": "images",
        "frontend": "images",
        "platform": "images",
        "penguin_service_candidate": "releases",
        "penguin_service": "releases",
        "penguin_web_candidate": "releases",
        "penguin_web": "releases",
    }
    assert graph.get(dg.AssetKey("penguins")).parent_keys == {dg.AssetKey("penguins_raw")}
    # The web release serves no model: its candidate is the front end's image; it deploys after
    # the model service its page asks.
    assert graph.get(dg.AssetKey("penguin_web_candidate")).parent_keys == {dg.AssetKey("frontend")}
    assert graph.get(dg.AssetKey("penguin_web")).parent_keys == {
        dg.AssetKey("penguin_web_candidate"),
        dg.AssetKey("penguin_service"),
    }
    assert graph.get(dg.AssetKey("penguins")).owners == ["data-platform@example.com"]


def test_gates_are_blocking_checks() -> None:
    graph = defs.resolve_asset_graph()
    specs = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert set(specs) == {
        dg.AssetCheckKey(dg.AssetKey("penguins"), "matches_expectation_suite"),
        dg.AssetCheckKey(dg.AssetKey("penguin_classifier"), "meets_promotion_policy"),
        *[
            dg.AssetCheckKey(dg.AssetKey(image), check)
            for image in ("model_server", "frontend", "platform")
            for check in ("passes_dockerfile_policy", "answers_health_check", "within_size_budget")
        ],
    }
    assert all(spec.blocking for spec in specs.values())


def test_each_release_is_gated_on_every_blocking_check_of_its_inputs() -> None:
    """Read from the resolved graph, not from a list: a blocking check added to a release's
    dataset, model or image gates the release too."""
    graph = defs.resolve_asset_graph()
    for name in ("penguin_service", "penguin_web"):
        inputs = graph.get(dg.AssetKey(f"{name}_candidate")).parent_keys
        blocking = sorted(
            key.to_user_string()
            for key in graph.asset_check_keys
            if key.asset_key in inputs and graph.get_check_spec(key).blocking
        )
        description = graph.get(dg.AssetKey(name)).description or ""
        gated_on = description.split("Gated on these blocking checks of its exact versions: ")[1]
        assert sorted(gated_on.rstrip(".").split(", ")) == [c.replace(":", ".") for c in blocking]
    assert len(blocking) == 3  # the web page: its image's three checks


def test_model_depends_on_the_dataset() -> None:
    node = defs.resolve_asset_graph().get(dg.AssetKey("penguin_classifier"))
    assert node.parent_keys == {dg.AssetKey("penguins")}
    assert node.code_version  # trainer, params, seed and split: a change makes the model stale


def test_asset_selection_strings_parse() -> None:
    """Dagster's selection grammar needs ANTLR 4.13; dvc's omegaconf once pinned 4.9 and broke it."""
    selection = dg.AssetSelection.from_string("key:penguins or key:penguin_classifier")
    expected = {dg.AssetKey("penguins"), dg.AssetKey("penguin_classifier")}
    assert selection.resolve(defs.resolve_asset_graph()) == expected


def test_daily_quality_schedule_runs_the_checks_only() -> None:
    schedule = defs.resolve_schedule_def("daily_dataset_quality")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("dataset_quality")
    assert job.asset_layer.executable_asset_keys == set()
    assert job.asset_layer.asset_graph.asset_check_keys >= {
        dg.AssetCheckKey(dg.AssetKey("penguins"), "matches_expectation_suite")
    }


@pytest.mark.usefixtures("home", "own_image_storage")
def test_daily_housekeeping_collects_and_leaves_its_record() -> None:
    """The scheduled job runs `gc` with the estate's retention, its actor the run."""
    from governance.audit.store import open_audit_log
    from governance.home import GovernanceHome

    schedule = defs.resolve_schedule_def("daily_housekeeping")
    assert schedule.cron_schedule == "30 5 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    result = defs.resolve_job_def("housekeeping").execute_in_process()
    assert result.success
    (record,) = open_audit_log(GovernanceHome.resolve().audit_db).records()
    assert (record.action, record.actor) == ("housekeeping.collected", f"dagster:{result.run_id}")
    assert record.reasons == (
        "Dagster runs: removed 0, kept 1, freed 0.0 MiB",  # itself
        "validations: removed 0, kept 0, freed 0.0 MiB",
        "release model copies: removed 0, kept 0, freed 0.0 MiB",
        "image builds: removed 0, kept 0, freed 0.0 MiB",
        "delivered lineage events: removed 0, kept 0, freed 0.0 MiB",
    )


def _modules_after(statement: str) -> list[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return list(json.loads(output.stdout))


def test_code_location_loads_without_heavy_libraries() -> None:
    loaded = _modules_after("import pipelines.definitions")
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []


def test_governance_library_never_imports_dagster() -> None:
    names = [
        m.name
        for m in pkgutil.walk_packages(governance.__path__, "governance.")
        if m.name != "governance.__main__"
    ]
    loaded = _modules_after("; ".join(f"import {name}" for name in names))
    assert len(names) > 5
    assert [m for m in loaded if m.split(".")[0] == "dagster"] == []


def test_release_depends_on_its_exact_inputs_and_promotes_one_at_a_time() -> None:
    graph = defs.resolve_asset_graph()
    candidate = graph.get(dg.AssetKey("penguin_service_candidate"))
    assert candidate.parent_keys == {
        dg.AssetKey(k) for k in ("penguins", "penguin_classifier", "model_server")
    }
    release = graph.get(dg.AssetKey("penguin_service"))
    assert release.parent_keys == {dg.AssetKey("penguin_service_candidate")}
    assert release.pools == {"release_penguin_service"}
    assert defs.resolve_job_def("rollback_penguin_service") is not None
    sensor = defs.resolve_sensor_def("heal_penguin_service")
    assert sensor.minimum_interval_seconds == 30
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # the tick only probes; the action is a run of the heal job, in the release's pool, retried
    assert [job.name for job in sensor.jobs] == ["heal_penguin_service"]
    (tend,) = defs.resolve_job_def("heal_penguin_service").graph.node_defs
    assert tend.pool == "release_penguin_service" and tend.retry_policy is not None


def test_asset_pages_link_the_users_code_and_say_when_data_is_stale() -> None:
    graph = defs.resolve_asset_graph()

    def references(asset: str) -> dict[str, tuple[str, int | None]]:
        value = graph.get(dg.AssetKey(asset)).metadata["dagster/code_references"]
        return {r.label: (r.file_path, r.line_number) for r in value.code_references}

    cleaner = references("penguins")["cleaner"]
    assert cleaner[0] == str(REPO / "examples/penguins/prepare.py")
    assert cleaner[1] is not None
    assert (
        (REPO / "examples/penguins/prepare.py")
        .read_text()
        .splitlines()[cleaner[1] - 1]
        .startswith("def clean(")
    )
    assert references("penguins")["expectation suite"][0] == str(REPO / "expectations/penguins.json")
    assert references("penguin_classifier")["trainer"][0] == str(REPO / "examples/penguins/train.py")
    assert references("frontend")["Dockerfile"][0].endswith("apps/frontend/Dockerfile")
    policy = graph.get(dg.AssetKey("penguins")).freshness_policy
    assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 26 * 3600
    # The dataset -> model chain keeps itself current; images and releases wait for a person.
    automated = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).automation_condition is not None
    }
    assert automated == {"penguins", "penguin_classifier"}


def test_retraining_with_everything_downstream_is_one_job() -> None:
    job = defs.resolve_job_def("retrain_penguin_classifier")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {
        "penguin_classifier",
        "penguin_service_candidate",
        "penguin_service",
        "penguin_web",
    }
    checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert "meets_promotion_policy" in checks
    # Approvals are jobs only where a release requires them (none does in the sample estate).
    assert not any(j.name.startswith(("approve_", "reject_")) for j in defs.resolve_all_job_defs())


def test_the_local_instance_purges_tick_history(tmp_path: Path) -> None:
    """Dagster validates the instance file of `make dev` and reads its tick retention from it."""
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import TickStatus

    shutil.copy(REPO / "deploy/local/dagster.yaml", tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        sensors = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        schedules = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
    assert sensors == {
        TickStatus.STARTED: -1,  # a tick still running is never purged
        TickStatus.SKIPPED: 7,
        TickStatus.SUCCESS: 30,
        TickStatus.FAILURE: 90,
    }
    assert set(schedules.values()) == {90}


def test_each_run_preloads_the_libraries_its_steps_use() -> None:
    """The forkserver imports a heavy library (GX, MLflow, DVC) once for the steps of a run that
    use it, when more than one does; a step alone with it imports it itself."""
    repo = defs.get_repository_def()
    everything = repo.get_job("__ASSET_JOB")
    heavy = {module for modules in HEAVY_MODULES.values() for module in modules}
    assert set(preload_modules(everything)) == {"pipelines.preload", *heavy}
    assert preload_modules(repo.get_job("heal_penguin_service")) == ["pipelines.preload"]  # one step
    frontend = everything.get_subset(asset_selection={dg.AssetKey("frontend")})  # and its checks
    assert preload_modules(frontend) == ["pipelines.preload"]
    model = preload_modules(everything.get_subset(asset_selection={dg.AssetKey("penguin_classifier")}))
    assert "mlflow.sklearn" in model and "great_expectations" not in model  # the model and its gate


def test_a_run_can_start_each_step_afresh(tmp_path: Path) -> None:
    """A run's config still chooses Dagster's own start methods: spawn, not the forkserver."""
    spawn = json.dumps({"execution": {"config": {"start_method": {"spawn": {}}}}})
    result = dagster_materialize(tmp_path / "dagster", "penguins_raw", run_config=spawn)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RUN_SUCCESS" in result.stderr

"""deploy/helm/values.yaml, as the official Dagster chart turns it into the instance's dagster.yaml,
checked with Dagster's own instance-config validation and each configured class's config schema.

No Helm binary or cluster runs here, so `chart_instance` renders the sections of the chart's
`configmap-instance.yaml` that these values use, key for key as its templates write them (chart of
dagster 1.13). Every value the chart would read is marked as read; a value under those sections that
nothing reads (a misspelt key, a setting of another chart version) fails the test, since the chart
would drop it silently.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

VALUES = REPO / "deploy/helm/values.yaml"
NAMESPACE = "governance"
# The sections of the values that the chart writes into dagster.yaml.
INSTANCE_SECTIONS = (
    "postgresql",
    "runLauncher",
    "dagsterDaemon",
    "concurrency",
    "computeLogManager",
    "scheduler",
    "telemetry",
    "retention",
)
# What the chart sets in every run's environment, which the instance's `env:` fields name.
CHART_ENV = {
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_PG_PASSWORD": "from-the-secret",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "governance-dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "governance-postgresql",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "governance-dagster-pipeline-env",
}


class ValueDropped(Exception):
    """A value the chart's template would not write."""


class Values:
    """The values, read the way the templates read them, remembering which keys were read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.read: set[str] = set()

    def __call__(self, path: str, default: Any = None) -> Any:
        node: Any = self.data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        self.read.add(path)  # a whole subtree, as `toYaml` writes it
        return node

    def unread(self) -> list[str]:
        def leaves(node: Any, path: str) -> list[str]:
            if any(path == r or path.startswith(r + ".") for r in self.read):
                return []
            if isinstance(node, dict) and node:
                return [leaf for k, v in node.items() for leaf in leaves(v, f"{path}.{k}")]
            return [path]

        return [leaf for s in INSTANCE_SECTIONS if s in self.data for leaf in leaves(self.data[s], s)]


def _present(**entries: Any) -> dict[str, Any]:
    """The template's `{{- if .x }}`: a key is written only when its value is set (0 and [] are not)."""
    return {key: value for key, value in entries.items() if value}


def chart_instance(v: Values) -> dict[str, Any]:
    """dagster.yaml as the chart's configmap-instance.yaml writes it for these values."""
    assert v("postgresql.enabled") is False, "the platform's Postgres is external"
    postgres = {
        "postgres_db": {
            "username": v("postgresql.postgresqlUsername"),
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": v("postgresql.postgresqlHost"),
            "db_name": v("postgresql.postgresqlDatabase"),
            "port": v("postgresql.service.port"),
            "params": v("postgresql.postgresqlParams", {}),
            **_present(scheme=v("postgresql.postgresqlScheme")),
        }
    }

    def storage(module: str, name: str) -> dict[str, Any]:
        return {"module": f"dagster_postgres.{module}", "class": name, "config": postgres}

    assert v("scheduler.type", "DagsterDaemonScheduler") == "DagsterDaemonScheduler"
    assert v("runLauncher.type") == "K8sRunLauncher"
    k8s = "runLauncher.config.k8sRunLauncher"
    names = lambda key: [e["name"] for e in v(f"{k8s}.{key}", []) if "name" in e]  # noqa: E731
    launcher = {
        "load_incluster_config": v(f"{k8s}.loadInclusterConfig"),
        **_present(kubeconfig_file=v(f"{k8s}.kubeconfigFile")),
        "job_namespace": v(f"{k8s}.jobNamespace") or NAMESPACE,
        "image_pull_policy": v(f"{k8s}.imagePullPolicy"),
        "service_account_name": v("global.serviceAccountName") or "governance-dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}, *names("envConfigMaps")],
        **_present(
            env_secrets=names("envSecrets"),
            env_vars=v(f"{k8s}.envVars"),
            volume_mounts=v(f"{k8s}.volumeMounts"),
            volumes=v(f"{k8s}.volumes"),
        ),
    }
    instance: dict[str, Any] = {
        "scheduler": {"module": "dagster._core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": storage("schedule_storage", "PostgresScheduleStorage"),
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher},
        "run_storage": storage("run_storage", "PostgresRunStorage"),
        "event_log_storage": storage("event_log", "PostgresEventLogStorage"),
    }
    daemon = v("dagsterDaemon.enabled")
    if daemon and v("dagsterDaemon.runCoordinator.enabled"):
        assert v("dagsterDaemon.runCoordinator.type") == "QueuedRunCoordinator"
        queued = "dagsterDaemon.runCoordinator.config.queuedRunCoordinator"
        config = {
            **_unless_none(max_concurrent_runs=v(f"{queued}.maxConcurrentRuns")),
            **_present(
                tag_concurrency_limits=v(f"{queued}.tagConcurrencyLimits"),
                dequeue_interval_seconds=v(f"{queued}.dequeueIntervalSeconds"),
            ),
        }
        instance["run_coordinator"] = {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            **({"config": config} if config else {}),
        }
    assert v("computeLogManager.type") == "NoOpComputeLogManager"
    instance["compute_logs"] = {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
    if daemon and v("dagsterDaemon.runMonitoring.enabled"):
        monitoring = "dagsterDaemon.runMonitoring"
        instance["run_monitoring"] = {
            "enabled": True,
            "start_timeout_seconds": v(f"{monitoring}.startTimeoutSeconds"),
            **_present(max_resume_run_attempts=v(f"{monitoring}.maxResumeRunAttempts")),
            "poll_interval_seconds": v(f"{monitoring}.pollIntervalSeconds"),
        }
    if daemon and v("dagsterDaemon.runRetries.enabled"):
        instance["run_retries"] = {
            "enabled": True,
            **_present(max_retries=v("dagsterDaemon.runRetries.maxRetries")),
        }
    instance["telemetry"] = {"enabled": v("telemetry.enabled", True)}
    if v("retention.enabled"):
        instance["retention"] = {
            kind: {"purge_after_days": v(f"retention.{kind}.purgeAfterDays")}
            for kind in ("sensor", "schedule")
            if v(f"retention.{kind}")
        }
    concurrency = {
        "pools": _unless_none(default_limit=v("concurrency.pools.defaultLimit")),
        "runs": {
            **_unless_none(max_concurrent_runs=v("concurrency.runs.maxConcurrentRuns")),
            **_present(
                tag_concurrency_limits=[
                    _tag_limit(entry) for entry in v("concurrency.runs.tagConcurrencyLimits", [])
                ]
            ),
        },
    }
    if any(concurrency.values()):
        instance["concurrency"] = {k: section for k, section in concurrency.items() if section}
    return instance


def _unless_none(**entries: Any) -> dict[str, Any]:
    """The template's `{{- if not (kindIs "invalid" .x) }}`: written when set, 0 included."""
    return {key: value for key, value in entries.items() if value is not None}


def _tag_limit(entry: dict[str, Any]) -> dict[str, Any]:
    """One of `concurrency.runs.tagConcurrencyLimits`, which the chart writes field by field."""
    dropped = set(entry) - {"key", "value", "limit"}
    if dropped:
        raise ValueDropped(f"tagConcurrencyLimits: the chart writes key, value and limit, not {dropped}")
    return {"key": entry["key"], **_present(value=entry.get("value")), "limit": entry["limit"]}


def validate(instance: dict[str, Any], home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Dagster does when it loads the instance: the file against the instance schema, then each
    configurable class's own config against that class's schema (with the chart's environment)."""
    from dagster._config import process_config
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    for name, value in CHART_ENV.items():
        monkeypatch.setenv(name, value)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    dagster_instance_config(str(home))  # raises DagsterInvalidConfigError
    for section, entry in instance.items():
        if not (isinstance(entry, dict) and "module" in entry):
            continue
        klass = getattr(importlib.import_module(entry["module"]), entry["class"])
        result = process_config(klass.config_type(), entry.get("config", {}))
        if not result.success:
            raise DagsterInvalidConfigError(f"{section}: {entry['class']}", result.errors, entry)


def test_the_charts_dagster_yaml_for_these_values_is_a_valid_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = Values(yaml.safe_load(VALUES.read_text()))
    instance = chart_instance(values)
    assert values.unread() == []
    validate(instance, tmp_path, monkeypatch)
    # what the issue asks of the team's instance, as the chart writes it
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["concurrency"]["runs"]["max_concurrent_runs"] == 8
    assert instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert instance["run_monitoring"]["enabled"] and instance["run_retries"]["enabled"]
    assert {instance[s]["module"] for s in ("run_storage", "event_log_storage", "schedule_storage")} == {
        "dagster_postgres.run_storage", "dagster_postgres.event_log", "dagster_postgres.schedule_storage"
    }  # fmt: skip
    assert instance["concurrency"]["pools"] == {"default_limit": 1}
    assert instance["run_storage"]["config"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_the_code_location_runs_the_platform_image_by_digest_with_its_secrets() -> None:
    data = yaml.safe_load(VALUES.read_text())
    (deployment,) = data["dagster-user-deployments"]["deployments"]
    image = deployment["image"]
    # the chart joins repository:tag, so a digest is `…@sha256` + `:<hex>`
    assert image["repository"].endswith("@sha256") and re.fullmatch(r"[0-9a-f]{64}", image["tag"])
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "pipelines.definitions"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    launcher = data["runLauncher"]["config"]["k8sRunLauncher"]
    assert deployment["envSecrets"] == launcher["envSecrets"]  # runs see what the code server sees
    # every run pod mounts the shared volume (the datasets' remotes), a valid ReadWriteMany claim
    import kubernetes_validate

    claim = yaml.safe_load((VALUES.parent / "shared-volume.yaml").read_text())
    kubernetes_validate.validate(claim, "1.37.0", strict=True)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (volume,) = launcher["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert launcher["volumeMounts"] == [{"name": volume["name"], "mountPath": "/shared"}]
    # the password comes from an existing Secret, never from the values
    assert data["global"]["postgresqlSecretName"] and data["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in data["postgresql"]


def _misspelt(data: dict[str, Any]) -> None:
    data["concurrency"]["runs"]["maxConcurentRuns"] = 4


def _wrong_type(data: dict[str, Any]) -> None:
    data["concurrency"]["runs"]["maxConcurrentRuns"] = "eight"


def _dropped_tag_limit_field(data: dict[str, Any]) -> None:
    data["concurrency"]["runs"]["tagConcurrencyLimits"][0]["perValue"] = True


def _bad_launcher_field(data: dict[str, Any]) -> None:
    data["runLauncher"]["config"]["k8sRunLauncher"]["envVars"] = {"NOT": "a list"}


def _limits_in_both_places(data: dict[str, Any]) -> None:
    coordinator = data["dagsterDaemon"]["runCoordinator"]
    coordinator["config"] = {"queuedRunCoordinator": {"maxConcurrentRuns": 4}}


@pytest.mark.parametrize(
    ("breaks", "why"),
    [
        (_misspelt, "concurrency.runs.maxConcurentRuns"),  # nothing reads it
        (_wrong_type, "max_concurrent_runs"),
        (_dropped_tag_limit_field, "not {'perValue'}"),  # the chart would not write it
        (_bad_launcher_field, "env_vars"),
        (_limits_in_both_places, "incompatible with the `concurrency > runs` config"),
    ],
    ids=lambda case: getattr(case, "__name__", ""),
)
def test_a_broken_value_is_caught(
    breaks: Callable[[dict[str, Any]], None],
    why: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster._core.errors import DagsterInvalidConfigError

    data = copy.deepcopy(yaml.safe_load(VALUES.read_text()))
    breaks(data)
    values = Values(data)
    try:
        instance = chart_instance(values)
        assert values.unread() == []
        validate(instance, tmp_path, monkeypatch)
    except (ValueDropped, AssertionError, DagsterInvalidConfigError) as caught:
        detail = [str(caught), *(str(e) for e in getattr(caught, "errors", []) or [])]
        assert any(why in d for d in detail), detail
    else:
        pytest.fail(f"{breaks.__name__} was not caught")

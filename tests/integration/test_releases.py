"""Blue/green releases on the local target for real: podman containers of the built model server,
nginx on loopback as the service, MLflow aliases, the Dagster instance's check records as gates."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from governance.audit.store import open_audit_log
from governance.config import Estate
from governance.home import GovernanceHome
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from governance.releases.approvals import LAUNCHED_BY_TAG
from pipelines.definitions import build_definitions
from pipelines.releases import OBSERVED_TAG
from tests.conftest import REPO, repository_estate_data, run_governance, write_estate
from tests.services import LineageBackend, free_port, podman, release_container

RELEASE = "penguin_service"
MODEL_SERVER = REPO / "examples/penguins/apps/model-server"
PENGUINS_CSV = Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv")))
pytestmark = [pytest.mark.usefixtures("image_lab"), pytest.mark.runs_for(260)]


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    """The model service alone (the web release that calls it has its own scenario)."""
    data = repository_estate_data()
    del data["releases"]["penguin_web"]
    data["releases"][RELEASE]["local"] = {
        "service_port": free_port(),
        "blue_port": free_port(),
        "green_port": free_port(),
    }
    data["releases"][RELEASE]["scale_down_delay_s"] = 600
    data["releases"][RELEASE]["heal"] = {"failures_before_action": 2}
    made = write_estate(data, tmp_path / "estate")
    yield made
    run_governance("--estate", str(made.path), "release", "down", "--all")


def materialize(
    estate: Estate,
    instance: dg.DagsterInstance,
    *assets: str,
    checks: bool = True,
    launched_by: str | None = None,
) -> dg.ExecuteInProcessResult:
    defs = build_definitions(estate)
    selection: Any = dg.AssetSelection.assets(*assets) if assets else dg.AssetSelection.all()
    if not checks:
        selection = selection.without_checks()
    return dg.materialize(
        defs.assets,
        instance=instance,
        resources=defs.resources,
        selection=selection,
        raise_on_error=False,
        tags={LAUNCHED_BY_TAG: launched_by} if launched_by else None,
    )


def service(estate: Estate, path: str, body: Any = None) -> Any:
    url = f"http://127.0.0.1:{estate.release(RELEASE).local.service_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def text(estate: Estate, path: str) -> str:
    url = f"http://127.0.0.1:{estate.release(RELEASE).local.service_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def registry() -> ModelRegistry:
    return ModelRegistry(mlflow_settings(GovernanceHome.resolve(), None))


def governance(
    estate: Estate, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_governance("--estate", str(estate.path), *args, env=env)


def decisions(release: str = RELEASE) -> list[str]:
    """The release's decisions in the audit log (each candidate made is a record of its own too)."""
    records = open_audit_log(GovernanceHome.resolve().audit_db).records(f"release:{release}")
    actions = [r.action for r in records]
    assert "release.candidate" in actions  # every candidate is proposed on the record
    return [action for action in actions if action != "release.candidate"]


def release_failure(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure and e.step_key == RELEASE]
    return str(failure.step_failure_data.error.message)  # type: ignore[union-attr]


class Load:
    """Steady requests through the service on a thread; counts every failure."""

    def __init__(self, estate: Estate, body: Any):
        self.estate, self.body = estate, body
        self.ok = self.failed = 0
        self.colors: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.colors.add(service(self.estate, "/version")["color"])
                service(self.estate, "/predict", self.body)
                self.ok += 1
            except OSError:
                self.failed += 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_promote_switch_rollback_and_heal(estate: Estate) -> None:
    spec = estate.release(RELEASE)
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize(estate, instance)
        assert first.success
        (deployed,) = first.asset_materializations_for_node(RELEASE)
        assert deployed.metadata["decision"].value == "promoted"
        assert deployed.metadata["active_color"].value == "blue"
        gates = {r.data["gate"]: r.data["passed"] for r in deployed.metadata["gates"].value.records}  # type: ignore[attr-defined]
        assert all(gates.values()) and len(gates) == 7  # 5 checks, alias, smoke test
        provenance = str(deployed.metadata["provenance"].value)
        assert "| service | http://127.0.0.1:" in provenance and "| image |" in provenance
        assert "| model version | penguin-classifier/1 |" in provenance
        answer = service(estate, "/predict", spec.smoke.body)
        assert answer == {"predictions": ["Adelie"], "model_version": "penguin-classifier/1"}
        # The released image speaks MLflow's scoring protocol and exposes its metrics.
        records = {"dataframe_records": spec.smoke.body["instances"]}
        assert service(estate, "/invocations", records) == answer
        assert text(estate, "/ping") == "\n"
        assert (
            'model_server_requests_total{endpoint="/invocations",model_version="penguin-classifier/1",status="200"}'
            in text(estate, "/metrics")
        )
        assert registry().aliases("penguin-classifier")["champion"] == "1"

        # A new model version, promoted to green under load: no request fails during the switch.
        with Load(estate, spec.smoke.body) as load:
            second = materialize(estate, instance, "penguin_classifier", f"{RELEASE}_candidate", RELEASE)
            time.sleep(0.5)
        assert second.success
        assert load.failed == 0 and load.ok > 20 and load.colors == {"blue", "green"}
        assert service(estate, "/version")["model_version"] == "penguin-classifier/2"
        assert registry().aliases("penguin-classifier")["champion"] == "2"

    # Rollback from the command line: blue (kept up) serves again, the champion follows.
    rolled = governance(estate, "release", "rollback", RELEASE, "--by", "oncall", "--reason", "drill")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert service(estate, "/version") | {"image": ""} == {
        "app_version": "1.0.0",
        "model_version": "penguin-classifier/1",
        "image": "",
        "color": "blue",
    }
    assert registry().aliases("penguin-classifier")["champion"] == "1"

    # Self-heal: the serving container dies; after 2 failed probes it is restarted, and Slack
    # hears about the action (not about the probe that only counted).
    podman("kill", release_container(RELEASE, "blue"))
    slack = LineageBackend()
    try:
        webhook = {"GOVERNANCE_SLACK_WEBHOOK_URL": f"{slack.url}/services/T0/B0/heal-hook-secret"}
        first_probe = governance(estate, "release", "heal", RELEASE, env=webhook)
        assert first_probe.returncode == 1 and first_probe.stdout.startswith("degraded")
        healed = governance(estate, "release", "heal", RELEASE, env=webhook)
        assert healed.returncode == 0 and healed.stdout.startswith("restarted"), healed.stdout
        deadline = time.monotonic() + 20  # alerts are sent on a thread of their own
        while not slack.received and time.monotonic() < deadline:
            time.sleep(0.05)
        texts = [str(message["text"]) for message in slack.received]
        assert len(texts) == 1 and f"self-heal acted: release {RELEASE}" in texts[0], texts
        assert "why: restarted: blue failed 2 probes" in texts[0]
    finally:
        slack.close()
    assert service(estate, "/version")["color"] == "blue"

    status = governance(estate, "release", "status", "--json")
    (report,) = json.loads(status.stdout)
    assert report["name"] == RELEASE and report["active_color"] == "blue"
    assert report["service_url"] == f"http://127.0.0.1:{spec.local.service_port}"
    assert report["colors"]["green"]["versions"]["model_version"] == "penguin-classifier/2"
    assert report["colors"]["blue"]["healthy"] and report["last_decision"]["action"] == "restarted"

    assert decisions() == [
        "release.promoted",
        "release.promoted",
        "release.rolled_back",
        "release.restarted",
    ]

    explained = governance(estate, "release", "explain", RELEASE, "--json")
    assert explained.returncode == 0, explained.stderr
    links = json.loads(explained.stdout)
    kinds = [link["kind"] for link in links]
    assert kinds[:5] == ["service", "color", "image", "model version", "dataset version"]
    assert {"validation", "lineage run", "audit record"} <= set(kinds)
    assert links[1]["ref"] == "blue" and links[3]["ref"] == "penguin-classifier/1"
    assert links[1]["details"]["decision"] == "restarted"  # the color's last switch, not a review
    assert links[2]["details"]["digest"] == report["colors"]["blue"]["versions"]["image"].split("@")[1]
    assert all(link["at"] for link in links[1:])
    lineage_jobs = {link["ref"].split()[0] for link in links if link["kind"] == "lineage run"}
    assert {RELEASE, f"{RELEASE}.candidate", "model_server"} <= lineage_jobs

    down = governance(estate, "release", "down", RELEASE)
    assert down.returncode == 0
    with pytest.raises(OSError):
        service(estate, "/version")


def test_failed_or_unchecked_inputs_never_touch_the_service(estate: Estate, tmp_path: Path) -> None:
    releases = {RELEASE: estate.release(RELEASE).model_dump(mode="json", exclude={"name"})}

    def variant(name: str, edit: Any) -> Estate:
        data = repository_estate_data() | {"releases": releases}
        edit(data)
        return write_estate(data, tmp_path / name)

    def deploy_alone(instance: dg.DagsterInstance) -> str:
        """The candidate and the deploy in a later run of their own, as an operator would."""
        result = materialize(estate, instance, f"{RELEASE}_candidate", RELEASE)
        assert not result.success
        return release_failure(result)

    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize(estate, instance).success
        serving = service(estate, "/version")

        # An image whose blocking check failed (a new build, over its size budget).
        context = tmp_path / "model-server"
        shutil.copytree(MODEL_SERVER, context)
        (context / "app/main.py").write_text((context / "app/main.py").read_text() + "\n# edit\n")

        def small(data: dict[str, Any]) -> None:
            data["images"]["apps"]["model_server"] |= {"context": str(context), "size_budget_mb": 1}

        assert not materialize(variant("small", small), instance, "model_server").success
        assert "model_server.within_size_budget: failed on sha256:" in deploy_alone(instance)
        assert materialize(estate, instance, "model_server").success  # the good image again

        # A model version that failed its gate: it holds no alias either.
        def strict(data: dict[str, Any]) -> None:
            data["models"]["penguin_classifier"]["thresholds"] = {"accuracy": 0.9999}

        assert not materialize(variant("strict", strict), instance, "penguin_classifier").success
        message = deploy_alone(instance)
        assert "penguin_classifier.meets_promotion_policy: failed on 2" in message
        assert "holds neither challenger nor champion" in message

        # A dataset version its suite never ran on (materialized without its check), with a model
        # trained on it that passed its own gate.
        fewer = tmp_path / "fewer.csv"
        fewer.write_text("\n".join(PENGUINS_CSV.read_text().splitlines()[:340]) + "\n")

        def unchecked(data: dict[str, Any]) -> None:
            data["datasets"]["penguins"]["source"] = {"path": str(fewer)}

        unchecked_estate = variant("unchecked", unchecked)
        assert materialize(unchecked_estate, instance, "penguins_raw", "penguins", checks=False).success
        assert materialize(unchecked_estate, instance, "penguin_classifier").success
        message = deploy_alone(instance)
        assert "penguins.matches_expectation_suite: never evaluated on" in message
        assert "penguin_classifier.meets_promotion_policy" not in message  # v3 passed its own gate

    assert service(estate, "/version") == serving  # the service never moved
    assert decisions() == ["release.promoted", "release.refused", "release.refused", "release.refused"]


def test_a_promotion_killed_mid_way_leaves_a_healthy_color_and_the_next_run_reconciles(
    estate: Estate, home: Path, tmp_path: Path
) -> None:
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.local_temp(tempdir=str(home / "dagster")) as instance:
        assert materialize(estate, instance).success
        assert materialize(estate, instance, "penguin_classifier").success  # version 2, not yet served
    serving = service(estate, "/version")
    assert serving["color"] == "blue"

    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "GOVERNANCE_ESTATE": str(estate.path)}
    select = f"{RELEASE}_candidate,{RELEASE}"
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "pipelines.definitions",
    ]
    log = (tmp_path / "killed.log").open("wb")
    run = subprocess.Popen(
        [*command, "--select", select],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    green = release_container(RELEASE, "green")
    deadline = time.monotonic() + 120
    while green not in podman("ps", "--format", "{{.Names}}"):
        assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.log").read_text()[
            -3000:
        ]
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # mid-way: green is starting, the service not yet switched
    run.wait()

    assert service(estate, "/version") == serving  # still blue, still healthy
    assert (
        service(estate, "/predict", estate.release(RELEASE).smoke.body)["model_version"]
        == "penguin-classifier/1"
    )

    with dg.DagsterInstance.local_temp(tempdir=str(home / "dagster")) as instance:
        again = materialize(estate, instance, f"{RELEASE}_candidate", RELEASE)
    assert again.success  # the lock died with the killed run; the state is whole
    assert service(estate, "/version")["color"] == "green"
    assert service(estate, "/version")["model_version"] == "penguin-classifier/2"


def test_approvals_four_eyes_from_the_ui_and_the_cli_then_rollback_job_and_heal_sensor(
    estate: Estate, tmp_path: Path
) -> None:
    """A release that requires approval: its candidate names who launched it; only a listed
    approver who is not that person opens the gate, from the UI's approve job or the CLI; a
    rejection shuts it; every decision is in the audit log."""
    data = repository_estate_data() | {
        "releases": {RELEASE: estate.release(RELEASE).model_dump(mode="json", exclude={"name"})}
    }
    data["releases"][RELEASE] |= {"requires_approval": True, "approvers": ["alice", "bob", "carol"]}
    gated = write_estate(data, tmp_path / "gated")
    defs = build_definitions(gated)

    def decision_job(verb: str, by: str, reason: str) -> dg.ExecuteJobResult:
        config = {"ops": {f"{verb}_{RELEASE}_op": {"config": {"by": by, "reason": reason}}}}
        job = defs.resolve_job_def(f"{verb}_{RELEASE}")
        return job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)

    def failure(result: dg.ExecuteInProcessResult | dg.ExecuteJobResult, step: str) -> str:
        (event,) = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
        return str(event.step_failure_data.error.message)  # type: ignore[union-attr]

    with dg.DagsterInstance.ephemeral() as instance:
        anonymous = materialize(gated, instance)  # no one said who launched it
        assert "must say who launched it" in failure(anonymous, f"{RELEASE}_candidate")

        refused = materialize(gated, instance, f"{RELEASE}_candidate", RELEASE, launched_by="carol")
        assert "approval: no approval for release-" in release_failure(refused)
        own = governance(gated, "release", "approve", RELEASE, "--by", "carol")
        assert own.returncode == 2 and "launched its candidate" in own.stderr, own.stderr
        stranger = decision_job("approve", "mallory", "looks fine")
        assert "not one of its approvers (alice, bob, carol)" in failure(
            stranger, f"approve_{RELEASE}_op"
        )

        assert decision_job("reject", "bob", "accuracy dropped on Dream").success
        rejected = materialize(gated, instance, RELEASE)
        assert "approval: rejected by bob: accuracy dropped on Dream" in release_failure(rejected)
        assert decision_job("approve", "alice", "re-checked the evaluation").success
        promoted = materialize(gated, instance, RELEASE)
        assert promoted.success
        gates = {
            r.data["gate"]: r.data["evidence"]
            for r in promoted.asset_materializations_for_node(RELEASE)[0].metadata["gates"].value.records
        }  # type: ignore[attr-defined]
        assert gates["approval"] == "approved by alice"

        retrained = materialize(
            gated, instance, "penguin_classifier", f"{RELEASE}_candidate", launched_by="alice"
        )
        assert retrained.success
        approved = governance(gated, "release", "approve", RELEASE, "--by", "bob")
        assert approved.returncode == 0 and "approved by bob" in approved.stdout, approved.stderr
        assert materialize(gated, instance, RELEASE).success  # green now serves version 2

        heal = defs.resolve_sensor_def(f"heal_{RELEASE}")

        def tick() -> dg.RunRequest | dg.SkipReason:
            with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
                return heal(context)  # type: ignore[no-any-return]

        healthy = tick()
        assert isinstance(healthy, dg.SkipReason) and str(healthy.skip_message).startswith("healthy")
        # The serving color dies: the first tick counts, the second asks for a heal run and
        # leaves the container as it is; only that run (a Dagster run, audited as one) acts.
        podman("kill", release_container(RELEASE, "green"))
        first = tick()
        assert isinstance(first, dg.SkipReason) and str(first.skip_message).startswith("degraded")
        request = tick()
        assert isinstance(request, dg.RunRequest), request
        assert request.tags[OBSERVED_TAG].startswith("needs action: "), request.tags
        running = podman("inspect", "-f", "{{.State.Running}}", release_container(RELEASE, "green"))
        assert running.strip() == "false"  # the tick did not act
        heal_job = defs.resolve_job_def(f"heal_{RELEASE}")
        queued = instance.create_run_for_job(heal_job, tags=request.tags)
        waiting = tick()  # a requested run not yet finished is not asked for again
        assert isinstance(waiting, dg.SkipReason), waiting
        assert str(waiting.skip_message) == f"waiting for heal run {queued.run_id}"
        instance.delete_run(queued.run_id)
        healed = heal_job.execute_in_process(instance=instance, tags=request.tags)
        assert healed.success
        assert service(gated, "/version")["color"] == "green"
        again = tick()
        assert isinstance(again, dg.SkipReason) and str(again.skip_message).startswith("healthy")

        rollback = defs.resolve_job_def(f"rollback_{RELEASE}").execute_in_process(instance=instance)
        assert rollback.success
    assert service(gated, "/version")["color"] == "blue"
    records = list(open_audit_log(GovernanceHome.resolve().audit_db).records(f"release:{RELEASE}"))
    assert [(r.action, r.actor.split(":")[0]) for r in records] == [
        ("release.candidate", "dagster"), ("release.refused", "dagster"),
        ("release.rejected", "ui"), ("release.refused", "dagster"),
        ("release.approved", "ui"), ("release.promoted", "dagster"),
        ("release.candidate", "dagster"), ("release.approved", "cli"), ("release.promoted", "dagster"),
        ("release.restarted", "dagster"), ("release.rolled_back", "dagster"),
    ]  # fmt: skip
    launchers = [r.versions.get("launched_by") for r in records if r.action == "release.candidate"]
    assert launchers == ["carol", "alice"]

"""The platform at team scale: deploy/docker's Compose stack (Postgres, the MLflow server, the code
server, webserver and daemon, all of the platform's own image by digest) brought up by
`scripts/stack.sh` on podman's Docker API service, every run launched by Dagster's
DockerRunLauncher into a container of its own. Runs are launched through the webserver's GraphQL
API, as the UI does; what they did is read back from the host through the `governance` CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_governance
from tests.services import ComposeStack, compose_stack, podman, sqlite_files

EVENTS = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  __typename
  ... on MessageEvent { message }
  ... on AssetCheckEvaluationPlannedEvent { assetKey { path } checkName }
  ... on AssetCheckEvaluationEvent { evaluation { checkName success } }
  ... on LogsCapturedEvent { fileKey }
} } } }"""
CAPTURED = "query($key: [String!]!) { capturedLogs(logKey: $key) { stderr } }"
RUN_TAGS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }"

# pytest-timeout counts the stack's set-up too: a cold build of the platform's image (about three
# minutes alone, over seven beside CI's other image builds) before the three days' runs.
pytestmark = [pytest.mark.timeout(1500), pytest.mark.runs_for(700)]


@pytest.fixture(scope="module")
def stack(
    image_lab: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    with compose_stack(tmp_path_factory.mktemp("stack"), *image_lab) as up:
        yield up


def test_runs_execute_in_containers_of_their_own_and_land_in_the_shared_stores(
    stack: ComposeStack,
) -> None:
    """Day one: the datasets group, then the model. Day two: the model again, on the state day one
    left (a second version, gated against the first). Each run in its own container of the
    platform's image by digest, every planned check evaluated and passed, and what they did in
    Postgres, the MLflow server and the shared volume, read from the host."""
    days = [["penguins_raw", "penguins"], ["penguin_classifier"], ["penguin_classifier"]]
    runs = []
    for day, assets in enumerate(days):
        run_id = stack.api.launch("governance", assets, {"test": f"compose-{day}"})
        status = stack.api.wait(run_id, 600, poll_s=1)
        events = stack.api.query(EVENTS, id=run_id)["logsForRun"]["events"]
        assert status == "SUCCESS", [e.get("message") for e in events][-20:]
        runs.append((run_id, events))

    containers = set()
    for run_id, events in runs:
        launched = [
            e["message"]
            for e in events
            if "Launching run in a new container" in (e.get("message") or "")
        ]
        assert len(launched) == 1 and launched[0].endswith(f"with image {stack.image}"), launched
        container = launched[0].split("new container ")[1].split()[0]
        tags = {t["key"]: t["value"] for t in stack.api.query(RUN_TAGS, id=run_id)["runOrError"]["tags"]}
        assert tags["docker/container_id"] == container
        inspected = json.loads(podman("container", "inspect", container, storage=stack.storage))[0]
        assert inspected["Config"]["Labels"]["dagster/run_id"] == run_id
        assert inspected["ImageName"] == stack.image and inspected["State"]["ExitCode"] == 0
        containers.add(container)
        planned = {
            e["checkName"] for e in events if e["__typename"] == "AssetCheckEvaluationPlannedEvent"
        }
        evaluated = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
        assert planned and {e["checkName"] for e in evaluated} == planned
        assert all(e["success"] for e in evaluated), evaluated
        # Each step's output, written by the run's container to the shared volume, is what the
        # webserver shows as its logs.
        (captured, *_) = [e["fileKey"] for e in events if e["__typename"] == "LogsCapturedEvent"]
        logs = stack.api.query(CAPTURED, key=[run_id, "compute_logs", captured])["capturedLogs"]
        assert "STEP_START" in (logs["stderr"] or ""), logs
    assert len(containers) == len(runs)

    verified = run_governance("audit", "verify", env=stack.host)
    assert verified.returncode == 0, verified.stderr
    records = json.loads(run_governance("audit", "show", "--json", env=stack.host).stdout)
    actions = {(r["actor"], r["action"]) for r in records}
    (datasets_run, _), (day_one, _), (day_two, _) = runs
    assert {
        (f"dagster:{datasets_run}", "dataset.published"),
        (f"dagster:{datasets_run}", "dataset.checked"),
        (f"dagster:{day_one}", "model.registered"),
        (f"dagster:{day_one}", "model.gated"),
        (f"dagster:{day_two}", "model.gated"),
    } <= actions
    gated = [r["versions"] for r in records if r["action"] == "model.gated"]
    assert [g["model_version"] for g in gated] == ["penguin-classifier/1", "penguin-classifier/2"]

    (model,) = json.loads(run_governance("models", "list", "--json", env=stack.host).stdout)
    versions = {v["version"]: v for v in model["versions"]}
    assert sorted(versions) == ["1", "2"] and versions["2"]["aliases"] == ["challenger"]
    assert versions["2"]["tags"]["dagster.run_id"] == day_two

    lineage = [
        json.loads(line)
        for line in run_governance("lineage", "events", env=stack.host).stdout.splitlines()
    ]
    completed = [e["job"]["name"] for e in lineage if e["eventType"] == "COMPLETE"]
    assert completed.count("penguin_classifier") == 2 and "penguins" in completed

    volume = Path(stack.host["GOVERNANCE_SHARED_DIR"])
    assert (volume / "datasets.git" / "HEAD").is_file() and list((volume / "dvc-remote").rglob("*"))
    assert list((volume / "mlflow").rglob("MLmodel")) and list((volume / "gx").rglob("index.html"))
    assert sqlite_files(volume) == []

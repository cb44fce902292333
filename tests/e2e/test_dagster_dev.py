"""The platform as a user starts it: `scripts/dev.sh` (what `make dev` runs) serves the UI; a person
in Chromium presses *Materialize all*, the estate turns green, and every page the UI links to opens.
The assertions read Dagster's GraphQL API, the one the UI itself reads."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.config import ReleaseSpec, load_estate
from pipelines.definitions import build_definitions
from pipelines.releases import OBSERVED_TAG
from tests.browser import Tour, chromium
from tests.conftest import REPO, repository_estate_data, run_governance
from tests.services import free_port, podman, process_group, release_container

# The whole tour: two cold image builds, three releases, a retrain and a rollback, taking about
# 8 minutes alone and more beside the other pytest worker; the suite's 600 s is per ordinary test.
pytestmark = [pytest.mark.timeout(1500), pytest.mark.runs_for(740)]

LOCATION = "governance"
LOCATIONS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }"
RUN_TAGS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }"
RUNS = "{ runsOrError(limit: 20) { ... on Runs { results { runId } } } }"
JOBS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
FAILURES = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  ... on ExecutionStepFailureEvent { stepKey error { message } }
  ... on RunFailureEvent { message } } } } }"""
JOB_RUNS = """
query($job: String!) {
  runsOrError(filter: {pipelineName: $job}) { ... on Runs { results { runId tags { key value } } } }
}"""
CHECK_EXECUTIONS = """
query($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 1) {
    runId status evaluation { targetMaterialization { runId } }
  }
}"""
LINKS = """
query {
  assetNodes {
    assetKey { path }
    assetMaterializations(limit: 1) { metadataEntries { label ... on UrlMetadataEntry { url } } }
  }
}"""
CHECK_LINKS = """
query($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 1) {
    evaluation { metadataEntries { label ... on UrlMetadataEntry { url } } }
  }
}"""
BLOCKING = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  }
}"""
SCHEDULES = """
query($repo: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repo) {
    ... on Schedules { results { name cronSchedule scheduleState { status } } }
  }
}"""


class Webserver:
    def __init__(self, port: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}/graphql"

    def query(self, text: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
        assert "errors" not in payload, payload
        return dict(payload["data"])

    def run_id(self, prefix: str) -> str:
        """The run whose id starts with `prefix` (what the UI's toast shows)."""
        runs = self.query(RUNS)["runsOrError"]["results"]
        (run_id,) = [run["runId"] for run in runs if run["runId"].startswith(prefix)]
        return str(run_id)

    def wait_for_run(self, run_id: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        status = "QUEUED"
        while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
            time.sleep(1)
            status = self.query(RUN_STATUS, id=run_id)["runOrError"]["status"]
        return status

    def wait_for_success(self, run_id: str, timeout_s: float) -> None:
        """Fails with the steps' own errors: a bare "FAILURE" from a 7-minute run tells nothing."""
        status = self.wait_for_run(run_id, timeout_s)
        if status != "SUCCESS":
            events = self.query(FAILURES, id=run_id)["logsForRun"].get("events", [])
            reasons = [
                f"{event['stepKey']}: {event['error']['message']}"
                if "stepKey" in event
                else event["message"]
                for event in events
                if event
            ]
            raise AssertionError(f"run {run_id} ended {status}:\n" + "\n".join(reasons))

    def wait_for_location(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                data = self.query(LOCATIONS)
                nodes = data["repositoriesOrError"].get("nodes", [])
                if any(node["location"]["name"] == LOCATION for node in nodes):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1)
        raise TimeoutError("the code location did not load")

    def wait_for_job(self, name: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            nodes = self.query(JOBS)["repositoriesOrError"].get("nodes", [])
            if any(job["name"] == name for node in nodes for job in node["jobs"]):
                return
            time.sleep(1)
        raise TimeoutError(f"the code location has no job {name}")


@pytest.fixture
def estate_file(tmp_path: Path) -> Path:
    """The repository's estate as a file of the platform's own, which the test edits as a team
    would edit theirs; its releases serve on free ports (the repository's may be `make dev`'s).
    Without the platform's own image: one machine's `dagster dev` does not need it, and its cold
    1.6 GB build would add minutes to the suite's longest test, beside the apps' builds on two
    cores. It is built and run by tests/e2e/test_docker_compose.py, and materialized with its checks
    by tests/integration/test_lineage.py and test_secrets.py."""
    data = repository_estate_data()
    del data["images"]["apps"]["platform"]
    for release in data["releases"].values():
        release["local"] = {name: free_port() for name in ("service_port", "blue_port", "green_port")}
        release["heal"] = {"failures_before_action": 2}  # two sensor ticks, not three
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def webserver(
    home: Path, tmp_path: Path, estate_file: Path, image_lab: tuple[str, Path]
) -> Iterator[Webserver]:
    port = free_port()
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(home),
        "GOVERNANCE_ESTATE": str(estate_file),
        "DAGSTER_PORT": str(port),
        "GOVERNANCE_SITE_URL": f"http://127.0.0.1:{free_port()}",
        "MLFLOW_PORT": str(free_port()),
    }
    with process_group([str(REPO / "scripts" / "dev.sh")], tmp_path / "dagster-dev.log", env=env):
        server = Webserver(port)
        server.wait_for_location(time.monotonic() + 120)
        try:
            yield server
        finally:  # the release's containers and nginx outlive the run that started them
            run_governance(
                "release", "down", "--all",
                env={"GOVERNANCE_HOME": str(home), "GOVERNANCE_ESTATE": str(estate_file)},
            )  # fmt: skip


def served(release: ReleaseSpec) -> tuple[str, str]:
    """The color and model version the release's service answers with."""
    url = f"http://127.0.0.1:{release.local.service_port}/version"
    with urllib.request.urlopen(url, timeout=10) as response:
        version = json.load(response)
    return version["color"], version["model_version"]


def opens(url: str, attempts: int = 30) -> bool:
    """The page answers 200 (the MLflow UI may still be starting when the run ends)."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return False
        except OSError:
            time.sleep(1)
    return False


def test_estate_materializes_green(
    webserver: Webserver, home: Path, tmp_path: Path, estate_file: Path
) -> None:
    assert (home / "dagster" / "dagster.yaml").is_file()
    with chromium(tmp_path / "tour") as tour:
        _materialize_all_from_the_ui(webserver, home, tour, estate_file)
        _approve_from_the_ui(webserver, home, tour, estate_file)
        _launch_from_ci(webserver, home, estate_file)
    _heal_through_a_run_the_sensor_asks_for(webserver, home, estate_file)


def _materialize_all_from_the_ui(
    webserver: Webserver, home: Path, tour: Tour, estate_file: Path
) -> None:
    # the whole estate: datasets, models, images, releases
    graph = build_definitions(load_estate(estate_file)).resolve_asset_graph()
    # The asset graph is on the Lineage page; Materialize all launches every asset and check.
    assert tour.open(f"{webserver.base_url}/asset-groups") == 200
    tour.dismiss_dagster_welcome()
    tour.page.get_by_role("button", name="Materialize all").click()
    run_id = webserver.run_id(tour.launched_run_prefix())
    tour.shot("materialize-all-launched")
    tour.step_away()
    # the estate's two cold image builds run beside the other workers' (CI measured 414 s)
    webserver.wait_for_success(run_id, 900)
    assert tour.open(f"{webserver.base_url}/asset-groups") == 200
    tour.shot("estate-materialized")

    for check_key in graph.asset_check_keys:
        key = {"path": [check_key.asset_key.to_user_string()]}
        (execution,) = webserver.query(CHECK_EXECUTIONS, key=key, name=check_key.name)[
            "assetCheckExecutions"
        ]
        assert execution == {
            "runId": run_id,
            "status": "SUCCEEDED",
            "evaluation": {"targetMaterialization": {"runId": run_id}},
        }
        node = webserver.query(BLOCKING, key=key)["assetNodeOrError"]
        assert {"name": check_key.name, "blocking": True} in node["assetChecksOrError"]["checks"]
    repo = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
    schedules = webserver.query(SCHEDULES, repo=repo)["schedulesOrError"]["results"]
    assert sorted(schedules, key=lambda s: s["name"]) == [
        {
            "name": "daily_dataset_quality",
            "cronSchedule": "0 6 * * *",
            "scheduleState": {"status": "RUNNING"},
        },
        {
            "name": "daily_housekeeping",
            "cronSchedule": "30 5 * * *",
            "scheduleState": {"status": "RUNNING"},
        },
    ]
    # Every link in the metadata opens over HTTP (a browser follows no file:// link from the UI):
    # Data Docs, the lineage graph and the provenance page on the site, MLflow's pages on its UI.
    links = {
        f"{'/'.join(node['assetKey']['path'])}.{entry['label']}": entry["url"]
        for node in webserver.query(LINKS)["assetNodes"]
        for materialization in node["assetMaterializations"]
        for entry in materialization["metadataEntries"]
        if "url" in entry
    }
    for check_key in graph.asset_check_keys:
        key = {"path": [check_key.asset_key.to_user_string()]}
        (execution,) = webserver.query(CHECK_LINKS, key=key, name=check_key.name)["assetCheckExecutions"]
        for entry in execution["evaluation"]["metadataEntries"]:
            if "url" in entry:
                links[f"{check_key.to_user_string()}.{entry['label']}"] = entry["url"]
    assert {
        "penguins.data_docs",
        "penguins.lineage_graph",
        "penguins:matches_expectation_suite.data_docs",
        "penguin_classifier.mlflow_run",
        "penguin_classifier.mlflow_model_version",
        "penguin_classifier.lineage_explorer",
        "penguin_service.provenance_page",
        "penguin_web.provenance_page",
    } <= set(links), sorted(links)
    for label, url in links.items():
        assert url.startswith("http://127.0.0.1:"), (label, url)
        assert opens(url), (label, url)  # the MLflow UI may still be starting
        assert tour.open(url) == 200, (label, url)
    assert tour.open(links["penguins:matches_expectation_suite.data_docs"]) == 200
    assert "penguins" in tour.text()
    tour.shot("data-docs")
    assert tour.open(links["penguin_service.provenance_page"]) == 200
    assert "model version" in tour.text() and "dataset version" in tour.text()
    tour.shot("release-provenance")
    assert tour.open(links["penguins.lineage_graph"]) == 200
    tour.shot("lineage-graph")

    # The dataset's check shows its expectation table; the release its gates.
    assert tour.open(f"{webserver.base_url}/assets/penguins?view=checks") == 200
    tour.page.get_by_text("23 expectations passed on 333 rows").first.wait_for()
    assert "expect_column_values_to_be_in_set" in tour.text()
    tour.shot("dataset-check")
    assert tour.open(f"{webserver.base_url}/assets/penguin_service") == 200
    tour.page.get_by_text("every gate passed; blue serves").first.wait_for()
    assert "penguins.matches_expectation_suite" in tour.text() and "idle color smoke test" in tour.text()
    _show_gates(tour)
    tour.shot("release-gates")

    # The release serves predictions through its service (nginx on the estate's service port).
    service = load_estate(estate_file).release("penguin_service")
    request = urllib.request.Request(
        f"http://127.0.0.1:{service.local.service_port}/predict",
        data=json.dumps(service.smoke.body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response) == {
            "predictions": ["Adelie"],
            "model_version": "penguin-classifier/1",
        }
    # A person opening the web release's URL gets a prediction, with the model that answered.
    web = load_estate(estate_file).release("penguin_web")
    with urllib.request.urlopen(
        f"http://127.0.0.1:{web.local.service_port}{web.smoke.path}", timeout=15
    ) as response:
        html = response.read().decode()
    assert 'data-testid="species">Adelie<' in html
    assert 'data-testid="model-version">penguin-classifier/1<' in html
    # Retraining with everything downstream is one job, one click; a rollback is another job.
    jobs = f"{webserver.base_url}/locations/{LOCATION}/jobs"
    assert tour.open(f"{jobs}/retrain_penguin_classifier") == 200
    tour.page.get_by_role("button", name="Materialize all").first.click()
    retrain = webserver.run_id(tour.launched_run_prefix())
    tour.shot("retrain-job")
    tour.step_away()
    webserver.wait_for_success(retrain, 300)
    assert served(service) == ("green", "penguin-classifier/2")
    # The lineage explorer shows both trainings' versions of the model side by side.
    assert tour.open(links["penguin_classifier.lineage_explorer"]) == 200
    model = tour.page.locator(".node", has_text="models/penguin-classifier")
    assert model.locator(".version").all_inner_texts() == ["1", "2"]
    # drawn from the dataset it was trained on to the model, and on to the release's candidate
    assert tour.page.locator('#edges path[data-to$="models/penguin-classifier"]').count() == 1
    assert tour.page.locator('#edges path[data-from$="models/penguin-classifier"]').count() >= 1
    tour.shot("lineage-explorer")
    assert tour.open(f"{jobs}/rollback_{service.name}/playground") == 200
    tour.page.get_by_role("button", name="Launch Run").click()
    rollback = tour.launched_run_id()
    webserver.wait_for_success(rollback, 120)
    tour.shot("rollback-run")
    assert served(service) == ("blue", "penguin-classifier/1")

    # The run wrote into this home's DVC repository and MLflow store, nowhere else.
    assert (home / "datasets" / "data" / "penguins.csv.dvc").is_file()
    assert (home / "mlflow" / "mlflow.db").is_file()


def _approve_from_the_ui(webserver: Webserver, home: Path, tour: Tour, estate_file: Path) -> None:
    """A team turns approval on for the model service and reloads the code location; bob proposes
    the candidate from the CLI, may not approve it himself, and alice approves it in the UI."""
    service = load_estate(estate_file).release("penguin_service")
    data = yaml.safe_load(estate_file.read_text())
    data["releases"][service.name] |= {"requires_approval": True, "approvers": ["alice", "bob"]}
    estate_file.write_text(yaml.safe_dump(data, sort_keys=False))
    assert tour.open(f"{webserver.base_url}/locations") == 200
    tour.page.get_by_role("button", name=re.compile(r"\bReload$")).click()  # not "Reload all"
    webserver.wait_for_job(f"approve_{service.name}", 120)

    governance = {"GOVERNANCE_HOME": str(home), "GOVERNANCE_ESTATE": str(estate_file)}
    proposed = run_governance(
        "release", "launch", service.name, "--candidate-only", "--by", "bob",
        "--dagster-url", webserver.base_url, env=governance,
    )  # fmt: skip
    assert proposed.returncode == 0, proposed.stdout + proposed.stderr

    approve = f"{webserver.base_url}/locations/{LOCATION}/jobs/approve_{service.name}/playground"
    for who, verdict in (("bob", "FAILURE"), ("alice", "SUCCESS")):
        assert tour.open(approve) == 200
        tour.type_run_config(
            f"ops:\n  approve_{service.name}_op:\n    config:\n"
            f"      by: {who}\n      reason: evaluated on the holdout set\n"
        )
        tour.page.get_by_role("button", name="Launch Run").click()
        decision = tour.launched_run_id()
        assert webserver.wait_for_run(decision, 120) == verdict
        if who == "bob":  # four eyes: the one who launched the candidate may not approve it
            refusal = "bob may not decide on release penguin_service: they launched its candidate"
            tour.page.get_by_text(refusal).first.wait_for()
            tour.shot("approval-refused")
    tour.shot("approved")

    # The release itself, from its asset page: the approval is one of its gates.
    assert tour.open(f"{webserver.base_url}/assets/{service.name}") == 200
    tour.page.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
    release = webserver.run_id(tour.launched_run_prefix())
    tour.step_away()
    webserver.wait_for_success(release, 300)
    assert served(service) == ("green", "penguin-classifier/2")
    assert tour.open(f"{webserver.base_url}/assets/{service.name}") == 200
    tour.page.get_by_text("approved by alice").first.wait_for()
    _show_gates(tour)
    tour.shot("approved-release")
    shown = run_governance(
        "audit", "show", "--subject", f"release:{service.name}", "--json", env=governance
    )
    assert shown.returncode == 0, shown.stderr
    records = json.loads(shown.stdout)
    (proposal,) = [r for r in records if r["versions"].get("launched_by") == "bob"]
    (approved,) = [r for r in records if r["action"] == "release.approved"]
    assert approved["actor"] == "ui:alice" and approved["reasons"] == ["evaluated on the holdout set"]
    assert approved["versions"] == {"release": proposal["versions"]["release"]}
    promoted = [r for r in records if r["action"] == "release.promoted"][-1]
    assert promoted["versions"]["release"] == proposal["versions"]["release"]
    assert "approval: approved by alice" in promoted["reasons"]


# The right edge of an element, and of the nearest box around it that clips or scrolls it.
EDGES = """element => {
    let box = element.parentElement;
    while (box && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
    return [element.getBoundingClientRect().right, (box || document.body).getBoundingClientRect().right];
}"""


def _show_gates(tour: Tour) -> None:
    """The release's gates table, scrolled into view: all of it, evidence included, is on the page
    (a digest or run id the browser cannot wrap once pushed its evidence out of sight)."""
    gates = tour.page.locator("table", has_text="evidence").last
    gates.scroll_into_view_if_needed()
    right, visible = gates.evaluate(EDGES)
    assert right <= visible + 1, f"the gates table ends at {right}px, out of sight after {visible}px"


def _launch_from_ci(webserver: Webserver, home: Path, estate_file: Path) -> None:
    """CI deploys the same way: the release's assets launched through the API, its gates applied."""
    governance = {"GOVERNANCE_HOME": str(home), "GOVERNANCE_ESTATE": str(estate_file)}
    deployed = run_governance(
        "release", "launch", "penguin_service", "--dagster-url", webserver.base_url,
        "--tag", "ci/run=42", env=governance,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    run_url = deployed.stdout.splitlines()[0].removeprefix("launched ")
    assert run_url.startswith(f"{webserver.base_url}/runs/") and "SUCCESS" in deployed.stdout
    tags = webserver.query(RUN_TAGS, id=run_url.rsplit("/", 1)[1])["runOrError"]["tags"]
    assert {"key": "ci/run", "value": "42"} in tags


def _heal_through_a_run_the_sensor_asks_for(webserver: Webserver, home: Path, estate_file: Path) -> None:
    """The daemon's heal sensor: the serving container dies; two ticks later the sensor has asked
    for a run of the heal job (its tick only probes), and that run, launched by the daemon like
    any other, restarts the container; the audit record names the run. (The sensor also asked for
    runs that scaled down each previous color, 30 s after each promotion.)"""
    service = load_estate(estate_file).release("penguin_service")
    color, model = served(service)
    podman("kill", release_container(service.name, color))
    job = f"heal_{service.name}"

    def observed() -> list[tuple[str, dict[str, str]]]:
        runs = webserver.query(JOB_RUNS, job=job)["runsOrError"]["results"]
        tagged = [(r["runId"], {t["key"]: t["value"] for t in r["tags"]}) for r in runs]
        return [(run_id, tags) for run_id, tags in tagged if "(2/2)" in tags[OBSERVED_TAG]]

    deadline = time.monotonic() + 180  # two 30 s ticks, and the daemon's own pace
    failing = observed()
    while not failing and time.monotonic() < deadline:
        time.sleep(2)
        failing = observed()
    assert len(failing) == 1, f"the sensor asked for {len(failing)} runs of {job} after 2 failures"
    ((run_id, tags),) = failing
    assert tags["dagster/sensor_name"] == job and tags[OBSERVED_TAG].startswith("needs action: ")
    webserver.wait_for_success(run_id, 180)
    assert served(service) == (color, model)
    governance = {"GOVERNANCE_HOME": str(home), "GOVERNANCE_ESTATE": str(estate_file)}
    shown = run_governance(
        "audit", "show", "--subject", f"release:{service.name}", "--json", env=governance
    )
    restarted = [r for r in json.loads(shown.stdout) if r["action"] == "release.restarted"]
    assert [r["actor"] for r in restarted] == [f"dagster:{run_id}"]

"""The platform as a user starts it: `scripts/dev.sh` (what `make dev` runs) serves the UI, and the
estate materializes green through the same GraphQL API the UI uses."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.config import Estate, load_estate
from pipelines.definitions import defs
from tests.conftest import ESTATE_FILE, REPO, run_governance
from tests.services import free_port, process_group

LOCATION = "governance"
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
LOCATIONS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }"
RUN_TAGS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }"
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
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


@pytest.fixture
def webserver(home: Path, tmp_path: Path, image_lab: tuple[str, Path]) -> Iterator[Webserver]:
    port = free_port()
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(home),
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
            run_governance("release", "down", "--all", env={"GOVERNANCE_HOME": str(home)})


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


def defs_estate() -> Estate:
    return load_estate(ESTATE_FILE)


def test_estate_materializes_green(webserver: Webserver, home: Path) -> None:
    assert (home / "dagster" / "dagster.yaml").is_file()
    graph = defs.resolve_asset_graph()  # the whole estate: datasets, models, images
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key.to_user_string()]} for key in graph.get_all_asset_keys()],
            "assetCheckSelection": [
                {"assetKey": {"path": [key.asset_key.to_user_string()]}, "name": key.name}
                for key in graph.asset_check_keys
            ],
        },
    }
    launched = webserver.query(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + 420
    status = "QUEUED"
    while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(1)
        status = webserver.query(RUN_STATUS, id=run_id)["runOrError"]["status"]
    assert status == "SUCCESS"

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
    assert schedules == [
        {
            "name": "daily_dataset_quality",
            "cronSchedule": "0 6 * * *",
            "scheduleState": {"status": "RUNNING"},
        }
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
        "penguin_service.provenance_page",
        "penguin_web.provenance_page",
    } <= set(links), sorted(links)
    for label, url in links.items():
        assert url.startswith("http://127.0.0.1:"), (label, url)
        assert opens(url), (label, url)

    # The release serves predictions through its service (nginx on the estate's service port).
    service = defs_estate().release("penguin_service")
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
    web = defs_estate().release("penguin_web")
    with urllib.request.urlopen(
        f"http://127.0.0.1:{web.local.service_port}{web.smoke.path}", timeout=15
    ) as response:
        html = response.read().decode()
    assert 'data-testid="species">Adelie<' in html
    assert 'data-testid="model-version">penguin-classifier/1<' in html
    # The run wrote into this home's DVC repository and MLflow store, nowhere else.
    assert (home / "datasets" / "data" / "penguins.csv.dvc").is_file()
    assert (home / "mlflow" / "mlflow.db").is_file()

    # CI deploys the same way: the release's assets launched through the API, its gates applied.
    deployed = run_governance(
        "release", "launch", "penguin_service", "--dagster-url", webserver.base_url,
        "--tag", "ci/run=42", env={"GOVERNANCE_HOME": str(home)},
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    run_url = deployed.stdout.splitlines()[0].removeprefix("launched ")
    assert run_url.startswith(f"{webserver.base_url}/runs/") and "SUCCESS" in deployed.stdout
    tags = webserver.query(RUN_TAGS, id=run_url.rsplit("/", 1)[1])["runOrError"]["tags"]
    assert {"key": "ci/run", "value": "42"} in tags

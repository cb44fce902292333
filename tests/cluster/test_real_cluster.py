"""The Kubernetes scenario on a real cluster: the one in $KUBECONFIG (an administrator's), when it is
set. Otherwise the module is reported as not run, never passed (and where a cluster is required,
GOVERNANCE_REQUIRE_CLUSTER=1 as in CI, it is an error): the API server double
(tests/integration/test_kubernetes_target.py) runs the same scenario on every machine, and CI runs
this one on a kind cluster (.github/workflows/cicd.yml, job `k8s`).

From an empty namespace: `release bootstrap` as the administrator; two model versions trained and
registered on a real MLflow server that the pods reach; then, as the deployer ServiceAccount the
bootstrap created (a token from the TokenRequest API), promote one version, promote the next (the
switch), roll back, and find no drift. Needs, besides $KUBECONFIG:
- GOVERNANCE_TEST_IMAGE: the model server image by digest, pullable by the cluster;
- GOVERNANCE_TEST_MLFLOW_URL: an `mlflow server` with proxied artifacts, reachable at that URL from
  this machine and from the pods;
- GOVERNANCE_TEST_PULL_SECRET (optional): a `.dockerconfigjson` the pods pull the image with.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECONFIG = os.environ.get("KUBECONFIG", "")
if not KUBECONFIG and os.environ.get("GOVERNANCE_REQUIRE_CLUSTER"):
    raise RuntimeError("GOVERNANCE_REQUIRE_CLUSTER is set, but $KUBECONFIG names no cluster")
if not KUBECONFIG:
    pytest.skip(
        "not run: no cluster ($KUBECONFIG is not set); the API server double runs this scenario, "
        "CI runs it on kind",
        allow_module_level=True,
    )

from governance.audit.store import AuditTrail, open_audit_log  # noqa: E402
from governance.config import Estate  # noqa: E402
from governance.home import GovernanceHome  # noqa: E402
from governance.models.registry import ModelRegistry  # noqa: E402
from governance.models.settings import mlflow_settings  # noqa: E402
from governance.notify.alerts import Alerts  # noqa: E402
from governance.notify.slack import SlackNotifier  # noqa: E402
from governance.releases.controller import Controller  # noqa: E402
from governance.releases.kubernetes import KubernetesTarget  # noqa: E402
from governance.releases.state import FileStateStore  # noqa: E402
from tests.conftest import REPO, repository_estate_data, run_governance, write_estate  # noqa: E402
from tests.release_evidence import RELEASE, candidate, passing, required  # noqa: E402

NAMESPACE = "governance"  # the local overlay's


def needed(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"a cluster is configured ($KUBECONFIG) but {name} is not set")
    return value


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    """The local overlay, with the pods' MLflow server set to the one the test registers on."""
    directory = tmp_path / "overlay"
    directory.mkdir()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(REPO / "deploy/k8s/overlays/local", directory)],
        "configMapGenerator": [
            {
                "name": "penguins-model-source",
                "behavior": "merge",
                "literals": [f"MLFLOW_TRACKING_URI={needed('GOVERNANCE_TEST_MLFLOW_URL')}"],
            }
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


@pytest.fixture
def estate(overlay: Path, tmp_path: Path) -> Estate:
    data = repository_estate_data()
    data["releases"][RELEASE]["target"] = "kubernetes"
    data["releases"][RELEASE]["kubernetes"] = {
        **data["releases"][RELEASE]["kubernetes"],
        "overlay": str(overlay),
        "namespace": NAMESPACE,
    }
    data["releases"][RELEASE]["ready_timeout_s"] = 300  # image pull and model download
    return write_estate(data, tmp_path / "estate")


@pytest.fixture
def installed(estate: Estate) -> Iterator[None]:
    """`release bootstrap` on the empty namespace, as the administrator; the namespace is deleted
    afterwards."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=KUBECONFIG)  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    boot = run_governance(
        "--estate", str(estate.path), "release", "bootstrap", RELEASE, "--by", "ci", timeout_s=300
    )
    assert boot.returncode == 0, boot.stdout + boot.stderr
    secret = os.environ.get("GOVERNANCE_TEST_PULL_SECRET")
    if secret:
        core.create_namespaced_secret(
            NAMESPACE,
            {
                "metadata": {"name": "pull"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": secret},
            },
        )
        core.patch_namespaced_service_account(
            "penguins-runtime", NAMESPACE, {"imagePullSecrets": [{"name": "pull"}]}
        )
    try:
        yield
    finally:
        core.delete_namespace(NAMESPACE)


@pytest.fixture
def deployer_kubeconfig(installed: None, tmp_path: Path) -> Path:
    """A kubeconfig for the deployer ServiceAccount the bootstrap created: the release controller
    runs with exactly its Role, as it would in the cluster."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=KUBECONFIG)  # type: ignore[no-untyped-call]
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        "penguins-deployer", NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    )
    admin = yaml.safe_load(Path(KUBECONFIG).read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    path = tmp_path / "deployer-kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "deployer", "user": {"token": token.status.token}}],
                "contexts": [
                    {"name": "deployer", "context": {"cluster": cluster["name"], "user": "deployer"}}
                ],
                "current-context": "deployer",
            }
        )
    )
    return path


@pytest.fixture
def versions(estate: Estate) -> tuple[ModelRegistry, list[str]]:
    """Two versions of the classifier registered on the MLflow server the pods fetch from."""
    import pandas as pd

    from governance.models.training import train_and_register
    from governance.plugins import load_callable

    spec = estate.model("penguin_classifier")
    raw = pd.read_csv(Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv"))))
    frame = load_callable(estate.dataset("penguins").cleaner)(raw)
    registry = ModelRegistry(
        mlflow_settings(GovernanceHome.resolve(), needed("GOVERNANCE_TEST_MLFLOW_URL"))
    )
    trained = [
        train_and_register(
            spec, frame, dataset_md5=f"md5-{n}", dataset_source="ci", code_version=uuid.uuid4().hex,
            registry=registry, tags={},
        ).version
        for n in range(2)
    ]  # fmt: skip
    return registry, trained


def test_promote_switch_and_rollback_on_a_real_cluster(
    estate: Estate,
    deployer_kubeconfig: Path,
    versions: tuple[ModelRegistry, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, (first, second) = versions
    image = needed("GOVERNANCE_TEST_IMAGE")
    monkeypatch.setenv("KUBECONFIG", str(deployer_kubeconfig))
    spec = estate.release(RELEASE)
    assert spec.kubernetes is not None
    home = GovernanceHome.resolve()
    target = KubernetesTarget(
        spec,
        spec.kubernetes,
        home.dir("releases") / RELEASE,
        lambda c: registry.digest(c.model.name, c.model.version),
    )
    controller = Controller(
        spec,
        target,
        FileStateStore(home.dir("releases") / RELEASE),
        AuditTrail(open_audit_log(home.audit_db), "test:cluster"),
        Alerts(SlackNotifier(None), home.root / "alerts.db", 3600),
        lambda served: None,
    )

    served: list[dict[str, Any]] = []
    for version in (first, second):
        c = candidate(image, version)
        outcome = controller.promote(c, required(c), passing)
        assert outcome.decision.action == "promoted", outcome.decision.reasons
        answer = target.probe(None, "/version")
        assert answer.ok, answer.detail
        served.append(answer.body)
    assert [s["model_version"] for s in served] == [f"penguin-classifier/{v}" for v in (first, second)]
    assert served[0]["color"] != served[1]["color"]

    rolled = controller.rollback("drill on a real cluster")
    assert rolled.decision.action == "rolled back", rolled.decision.reasons
    back = target.probe(None, "/version")
    assert back.ok and back.body["color"] == served[0]["color"]
    scored = target.probe(None, "/invocations", body={"dataframe_records": spec.smoke.body["instances"]})
    assert scored.ok and scored.body["model_version"] == f"penguin-classifier/{first}"

    status = run_governance("--estate", str(estate.path), "release", "status", "--json")
    assert status.returncode == 0, status.stderr
    (report,) = json.loads(status.stdout)
    assert report["drift"] == [], report["drift"]

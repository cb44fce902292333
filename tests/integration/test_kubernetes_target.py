"""The Kubernetes target: the Kustomize overlays render and validate against the Kubernetes
schemas, and the controller promotes and rolls back through the official client against the API
server test double (tests/k8s_apiserver.py), whose pods proxy to real model-server processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.audit.store import AuditTrail, open_audit_log
from governance.config import Estate
from governance.errors import PermanentError
from governance.home import GovernanceHome
from governance.notify.alerts import Alerts
from governance.notify.slack import SlackNotifier
from governance.releases.candidate import Candidate
from governance.releases.controller import Controller
from governance.releases.gates import CheckEvidence, Evidence, required_checks
from governance.releases.kubernetes import KubernetesTarget
from governance.releases.state import StateStore
from tests.conftest import REPO, repository_estate_data, write_estate
from tests.k8s_apiserver import ApiServer
from tests.services import free_port, process_group, wait_http

OVERLAYS = REPO / "deploy/k8s/overlays"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
RELEASE = "penguin_service"
DIGEST = "sha256:" + "ab" * 32


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [KUBECTL, "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True, check=True
    )
    return list(yaml.safe_load_all(out.stdout))


@pytest.mark.parametrize("overlay", ["local", "staging", "prod"])
def test_overlays_render_and_validate_against_the_kubernetes_schemas(overlay: str) -> None:
    import kubernetes_validate

    objects = render(overlay)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert set(deployments) == {"penguins-blue", "penguins-green"}
    for color, deployment in ((n.rsplit("-", 1)[1], d) for n, d in deployments.items()):
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"]["color"] == color
        assert deployment["spec"]["selector"]["matchLabels"]["color"] == color
        (container,) = pod["spec"]["containers"]
        assert "@sha256:" in container["image"]
        assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (service,) = by_kind["Service"]
    assert set(service["spec"]["selector"]) == {"app", "color"}
    hpas = by_kind["HorizontalPodAutoscaler"]
    assert {h["apiVersion"] for h in hpas} == {"autoscaling/v2"}
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == set(deployments)
    assert len(by_kind["PodDisruptionBudget"]) == 2
    (role,) = by_kind["Role"]
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs <= {"get", "list", "patch"}  # no create, delete, update or wildcard
    assert by_kind["RoleBinding"][0]["roleRef"]["name"] == role["metadata"]["name"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow scikit-learn model directory of the sample classifier."""
    import mlflow.sklearn
    import pandas as pd

    from governance.plugins import load_callable

    raw = pd.read_csv(Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv"))))
    estate = write_estate(repository_estate_data(), tmp_path_factory.mktemp("estate"))
    frame = load_callable(estate.dataset("penguins").cleaner)(raw)
    train = load_callable(estate.model("penguin_classifier").trainer)
    model = train(frame.drop(columns=["species"]), frame["species"], params={"max_iter": 1000}, seed=42)
    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.sklearn.save_model(model, str(path))
    return path


@pytest.fixture
def cluster(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """The double, seeded with the rendered local overlay; each Deployment's pods are one real
    model-server process answering as that color."""
    with (
        process_group(*_server("blue", model_dir, tmp_path)) as blue,
        process_group(*_server("green", model_dir, tmp_path)) as green,
    ):
        backends = {}
        for color, process in (("blue", blue), ("green", green)):
            url = f"http://127.0.0.1:{process.args[-1]}"  # type: ignore[index]
            wait_http(url + "/readyz", process, tmp_path / f"{color}.log", timeout=60)
            backends[f"penguins-{color}"] = url
        manifests = subprocess.run(
            [KUBECTL, "kustomize", str(OVERLAYS / "local")], capture_output=True, text=True, check=True
        ).stdout
        server = ApiServer(manifests, backends)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(server.kubeconfig())
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield server
        server.close()


def _server(color: str, model_dir: Path, tmp_path: Path) -> tuple[list[str], Path, dict[str, str]]:
    port = str(free_port())
    env = {
        **os.environ,
        "PORT": port,
        "HOST": "127.0.0.1",
        "COLOR": color,
        "MODEL_DIR": str(model_dir),
        "MODEL_VERSION": "penguin-classifier/1",
    }
    # The trailing "--port" only carries the port for the fixture; `python -m app` reads $PORT.
    return (
        [sys.executable, "-m", "app", "--port", port],
        tmp_path / f"{color}.log",
        {**env, "PYTHONPATH": str(REPO / "examples/penguins/apps/model-server")},
    )


def k8s_estate(tmp_path: Path, app: str = "penguins") -> Estate:
    data = repository_estate_data()
    data["releases"][RELEASE]["target"] = "kubernetes"
    data["releases"][RELEASE]["kubernetes"]["app"] = app
    return write_estate(data, tmp_path / "estate")


def controller(estate: Estate, served: list[Candidate]) -> tuple[Controller, KubernetesTarget]:
    spec = estate.release(RELEASE)
    assert spec.kubernetes is not None
    home = GovernanceHome.resolve()
    target = KubernetesTarget(spec, spec.kubernetes, home.dir("releases") / RELEASE)
    trail = AuditTrail(open_audit_log(home.audit_db), "test:k8s")
    return Controller(
        spec,
        target,
        StateStore(home.dir("releases") / RELEASE),
        trail,
        Alerts(SlackNotifier(None), home.root / "alerts.db", 3600),
        served.append,
    ), target


def candidate(version: str) -> Candidate:
    return Candidate(
        RELEASE,
        "model_server",
        f"registry.example.com/penguins/model-server@{DIGEST}",
        DIGEST,
        "penguin_classifier",
        "penguin-classifier",
        version,
        "penguins",
        "md5-" + version,
        "sha256:manifests",
    )


def passing(c: Candidate) -> Evidence:
    checks = [
        CheckEvidence(r.asset, r.check, r.version, True, time.time())
        for r in required_checks(
            c, {"penguins": ["suite"], "penguin_classifier": ["gate"], "model_server": ["smoke"]}
        )
    ]
    return Evidence(checks, ["challenger"], smoke_ok=None)


def required(c: Candidate) -> Any:
    return required_checks(
        c, {"penguins": ["suite"], "penguin_classifier": ["gate"], "model_server": ["smoke"]}
    )


def test_promote_patches_the_idle_deployment_and_switches_the_selector(
    cluster: ApiServer, tmp_path: Path
) -> None:
    served: list[Candidate] = []
    ctl, target = controller(k8s_estate(tmp_path), served)
    assert target.active_color() == "blue"  # as the manifests ship

    # Another writer touches the Service between our read and our patch: we get 409, re-read, win.
    conflicts = {"left": 1}

    def concurrent_writer(kind: str, name: str) -> None:
        if kind == "services" and conflicts["left"]:
            conflicts["left"] -= 1
            cluster.write(
                "services",
                "governance",
                name,
                lambda s: s | {"metadata": s["metadata"] | {"annotations": {"touched": "yes"}}},
            )

    cluster.before_patch = concurrent_writer
    outcome = ctl.promote(candidate("2"), required(candidate("2")), passing)
    assert outcome.decision.action == "promoted", outcome.decision.reasons
    assert outcome.decision.active_color == "green" and target.active_color() == "green"
    assert ("PATCH", "/api/v1/namespaces/governance/services/penguins", 409) in cluster.responses

    green = cluster.get("deployments", "governance", "penguins-green")
    assert green is not None
    (container,) = green["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.example.com/penguins/model-server@{DIGEST}"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_VERSION"] == "penguin-classifier/2" and env["MODEL_DIR"] == "/model/2"
    service = cluster.get("services", "governance", "penguins")
    assert service is not None and service["spec"]["selector"] == {"app": "penguins", "color": "green"}
    assert service["metadata"]["annotations"] == {"touched": "yes"}  # the other writer's change survived
    endpoints = cluster.get("endpoints", "governance", "penguins")
    assert endpoints is not None
    assert {a["targetRef"]["name"].rsplit("-", 2)[0] for a in endpoints["subsets"][0]["addresses"]} == {
        "penguins-green"
    }
    through_service = target.probe(None, "/version")
    assert through_service.ok and through_service.body["color"] == "green"
    assert [c.model_version for c in served] == ["2"]

    rolled = ctl.rollback("drill")
    assert rolled.decision.action == "rolled back" and target.active_color() == "blue"
    assert target.probe(None, "/version").body["color"] == "blue"


def test_missing_objects_are_permanent_errors_naming_the_404(cluster: ApiServer, tmp_path: Path) -> None:
    _, target = controller(k8s_estate(tmp_path, app="nonexistent"), [])
    with pytest.raises(PermanentError, match=r"Kubernetes API 404"):
        target.active_color()


def test_requests_without_the_token_are_refused(cluster: ApiServer) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            f"{cluster.url}/api/v1/namespaces/governance/services/penguins", timeout=5
        )
    assert refused.value.code == 401

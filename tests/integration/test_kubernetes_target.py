"""The Kubernetes target: the Kustomize overlays render and validate against the Kubernetes
schemas, and the controller promotes and rolls back through the official client against the API
server test double (tests/k8s_apiserver.py), whose pods proxy to real model-server processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
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
from governance.releases.kubernetes import KubernetesTarget
from governance.releases.state import FileStateStore
from tests.conftest import REPO, repository_estate_data, run_governance, write_estate
from tests.k8s_apiserver import ADMIN_TOKEN, ApiServer
from tests.release_evidence import RELEASE, passing, required
from tests.release_evidence import candidate as release_candidate
from tests.services import model_server

OVERLAYS = REPO / "deploy/k8s/overlays"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
DIGEST = "sha256:" + "ab" * 32
MODEL_DIGEST = "sha256:" + "cd" * 32


def rendered(overlay: str = "local") -> str:
    return subprocess.run(
        [KUBECTL, "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True, check=True
    ).stdout


def render(overlay: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(rendered(overlay)))


RECOMMENDED = {f"app.kubernetes.io/{key}" for key in ("name", "instance", "version", "component", "part-of", "managed-by")}  # fmt: skip


@pytest.mark.parametrize("overlay", ["local", "staging", "prod"])
def test_overlays_render_and_validate_against_the_kubernetes_schemas(overlay: str) -> None:
    import kubernetes_validate

    objects = render(overlay)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
        assert set(obj["metadata"].get("labels", {})) >= RECOMMENDED, obj["metadata"]["name"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert set(deployments) == {"penguins-blue", "penguins-green"}
    for color, deployment in ((n.rsplit("-", 1)[1], d) for n, d in deployments.items()):
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"]["color"] == color
        assert set(pod["metadata"]["labels"]) >= RECOMMENDED
        assert deployment["spec"]["selector"]["matchLabels"]["color"] == color
        (container,) = pod["spec"]["containers"]
        assert "@sha256:" in container["image"]
        assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    assert set(services) == {"penguins", "penguins-preview"}
    assert {s["spec"]["selector"]["color"] for s in services.values()} == {"blue", "green"}
    hpas = by_kind["HorizontalPodAutoscaler"]
    assert {h["apiVersion"] for h in hpas} == {"autoscaling/v2"}
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == set(deployments)
    for hpa in hpas:
        assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert len(by_kind["PodDisruptionBudget"]) == 2
    (role,) = by_kind["Role"]
    for rule in role["rules"]:  # no delete, update, watch or wildcard; create only to POST a probe
        assert set(rule["verbs"]) <= {"get", "list", "patch"} | (
            {"create"} if rule["resources"] == ["services/proxy"] else set()
        ), rule
    assert by_kind["RoleBinding"][0]["roleRef"]["name"] == role["metadata"]["name"]


@pytest.mark.parametrize("overlay", ["local", "staging", "prod"])
def test_no_manifest_references_an_object_that_no_manifest_defines(overlay: str) -> None:
    objects = render(overlay)
    defined = {(o["kind"], o["metadata"]["name"]) for o in objects}
    templates = [o["spec"]["template"] for o in objects if o["kind"] == "Deployment"]
    references: list[tuple[str, str]] = []
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "Deployment":
            pod = spec["template"]["spec"]
            references.append(("ServiceAccount", pod.get("serviceAccountName", "default")))
            for volume in pod.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    references.append(
                        ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
                    )
                if "configMap" in volume:
                    references.append(("ConfigMap", volume["configMap"]["name"]))
                if "secret" in volume:
                    references.append(("Secret", volume["secret"]["secretName"]))
            for container in pod["containers"]:
                for source in container.get("envFrom", []):
                    for kind in ("ConfigMap", "Secret"):
                        ref = source.get(f"{kind[0].lower()}{kind[1:]}Ref")
                        if ref:
                            references.append((kind, ref["name"]))
        elif obj["kind"] == "HorizontalPodAutoscaler":
            references.append((spec["scaleTargetRef"]["kind"], spec["scaleTargetRef"]["name"]))
        elif obj["kind"] == "RoleBinding":
            references.append((obj["roleRef"]["kind"], obj["roleRef"]["name"]))
            references += [(s["kind"], s["name"]) for s in obj["subjects"]]
        elif obj["kind"] in ("Service", "PodDisruptionBudget"):
            selector = spec["selector"] if obj["kind"] == "Service" else spec["selector"]["matchLabels"]
            selected = [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]
            assert selected, f"{obj['kind']} {obj['metadata']['name']} selects no pod template"
    missing = sorted(set(references) - defined)
    assert not missing, f"referenced but defined by no manifest: {missing}"


@pytest.fixture(scope="module")
def backends(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One real model-server process per Deployment, answering as its color, for the module."""
    logs = tmp_path_factory.mktemp("servers")
    with (
        model_server(model_dir, logs, COLOR="blue") as blue,
        model_server(model_dir, logs, COLOR="green") as green,
    ):
        yield {"penguins-blue": blue, "penguins-green": green}


@contextlib.contextmanager
def double(
    manifests: str, backends: dict[str, str], directory: Path, **options: Any
) -> Iterator[ApiServer]:
    """The API server double, seeded with `manifests`, as the cluster in $KUBECONFIG."""
    server = ApiServer(manifests, backends, **options)
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(server.kubeconfig())
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    try:
        yield server
    finally:
        server.close()
        if saved is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = saved


@pytest.fixture
def cluster(backends: dict[str, str], tmp_path: Path) -> Iterator[ApiServer]:
    """The double seeded with the rendered local overlay, its RBAC enforced."""
    with double(rendered(), backends, tmp_path) as server:
        yield server


def k8s_estate(tmp_path: Path, app: str = "penguins") -> Estate:
    data = repository_estate_data()
    data["releases"][RELEASE]["target"] = "kubernetes"
    data["releases"][RELEASE]["kubernetes"]["app"] = app
    return write_estate(data, tmp_path / "estate")


@pytest.mark.parametrize("overlay", ["local", "staging", "prod"])
def test_only_release_runs_ask_for_the_account_the_overlay_binds_to_the_deployer_role(
    overlay: str, tmp_path: Path
) -> None:
    """K8sRunLauncher starts a run's pod as the account its `dagster-k8s/config` tag names: the
    release's jobs name the deployer; every other run keeps the launcher's account, with no rights
    on the release."""
    from pipelines.definitions import build_definitions

    estate = k8s_estate(tmp_path)
    account = estate.release(RELEASE).kubernetes.service_account  # type: ignore[union-attr]
    (binding,) = [o for o in render(overlay) if o["kind"] == "RoleBinding"]
    assert {"kind": "ServiceAccount", "name": account} in [
        {"kind": s["kind"], "name": s["name"]} for s in binding["subjects"]
    ]
    defs = build_definitions(estate)
    tagged = {"pod_spec_config": {"service_account_name": account}}
    for job in (f"release_{RELEASE}", f"rollback_{RELEASE}", f"heal_{RELEASE}"):
        assert json.loads(defs.resolve_job_def(job).tags["dagster-k8s/config"]) == tagged, job
    assert "dagster-k8s/config" not in defs.resolve_job_def("retrain_penguin_classifier").tags
    web = defs.resolve_job_def("release_penguin_web")  # a release on the local target
    assert "dagster-k8s/config" not in web.tags


def controller(estate: Estate, served: list[Candidate]) -> tuple[Controller, KubernetesTarget]:
    spec = estate.release(RELEASE)
    assert spec.kubernetes is not None
    home = GovernanceHome.resolve()
    target = KubernetesTarget(
        spec, spec.kubernetes, home.dir("releases") / RELEASE, lambda c: MODEL_DIGEST
    )
    trail = AuditTrail(open_audit_log(home.audit_db), "test:k8s")
    return Controller(
        spec,
        target,
        FileStateStore(home.dir("releases") / RELEASE),
        trail,
        Alerts(SlackNotifier(None), home.root / "alerts.db", 3600),
        served.append,
    ), target


def candidate(version: str) -> Candidate:
    return release_candidate(f"registry.example.com/penguins/model-server@{DIGEST}", version)


def test_promote_patches_the_idle_deployment_and_switches_the_selector(
    cluster: ApiServer, tmp_path: Path
) -> None:
    served: list[Candidate] = []
    ctl, target = controller(k8s_estate(tmp_path), served)
    assert target.active_color() == "blue"  # as the manifests ship

    # Another writer touches the Service between our read and our patch: we get 409, re-read, win.
    conflicts = {"left": 1}

    def concurrent_writer(kind: str, name: str) -> None:
        if kind == "services" and name == "penguins" and conflicts["left"]:
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
    assert env["MODEL_URI"] == "models:/penguin-classifier/2" and env["MODEL_DIGEST"] == MODEL_DIGEST
    assert env["MODEL_VERSION"] == "penguin-classifier/2" and env["MODEL_DIR"] == "/tmp/model"
    version = candidate("2").version
    assert green["metadata"]["labels"]["app.kubernetes.io/version"] == version
    assert green["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == version
    service = cluster.get("services", "governance", "penguins")
    assert service is not None
    assert service["spec"]["selector"] == {"app": "penguins", "color": "green"}
    assert service["metadata"]["annotations"] == {"touched": "yes"}  # the other writer's change survived
    preview = cluster.get("services", "governance", "penguins-preview")
    assert preview is not None and preview["spec"]["selector"]["color"] == "blue"  # now the idle one
    target.deploy("green", candidate("2"))  # the serving color redeployed (as self-heal does)
    preview = cluster.get("services", "governance", "penguins-preview")
    assert preview is not None and preview["spec"]["selector"]["color"] == "blue"  # still the idle one
    endpoints = cluster.get("endpoints", "governance", "penguins")
    assert endpoints is not None
    assert {a["targetRef"]["name"].rsplit("-", 2)[0] for a in endpoints["subsets"][0]["addresses"]} == {
        "penguins-green"
    }
    # The smoke test went through the preview Service, the verification through the Service; no
    # request reached a pod's proxy.
    proxied = {tuple(path.rsplit("/proxy", 1)) for _, path, _ in cluster.responses if "/proxy/" in path}
    prefix = "/api/v1/namespaces/governance/services/"
    assert {
        (prefix + "penguins-preview:http", "/readyz"),
        (prefix + "penguins-preview:http", "/predict"),
    } <= proxied
    assert {(prefix + "penguins:http", "/version"), (prefix + "penguins:http", "/predict")} <= proxied
    assert all(resource.startswith(prefix) for resource, _ in proxied)
    through_service = target.probe(None, "/version")
    assert through_service.ok and through_service.body["color"] == "green"
    assert [c.model_ref for c in served] == ["penguin-classifier/2"]

    rolled = ctl.rollback("drill")
    assert rolled.decision.action == "rolled back" and target.active_color() == "blue"
    assert target.probe(None, "/version").body["color"] == "blue"
    preview = cluster.get("services", "governance", "penguins-preview")
    assert preview is not None and preview["spec"]["selector"]["color"] == "green"  # the idle one
    assert target.probe("green", "/version").body["color"] == "green"
    assert not [r for r in cluster.responses if r[2] == 403], "the Role must grant every call"


def role_verbs() -> list[tuple[int, str]]:
    (role,) = [o for o in render("local") if o["kind"] == "Role"]
    return [(n, verb) for n, rule in enumerate(role["rules"]) for verb in rule["verbs"]]


@pytest.mark.parametrize(("rule", "verb"), role_verbs())
def test_removing_any_one_verb_from_the_role_fails_the_release(
    rule: int, verb: str, backends: dict[str, str], tmp_path: Path
) -> None:
    """The Role is exactly enough: without any one of its verbs a promotion, the smoke test, the
    switch or the rollback meets a 403 from the API server and the release does not go through."""
    objects = render("local")
    (role,) = [o for o in objects if o["kind"] == "Role"]
    role["rules"][rule]["verbs"].remove(verb)
    with double(yaml.safe_dump_all(objects), backends, tmp_path) as cluster:
        ctl, _ = controller(k8s_estate(tmp_path), [])
        try:
            promoted = ctl.promote(candidate("2"), required(candidate("2")), passing)
            went_through = promoted.decision.action == "promoted"
            if went_through:
                went_through = ctl.rollback("drill").decision.action == "rolled back"
        except PermanentError as exc:
            assert "403" in str(exc)
            went_through = False
        forbidden = [r for r in cluster.responses if r[2] == 403]
    assert forbidden and not went_through, f"{verb} of rule {rule} is not needed: {role['rules'][rule]}"


def test_a_request_the_role_does_not_grant_is_forbidden_with_a_status(cluster: ApiServer) -> None:
    import urllib.error
    import urllib.request

    for path in (
        "/api/v1/namespaces/governance/secrets",
        "/api/v1/namespaces/governance/pods/penguins-blue-1-0/proxy/version",
        "/apis/apps/v1/namespaces/governance/deployments/other",
    ):
        request = urllib.request.Request(
            cluster.url + path, headers={"Authorization": "Bearer test-token"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403  # authorized before it is looked up, as a real server does
        body = yaml.safe_load(refused.value.read())
        assert body["kind"] == "Status" and body["reason"] == "Forbidden"
        assert "system:serviceaccount:governance:penguins-deployer" in body["message"]


def test_a_color_brought_back_starts_at_its_hpa_minimum_and_the_switch_waits_for_it(
    backends: dict[str, str], tmp_path: Path
) -> None:
    """Green was scaled to zero; its HPA wants 3. The promotion brings it back at 3 (not 1), and
    the switch happens only once 3 green pods are ready and are the endpoints."""
    with double(rendered(), backends, tmp_path, ready_after_s=1.5) as cluster:
        cluster.write(
            "horizontalpodautoscalers", "governance", "penguins-green",
            lambda h: h | {"spec": h["spec"] | {"minReplicas": 3}},
        )  # fmt: skip
        ctl, target = controller(k8s_estate(tmp_path), [])
        target.scale_down("green")
        seen: list[int] = []

        def at_switch(kind: str, name: str) -> None:
            if kind == "services" and name == "penguins":
                pods = cluster.pods("governance", {"color": "green"})
                seen.append(sum(1 for p in pods if p["status"]["conditions"][0]["status"] == "True"))

        cluster.before_patch = at_switch
        outcome = ctl.promote(candidate("2"), required(candidate("2")), passing)
        assert outcome.decision.action == "promoted", outcome.decision.reasons
        green = cluster.get("deployments", "governance", "penguins-green")
        assert green is not None and green["spec"]["replicas"] == 3
        assert seen == [3]
        endpoints = cluster.get("endpoints", "governance", "penguins")
        assert endpoints is not None and len(endpoints["subsets"][0]["addresses"]) == 3


def test_missing_objects_are_permanent_errors_naming_the_404(cluster: ApiServer, tmp_path: Path) -> None:
    del cluster.objects[("services", "governance", "penguins")]  # granted, but not there
    _, target = controller(k8s_estate(tmp_path), [])
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


def test_bootstrap_installs_an_empty_namespace_and_status_reports_drift_from_it(
    backends: dict[str, str], tmp_path: Path
) -> None:
    """From nothing: `release bootstrap` (an administrator) creates every object; a release then
    goes through as the deployer the bootstrap created; `release status` says the cluster holds what
    was applied, then names a field someone changed by hand."""
    estate = k8s_estate(tmp_path)
    admin = tmp_path / "admin-kubeconfig"
    with double("", backends, tmp_path, namespace="governance") as cluster:
        admin.write_text(cluster.kubeconfig(ADMIN_TOKEN))
        as_admin = {"KUBECONFIG": str(admin)}
        command = ["--estate", str(estate.path), "release", "bootstrap", RELEASE, "--by", "ops"]
        first = run_governance(*command, env=as_admin)
        assert first.returncode == 0, first.stdout + first.stderr
        expected = {f"{o['kind']} {o['metadata']['name']}" for o in render("local")}
        assert {
            line.split(" ", 3)[-1] for line in first.stdout.splitlines() if "created " in line
        } == expected
        again = run_governance(*command, env=as_admin)
        assert again.returncode == 0 and f"0 created, {len(expected)} already there" in again.stdout

        ctl, _ = controller(estate, [])  # as the deployer, whose Role the bootstrap created
        outcome = ctl.promote(candidate("2"), required(candidate("2")), passing)
        assert outcome.decision.action == "promoted", outcome.decision.reasons
        status = run_governance("--estate", str(estate.path), "release", "status")
        assert status.returncode == 0 and "drift: none" in status.stdout, status.stdout + status.stderr

        def edited(d: dict[str, Any]) -> dict[str, Any]:
            d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "2Gi"
            return d

        cluster.write("deployments", "governance", "penguins-green", edited)
        drifted = run_governance("--estate", str(estate.path), "release", "status")
        assert (
            "drift: Deployment penguins-green: spec.template.spec.containers[model-server]"
            ".resources.limits.memory is '2Gi' on the cluster, '768Mi' as applied"
        ) in drifted.stdout, drifted.stdout

    from governance.audit.store import open_audit_log as audit_log

    records = [
        r
        for r in audit_log(GovernanceHome.resolve().audit_db).records()
        if r.action == "release.bootstrapped"
    ]
    assert [r.actor for r in records] == ["cli:ops", "cli:ops"]


def test_a_bootstrap_that_fails_half_way_leaves_nothing_and_the_deployer_may_not_bootstrap(
    backends: dict[str, str], tmp_path: Path
) -> None:
    estate = k8s_estate(tmp_path)
    command = ["--estate", str(estate.path), "release", "bootstrap", RELEASE, "--by", "ops"]
    with double("", backends, tmp_path, namespace="governance") as cluster:
        refused = run_governance(*command)  # the deployer's own kubeconfig
        assert refused.returncode == 2 and "403" in refused.stderr, refused.stderr
        admin = tmp_path / "admin-kubeconfig"
        admin.write_text(cluster.kubeconfig(ADMIN_TOKEN))
        cluster.invalid.add("horizontalpodautoscalers")
        failed = run_governance(*command, env={"KUBECONFIG": str(admin)})
        assert failed.returncode == 2 and "422" in failed.stderr, failed.stderr
        assert cluster.objects == {}  # what it had created before the HPA was removed again

"""The Kubernetes target: Deployments `<app>-blue` / `<app>-green` and a Service whose `color`
selector is switched, through the official client (kubeconfig or in-cluster config).

Two pitfalls shape the Service patch (see ARCHITECTURE): the client does not enforce a
`resource_version` argument, so the read resourceVersion goes into the patch body and a stale read
fails with 409 (then re-read and retried); and a merge patch of `spec.selector` keeps old keys, so
the selector is replaced whole with a JSON patch. Probes go through the API server's proxy, so the
controller needs no network route to the pods.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.config import KubernetesTargetSpec, ReleaseSpec
from governance.errors import PermanentError, TransientError
from governance.locks import file_lock
from governance.probes import Probe
from governance.releases.candidate import Candidate

RELEASE_ANNOTATION = "governance.platform/release"
CONFLICT_RETRIES = 5


class KubernetesTarget:
    def __init__(self, spec: ReleaseSpec, settings: KubernetesTargetSpec, lock_dir: Path):
        from kubernetes import client, config

        # An explicit configuration per target (not the client's process-wide default), read from
        # $KUBECONFIG at call time: the client reads that variable once, at import.
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            try:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
                )
            except (config.ConfigException, FileNotFoundError) as exc:
                raise PermanentError(
                    f"no Kubernetes configuration (in-cluster or KUBECONFIG): {exc}"
                ) from None
        self.spec, self.settings, self.lock_dir = spec, settings, lock_dir
        self.api = client.ApiClient(configuration)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.service_url = (
            f"{self.api.configuration.host}/api/v1/namespaces/{settings.namespace}"
            f"/services/{settings.app}:http/proxy"
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with file_lock(self.lock_dir / "target.lock"):
            yield

    def active_color(self) -> str | None:
        service = self._call(
            lambda: self.core.read_namespaced_service(self.settings.app, self.settings.namespace)
        )
        color = (service.spec.selector or {}).get("color")
        return str(color) if color else None

    def render(self, candidate: Candidate) -> str:
        kubectl = str(Path(sys.executable).parent / "kubectl")
        rendered = subprocess.run(
            [kubectl, "kustomize", str(self.settings.overlay)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if rendered.returncode != 0:
            raise PermanentError(f"kubectl kustomize {self.settings.overlay}: {rendered.stderr.strip()}")
        return rendered.stdout + json.dumps({"image": candidate.image, "model": candidate.model_ref})

    def deploy(self, color: str, candidate: Candidate) -> None:
        """Patch the idle Deployment's image (by digest), model version and release annotation."""
        name = self._deployment(color)
        current = self._call(lambda: self.apps.read_namespaced_deployment(name, self.settings.namespace))
        containers = current.spec.template.spec.containers
        index = next((i for i, c in enumerate(containers) if c.name == self.settings.container), None)
        if index is None:
            raise PermanentError(f"deployment {name} has no container {self.settings.container!r}")
        env = containers[index].env or []
        patch: list[dict[str, Any]] = [
            {
                "op": "replace",
                "path": "/metadata/resourceVersion",
                "value": current.metadata.resource_version,
            },
            {
                "op": "replace",
                "path": f"/spec/template/spec/containers/{index}/image",
                "value": candidate.image,
            },
            {"op": "replace", "path": "/spec/replicas", "value": max(current.spec.replicas or 0, 1)},
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations",
                "value": {RELEASE_ANNOTATION: candidate.version},
            },
        ]
        for key, value in (
            ("MODEL_VERSION", candidate.model_ref),
            ("MODEL_DIR", f"/model/{candidate.model_version}"),
        ):
            position = next((i for i, e in enumerate(env) if e.name == key), None)
            path = f"/spec/template/spec/containers/{index}/env"
            if position is None:
                patch.append({"op": "add", "path": f"{path}/-", "value": {"name": key, "value": value}})
            else:
                patch.append({"op": "replace", "path": f"{path}/{position}/value", "value": value})
        self._call(lambda: self.apps.patch_namespaced_deployment(name, self.settings.namespace, patch))

    def wait_ready(self, color: str, timeout_s: float) -> Probe:
        """The rollout is done: the new generation observed and every replica updated and available."""
        name = self._deployment(color)
        started = time.monotonic()
        detail = "not observed yet"
        while time.monotonic() - started < min(timeout_s, self.settings.rollout_timeout_s):
            deployment = self._call(
                lambda: self.apps.read_namespaced_deployment_status(name, self.settings.namespace)
            )
            status, wanted = deployment.status, deployment.spec.replicas or 0
            updated, available = status.updated_replicas or 0, status.available_replicas or 0
            detail = f"{name}: {updated}/{wanted} updated, {available}/{wanted} available"
            if (
                status.observed_generation or 0
            ) >= deployment.metadata.generation and updated == available == wanted > 0:
                return Probe(True, 200, f"{detail} in {time.monotonic() - started:.1f} s")
            time.sleep(0.5)
        return Probe(False, None, f"rollout not ready: {detail}")

    def switch(self, color: str) -> None:
        """Replace the Service selector with the read resourceVersion; a 409 is re-read and retried."""
        from kubernetes.client.exceptions import ApiException

        for _ in range(CONFLICT_RETRIES):
            service = self._call(
                lambda: self.core.read_namespaced_service(self.settings.app, self.settings.namespace)
            )
            selector = {**(service.spec.selector or {}), "color": color}
            patch = [
                {
                    "op": "replace",
                    "path": "/metadata/resourceVersion",
                    "value": service.metadata.resource_version,
                },
                {"op": "replace", "path": "/spec/selector", "value": selector},
            ]
            try:
                self.core.patch_namespaced_service(self.settings.app, self.settings.namespace, patch)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise self._error(exc) from None
            self._wait_endpoints(color)
            return
        raise TransientError(
            f"service {self.settings.app}: still conflicting after {CONFLICT_RETRIES} re-reads"
        )

    def _wait_endpoints(self, color: str, timeout_s: float = 30.0) -> None:
        """The Service routes only to `color`'s pods: its endpoints are exactly those pods."""
        pods = {p.metadata.name for p in self._pods(color)}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            endpoints = self._call(
                lambda: self.core.read_namespaced_endpoints(self.settings.app, self.settings.namespace)
            )
            targets = {
                address.target_ref.name
                for subset in endpoints.subsets or []
                for address in subset.addresses or []
                if address.target_ref is not None
            }
            if targets and targets <= pods:
                return
            time.sleep(0.2)
        raise TransientError(
            f"service {self.settings.app}: endpoints did not move to {color} within {timeout_s:.0f} s"
        )

    def probe(self, color: str | None, path: str, body: Any = None, timeout_s: float = 5.0) -> Probe:
        if color is None:
            resource = f"services/{self.settings.app}:http"
        else:
            pods = [p for p in self._pods(color) if _ready(p)]
            if not pods:
                return Probe(False, None, f"{color}: no ready pod")
            resource = f"pods/{pods[0].metadata.name}:http"
        from kubernetes.client.exceptions import ApiException

        started = time.monotonic()
        path_ = f"/api/v1/namespaces/{self.settings.namespace}/{resource}/proxy{path}"
        method = "POST" if body is not None else "GET"
        request = self.api.param_serialize(
            method,
            path_,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request, _request_timeout=timeout_s)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            return Probe(
                False, exc.status, f"{path_} answered {exc.status}", None, time.monotonic() - started
            )
        except OSError as exc:
            return Probe(False, None, f"{path_}: {exc}", None, time.monotonic() - started)
        payload = _json(response.data)
        status = int(response.status)
        return Probe(
            status == 200, status, f"{path_} answered {status}", payload, time.monotonic() - started
        )

    def restart(self, color: str) -> None:
        name = self._deployment(color)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        patch = {
            "spec": {
                "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}
            }
        }
        self._call(lambda: self.apps.patch_namespaced_deployment(name, self.settings.namespace, patch))

    def scale_down(self, color: str) -> None:
        name = self._deployment(color)
        patch = [{"op": "replace", "path": "/spec/replicas", "value": 0}]
        self._call(lambda: self.apps.patch_namespaced_deployment(name, self.settings.namespace, patch))

    def running(self, color: str) -> bool:
        name = self._deployment(color)
        deployment = self._call(
            lambda: self.apps.read_namespaced_deployment_status(name, self.settings.namespace)
        )
        return bool(deployment.spec.replicas) and bool(deployment.status.available_replicas)

    def down(self) -> None:
        for color in ("blue", "green"):
            self.scale_down(color)

    def _deployment(self, color: str) -> str:
        return f"{self.settings.app}-{color}"

    def _pods(self, color: str) -> list[Any]:
        selector = f"app={self.settings.app},color={color}"
        listed = self._call(
            lambda: self.core.list_namespaced_pod(self.settings.namespace, label_selector=selector)
        )
        return list(listed.items)

    def _call(self, action: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return action()
        except ApiException as exc:
            raise self._error(exc) from None

    def _error(self, exc: Any) -> Exception:
        message = f"Kubernetes API {exc.status} {exc.reason}: {str(exc.body or '')[:200]}"
        return (
            TransientError(message)
            if exc.status in (409, 429) or exc.status >= 500
            else PermanentError(message)
        )


def _json(raw: bytes | None) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions or [] if pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)

"""The Kubernetes target: Deployments `<app>-blue` / `<app>-green`, a Service whose `color`
selector is switched and a preview Service `<app>-preview` pointed at the idle color for its smoke
test, through the official client (kubeconfig or in-cluster config).

Two pitfalls shape the Service patch (see ARCHITECTURE): the client does not enforce a
`resource_version` argument, so the read resourceVersion goes into the patch body and a stale read
fails with 409 (then re-read and retried); and a merge patch of `spec.selector` keeps old keys, so
the selector is replaced whole with a JSON patch. Probes go through the API server's proxy to the
Services, so the controller needs no network route to the pods. A color brought back after a
scale-down starts at its HPA's `minReplicas` (an HPA does not scale a Deployment at zero), and the
switch waits until that many of its pods are the Service's endpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.config import KubernetesTargetSpec, ReleaseSpec
from governance.errors import PermanentError, TransientError
from governance.locks import LOCAL, Locks
from governance.probes import Probe
from governance.releases.candidate import Candidate
from governance.releases.state import COLORS

RELEASE_ANNOTATION = "governance.platform/release"
VERSION_LABEL = "app.kubernetes.io/version"
CONFLICT_RETRIES = 5


class KubernetesTarget:
    def __init__(
        self,
        spec: ReleaseSpec,
        settings: KubernetesTargetSpec,
        lock_dir: Path,
        model_digest: Callable[[Candidate], str],
        locks: Locks = LOCAL,
    ):
        from kubernetes import client, config

        # An explicit configuration per target (not the client's process-wide default), read from
        # $KUBECONFIG at call time: the client reads that variable once, at import.
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            try:
                config.load_kube_config(
                    config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
                )
            except (config.ConfigException, FileNotFoundError) as exc:
                raise PermanentError(
                    f"no Kubernetes configuration (in-cluster or KUBECONFIG): {exc}"
                ) from None
        self.spec, self.settings, self.lock_dir, self.locks = spec, settings, lock_dir, locks
        self.model_digest = model_digest  # the registered version's content digest
        self.api = client.ApiClient(configuration)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.preview = f"{settings.app}-preview"
        self.service_url = (
            f"{self.api.configuration.host}/api/v1/namespaces/{settings.namespace}"
            f"/services/{settings.app}:http/proxy"
        )

    def lock(self, timeout_s: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Across run pods with a shared database (an advisory lock), else a file here."""
        name = f"release-{self.spec.name}-target"
        return self.locks.hold(name, self.lock_dir / "target.lock", timeout_s)

    def active_color(self) -> str | None:
        return self._selected(self.settings.app)

    def _selected(self, service_name: str) -> str | None:
        service = self.call(
            lambda: self.core.read_namespaced_service(service_name, self.settings.namespace)
        )
        color = (service.spec.selector or {}).get("color")
        return str(color) if color else None

    def render(self, candidate: Candidate) -> str:
        return self.overlay() + json.dumps({"image": candidate.image, "model": candidate.model_ref})

    def overlay(self) -> str:
        """The overlay's objects as `kubectl kustomize` renders them."""
        kubectl = str(Path(sys.executable).parent / "kubectl")
        rendered = subprocess.run(
            [kubectl, "kustomize", str(self.settings.overlay)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if rendered.returncode != 0:
            raise PermanentError(f"kubectl kustomize {self.settings.overlay}: {rendered.stderr.strip()}")
        return rendered.stdout

    def deploy(self, color: str, candidate: Candidate) -> None:
        """Patch the idle Deployment's image (by digest), model version and its digest, release
        annotation and version label, at no fewer replicas than its HPA's minimum; then point the
        preview at it, unless it is the color being served."""
        name = self._deployment(color)
        current = self.call(lambda: self.apps.read_namespaced_deployment(name, self.settings.namespace))
        containers = current.spec.template.spec.containers
        index = next((i for i, c in enumerate(containers) if c.name == self.settings.container), None)
        if index is None:
            raise PermanentError(f"deployment {name} has no container {self.settings.container!r}")
        env = containers[index].env or []
        replicas = max(current.spec.replicas or 0, self._min_replicas(color))
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
            {"op": "replace", "path": "/spec/replicas", "value": replicas},
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations",
                "value": {RELEASE_ANNOTATION: candidate.version},
            },
        ]
        for where in ("/metadata/labels", "/spec/template/metadata/labels"):
            patch.append(
                {"op": "add", "path": f"{where}/{_pointer(VERSION_LABEL)}", "value": candidate.version}
            )
        # The pod fetches the version from the MLflow server and serves it only if its content
        # has the registered digest (the model server's app/registry.py).
        for key, value in (
            ("MODEL_URI", f"models:/{candidate.model_ref}"),
            ("MODEL_DIGEST", self.model_digest(candidate)),
            ("MODEL_VERSION", candidate.model_ref),
        ):
            position = next((i for i, e in enumerate(env) if e.name == key), None)
            path = f"/spec/template/spec/containers/{index}/env"
            if position is None:
                patch.append({"op": "add", "path": f"{path}/-", "value": {"name": key, "value": value}})
            else:
                patch.append({"op": "replace", "path": f"{path}/{position}/value", "value": value})
        self.call(lambda: self.apps.patch_namespaced_deployment(name, self.settings.namespace, patch))
        if color != self.active_color():  # a candidate (not the serving color, redeployed to heal)
            self._select(self.preview, color, wait=False)  # its rollout has only begun

    def _min_replicas(self, color: str) -> int:
        name = self._deployment(color)
        hpa = self.call(
            lambda: self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                name, self.settings.namespace
            )
        )
        return max(int(hpa.spec.min_replicas or 1), 1)

    def wait_ready(self, color: str, timeout_s: float) -> Probe:
        """The rollout is done: the new generation observed and every replica updated and available."""
        name = self._deployment(color)
        started = time.monotonic()
        detail = "not observed yet"
        while time.monotonic() - started < min(timeout_s, self.settings.rollout_timeout_s):
            deployment = self.call(
                lambda: self.apps.read_namespaced_deployment(name, self.settings.namespace)
            )
            status, wanted = deployment.status, deployment.spec.replicas or 0
            updated, available = status.updated_replicas or 0, status.available_replicas or 0
            detail = f"{name}: {updated}/{wanted} updated, {available}/{wanted} available"
            if (
                status.observed_generation or 0
            ) >= deployment.metadata.generation and updated == available == wanted > 0:
                if self._selected(self.preview) == color:  # its smoke test goes through it next
                    self._wait_endpoints(self.preview, color)
                return Probe(True, 200, f"{detail} in {time.monotonic() - started:.1f} s")
            time.sleep(0.5)
        return Probe(False, None, f"rollout not ready: {detail}")

    def switch(self, color: str) -> None:
        """Point the Service at `color` once that color is at full capacity, and the preview at the
        color it leaves (kept up for a rollback, which is probed through it)."""
        self._select(self.settings.app, color)
        self._select(self.preview, next(c for c in COLORS if c != color), wait=False)

    def _select(self, service_name: str, color: str, *, wait: bool = True) -> None:
        """Replace the Service's selector with the read resourceVersion (a 409 is re-read and
        retried), then wait until its endpoints are `color`'s pods, at least its HPA's minimum."""
        from kubernetes.client.exceptions import ApiException

        for _ in range(CONFLICT_RETRIES):
            service = self.call(
                lambda: self.core.read_namespaced_service(service_name, self.settings.namespace)
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
                self.core.patch_namespaced_service(service_name, self.settings.namespace, patch)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise self.error(exc) from None
            if wait:
                self._wait_endpoints(service_name, color)
            return
        raise TransientError(
            f"service {service_name}: still conflicting after {CONFLICT_RETRIES} re-reads"
        )

    def _wait_endpoints(self, service_name: str, color: str, timeout_s: float = 30.0) -> None:
        """The Service routes only to `color`'s pods, and to at least its HPA's minimum of them."""
        wanted = self._min_replicas(color)
        deadline = time.monotonic() + timeout_s
        targets: set[str] = set()
        while time.monotonic() < deadline:
            pods = {p.metadata.name for p in self._pods(color)}
            endpoints = self.call(
                lambda: self.core.read_namespaced_endpoints(service_name, self.settings.namespace)
            )
            targets = {
                address.target_ref.name
                for subset in endpoints.subsets or []
                for address in subset.addresses or []
                if address.target_ref is not None
            }
            if len(targets) >= wanted and targets <= pods:
                return
            time.sleep(0.2)
        raise TransientError(
            f"service {service_name}: {len(targets)} endpoint(s) after {timeout_s:.0f} s, "
            f"not {wanted} of {color}'s pods"
        )

    def probe(self, color: str | None, path: str, body: Any = None, timeout_s: float = 5.0) -> Probe:
        """Through the Service when `color` serves (or is None), else through the preview, which
        selects the idle color; a probe never moves either."""
        service = self.settings.app
        if color is not None and color != self.active_color():
            previewed = self._selected(self.preview)
            if previewed != color:
                return Probe(False, None, f"{color} is not served, and the preview selects {previewed}")
            service = self.preview
        resource = f"services/{service}:http"
        from kubernetes.client.exceptions import ApiException

        started = time.monotonic()
        path_ = f"/api/v1/namespaces/{self.settings.namespace}/{resource}/proxy{path}"
        method = "POST" if body is not None else "GET"
        try:
            response = self.api.call_api(
                path_,
                method,
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,  # the raw answer: a proxied app's JSON is no API model
                _return_http_data_only=True,
                _request_timeout=timeout_s,
            )
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
        self.call(lambda: self.apps.patch_namespaced_deployment(name, self.settings.namespace, patch))

    def scale_down(self, color: str) -> None:
        name = self._deployment(color)
        patch = [{"op": "replace", "path": "/spec/replicas", "value": 0}]
        self.call(lambda: self.apps.patch_namespaced_deployment(name, self.settings.namespace, patch))

    def running(self, color: str) -> bool:
        name = self._deployment(color)
        deployment = self.call(
            lambda: self.apps.read_namespaced_deployment(name, self.settings.namespace)
        )
        return bool(deployment.spec.replicas) and bool(deployment.status.available_replicas)

    def down(self) -> None:
        for color in ("blue", "green"):
            self.scale_down(color)

    def _deployment(self, color: str) -> str:
        return f"{self.settings.app}-{color}"

    def _pods(self, color: str) -> list[Any]:
        selector = f"app={self.settings.app},color={color}"
        listed = self.call(
            lambda: self.core.list_namespaced_pod(self.settings.namespace, label_selector=selector)
        )
        return list(listed.items)

    def call(self, action: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return action()
        except ApiException as exc:
            raise self.error(exc) from None

    def error(self, exc: Any) -> Exception:
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


def _pointer(key: str) -> str:
    """`key` as one JSON-pointer token (RFC 6901): a label's `/` would otherwise split the path."""
    return key.replace("~", "~0").replace("/", "~1")

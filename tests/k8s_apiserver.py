"""A Kubernetes API server test double: the subset of the API the release controller uses, with the
semantics it relies on. No real API server can run on this machine; this one is faithful where it
matters: every write bumps `metadata.resourceVersion` (and a Deployment's `generation` when its spec
changes); a patch carrying a stale resourceVersion gets 409 Conflict; unknown objects get 404 with a
`Status` body; label selectors filter pods; a Service's endpoints are the ready pods its selector
matches; JSON patches (RFC 6902) and merge patches apply as the API server applies them; requests
need the bearer token, and the token is a ServiceAccount whose requests are authorized as a real API
server's RBAC authorizer does: by the rendered Roles bound to it (verb, API group, resource and
subresource, resource name), any other request answered 403 with a `Status` body. Pods are
synthesized from Deployments (each ready `ready_after_s` after its Deployment's spec last changed)
and their proxy forwards to real HTTP servers (one per Deployment), so probes reach real model
servers.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

TOKEN = "test-token"  # the release controller's ServiceAccount
ADMIN_TOKEN = "admin-token"  # a cluster administrator (bootstraps a namespace): RBAC allows all
KINDS = {
    "namespaces": "Namespace",
    "configmaps": "ConfigMap",
    "services": "Service",
    "endpoints": "Endpoints",
    "pods": "Pod",
    "deployments": "Deployment",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "serviceaccounts": "ServiceAccount",
    "roles": "Role",
    "rolebindings": "RoleBinding",
}
STORED = {kind: plural for plural, kind in KINDS.items() if plural not in ("endpoints", "pods")}
# Kinds whose DELETE answers with the deleted object (the API server's ReturnDeletedObject), not a
# Status: what the official client decodes each answer as.
RETURNS_DELETED = {"services", "serviceaccounts"}
# The verb a request is authorized as (the API server's request-info rules).
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Conflict(Exception):
    pass


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add / replace / remove / test on a copy."""
    result = copy.deepcopy(document)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent: Any = result
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if op["op"] == "replace" and last not in parent:
                    raise ValueError(f"replace of a missing path {op['path']}")
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ValueError(f"unsupported op {op['op']}")
    return result


def merge_patch(document: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def matches(labels: dict[str, str], selector: str | dict[str, str]) -> bool:
    if isinstance(selector, dict):
        return all(labels.get(k) == v for k, v in selector.items())
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        else:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
    return True


class ApiServer:
    def __init__(
        self,
        manifests: str,
        backends: dict[str, str],
        *,
        account: str = "penguins-deployer",
        namespace: str = "default",
        ready_after_s: float = 0.0,
    ):
        self._lock = threading.RLock()
        self._versions = itertools.count(1000)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.changed_at: dict[tuple[str, str], float] = {}  # a Deployment's last spec change
        self.backends = backends  # deployment name -> base URL of the server its pods run
        self.ready_after_s = ready_after_s
        self.responses: list[tuple[str, str, int]] = []  # (method, path, status), for assertions
        self.before_patch: Callable[[str, str], None] | None = None
        self.invalid: set[str] = set()  # kinds whose creation is answered 422 Invalid
        self.namespace = namespace
        for doc in yaml.safe_load_all(manifests):
            kind = STORED.get(doc["kind"])
            if kind == "namespaces":
                self._store(kind, "", doc)
            elif kind is not None:
                namespace = doc["metadata"].get("namespace", "default")
                self._store(kind, namespace, doc)
                self.namespace = namespace
        # The token's identity: the ServiceAccount the release controller runs as.
        self.user = f"system:serviceaccount:{self.namespace}:{account}"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, token: str = TOKEN) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "double", "cluster": {"server": self.url}}],
                "users": [{"name": "deployer", "user": {"token": token}}],
                "contexts": [{"name": "double", "context": {"cluster": "double", "user": "deployer"}}],
                "current-context": "double",
            }
        )

    # -- state -----------------------------------------------------------------------------------
    def _store(self, kind: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        if namespace:
            obj["metadata"]["namespace"] = namespace
        name = obj["metadata"]["name"]
        if kind == "deployments":
            previous = self.objects.get((kind, namespace, name))
            if previous is None or previous["spec"] != obj["spec"]:
                self.changed_at[(namespace, name)] = time.monotonic()
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 0) + 1
        self.objects[(kind, namespace, name)] = obj
        return obj

    def _available(self, namespace: str, deployment: dict[str, Any]) -> int:
        """Pods become available `ready_after_s` after the spec last changed (all at once: the
        double has one backend per Deployment)."""
        changed = self.changed_at.get((namespace, deployment["metadata"]["name"]), 0.0)
        ready = time.monotonic() - changed >= self.ready_after_s
        return int(deployment["spec"].get("replicas", 1)) if ready else 0

    def _with_status(self, namespace: str, deployment: dict[str, Any]) -> dict[str, Any]:
        replicas = deployment["spec"].get("replicas", 1)
        available = self._available(namespace, deployment)
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
        }
        return deployment

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            if kind == "endpoints":
                return self._endpoints(namespace, name)
            obj = self.objects.get((kind, namespace, name))
            if obj is None:
                return None
            obj = copy.deepcopy(obj)
            return self._with_status(namespace, obj) if kind == "deployments" else obj

    def write(
        self, kind: str, namespace: str, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply `change` as one write; a stale resourceVersion in the result is a conflict."""
        with self._lock:
            current = self.objects[(kind, namespace, name)]
            updated = change(copy.deepcopy(current))
            sent = updated["metadata"].get("resourceVersion")
            if sent != current["metadata"]["resourceVersion"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again"
                )
            if kind == "deployments" and updated["spec"] == current["spec"]:
                updated["metadata"]["generation"] = current["metadata"]["generation"] - 1
            stored = copy.deepcopy(self._store(kind, namespace, updated))
            return self._with_status(namespace, stored) if kind == "deployments" else stored

    def create(self, kind: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = copy.deepcopy(self._store(kind, namespace, copy.deepcopy(obj)))
            return self._with_status(namespace, stored) if kind == "deployments" else stored

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.objects.pop((kind, namespace, name), None)

    def pods(self, namespace: str, selector: str | dict[str, str] = "") -> list[dict[str, Any]]:
        pods = []
        for (kind, ns, name), deployment in sorted(self.objects.items()):
            if kind != "deployments" or ns != namespace:
                continue
            template = deployment["spec"]["template"]
            available = self._available(ns, deployment)
            for i in range(deployment["spec"].get("replicas", 1)):
                pod_name = f"{name}-{deployment['metadata']['generation']}-{i}"
                labels = dict(template["metadata"].get("labels", {}))
                ready = "True" if i < available else "False"
                if matches(labels, selector):
                    pods.append({
                        "kind": "Pod",
                        "apiVersion": "v1",
                        "metadata": {"name": pod_name, "namespace": ns, "labels": labels, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": f"uid-{name}"}]},
                        "spec": template["spec"],
                        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]},
                    })  # fmt: skip
        return pods

    def authorized(self, verb: str, group: str, resource: str, namespace: str, name: str) -> bool:
        """RBAC as the API server evaluates it: any rule of any Role bound to the user in the
        namespace that matches the verb, the API group, the resource (with its subresource, as
        `pods/proxy`) and, when the rule names resources, the object's name."""
        for binding in self._all("rolebindings", namespace):
            subjects = binding.get("subjects") or []
            if not any(
                f"system:serviceaccount:{s.get('namespace', namespace)}:{s['name']}" == self.user
                for s in subjects
                if s.get("kind") == "ServiceAccount"
            ):
                continue
            role = self.objects.get(("roles", namespace, binding["roleRef"]["name"]))
            for rule in (role or {}).get("rules") or []:
                names = rule.get("resourceNames") or []
                if (
                    {group, "*"} & set(rule.get("apiGroups") or [])
                    and {resource, "*"} & set(rule.get("resources") or [])
                    and {verb, "*"} & set(rule.get("verbs") or [])
                    and (not names or name in names)
                ):
                    return True
        return False

    def _all(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return [o for (k, ns, _), o in sorted(self.objects.items()) if k == kind and ns == namespace]

    def _endpoints(self, namespace: str, name: str) -> dict[str, Any] | None:
        service = self.objects.get(("services", namespace, name))
        if service is None:
            return None
        pods = [p for p in self.pods(namespace, service["spec"].get("selector", {})) if _ready(p)]
        addresses = [
            {
                "ip": "10.0.0.1",
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": namespace},
            }
            for p in pods
        ]
        subsets = (
            [{"addresses": addresses, "ports": [{"name": "http", "port": 8000}]}] if addresses else []
        )
        return {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace},
            "subsets": subsets,
        }

    def _backend(self, namespace: str, kind: str, name: str) -> str | None:
        if kind == "pods":
            owner = next(
                (
                    p["metadata"]["ownerReferences"][0]["name"]
                    for p in self.pods(namespace)
                    if p["metadata"]["name"] == name
                ),
                None,
            )
        else:
            service = self.objects.get(("services", namespace, name))
            pods = self.pods(namespace, service["spec"]["selector"]) if service else []
            pods = [p for p in pods if _ready(p)]
            owner = pods[0]["metadata"]["ownerReferences"][0]["name"] if pods else None
        return self.backends.get(owner) if owner else None

    # -- HTTP ------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                server.responses.append((self.command, urlsplit(self.path).path, code))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, str, str, str, str] | None:
                parts = urlsplit(self.path).path.strip("/").split("/")
                # api/v1/namespaces/NS/KIND/NAME[/...] or apis/GROUP/v1/namespaces/NS/KIND/NAME[/...]
                group, offset = ("", 2) if parts[0] == "api" else (parts[1], 3)
                if parts[offset : offset + 1] == ["namespaces"] and len(parts) <= offset + 2:
                    name = parts[offset + 1] if len(parts) > offset + 1 else ""
                    return group, "", "namespaces", name, ""  # the cluster-scoped Namespace
                if len(parts) < offset + 3 or parts[offset] != "namespaces":
                    return None
                namespace, kind = parts[offset + 1], parts[offset + 2]
                name = parts[offset + 3] if len(parts) > offset + 3 else ""
                rest = "/".join(parts[offset + 4 :])
                return group, namespace, kind, name, rest

            def _forbidden(self, method: str, route: tuple[str, str, str, str, str]) -> bool:
                if self.headers.get("Authorization") == f"Bearer {ADMIN_TOKEN}":
                    return False
                group, namespace, kind, name, rest = route
                verb = "list" if method == "GET" and not name else VERBS.get(method, method.lower())
                resource = f"{kind}/{rest.split('/')[0]}" if rest else kind
                if server.authorized(verb, group, resource, namespace, name.split(":")[0]):
                    return False
                what = f'{resource} "{name}"' if name else resource
                message = (
                    f'{what} is forbidden: User "{server.user}" cannot {verb} resource '
                    f'"{resource}" in API group "{group}" in the namespace "{namespace}"'
                )
                self._send(403, _status(403, "Forbidden", message))
                return True

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") in (f"Bearer {TOKEN}", f"Bearer {ADMIN_TOKEN}"):
                    return True
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return False

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"null")

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def _handle(self, method: str) -> None:
                if not self._authorized():
                    return
                route = self._route()
                # Authorization comes first, as in the API server's filter chain: a resource the
                # user may not touch is 403 whether or not the double serves its kind.
                if route is not None and self._forbidden(method, route):
                    return
                if route is None or route[2] not in KINDS:
                    self._send(
                        404, _status(404, "NotFound", "the server could not find the requested resource")
                    )
                    return
                _, namespace, kind, name, rest = route
                if rest.startswith("proxy"):
                    self._proxy(method, namespace, kind, name, rest.removeprefix("proxy"))
                elif method == "GET" and kind == "pods" and not name:
                    selector = parse_qs(urlsplit(self.path).query).get("labelSelector", [""])[0]
                    self._send(
                        200,
                        {
                            "kind": "PodList",
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": "1"},
                            "items": server.pods(namespace, selector),
                        },
                    )
                elif method == "GET" and name:
                    obj = server.get(kind, namespace, name)
                    if obj is None:
                        self._send(404, _status(404, "NotFound", f'{kind} "{name}" not found'))
                    else:
                        self._send(200, obj)
                elif method == "PATCH" and kind in ("services", "deployments"):
                    self._patch(namespace, kind, name)
                elif method == "POST" and not name and kind in STORED.values():
                    self._create(namespace, kind)
                elif method == "DELETE" and name and kind in STORED.values():
                    deleted = server.delete(kind, namespace, name)
                    if deleted is None:
                        self._send(404, _status(404, "NotFound", f'{kind} "{name}" not found'))
                    elif kind in RETURNS_DELETED:
                        self._send(200, deleted)
                    else:
                        self._send(
                            200,
                            _status(200, "", "")
                            | {"status": "Success", "details": {"name": name, "kind": kind}},
                        )
                else:
                    self._send(405, _status(405, "MethodNotAllowed", f"{method} is not allowed here"))

            def _create(self, namespace: str, kind: str) -> None:
                body = self._body()
                name = body["metadata"]["name"]
                if kind in server.invalid:
                    self._send(422, _status(422, "Invalid", f'{kind} "{name}" is invalid'))
                    return
                if server.get(kind, namespace, name) is not None:
                    message = f'{kind} "{name}" already exists'
                    self._send(409, _status(409, "AlreadyExists", message))
                    return
                self._send(201, server.create(kind, namespace, body))

            def _patch(self, namespace: str, kind: str, name: str) -> None:
                if server.get(kind, namespace, name) is None:
                    self._send(404, _status(404, "NotFound", f'{kind} "{name}" not found'))
                    return
                body, content_type = self._body(), self.headers.get("Content-Type", "")
                if server.before_patch is not None:
                    server.before_patch(kind, name)
                try:
                    if content_type.startswith("application/json-patch+json"):
                        obj = server.write(
                            kind, namespace, name, lambda current: json_patch(current, body)
                        )
                    else:  # merge and strategic merge: without resourceVersion in the body there is no precondition

                        def merge(current: dict[str, Any]) -> dict[str, Any]:
                            merged = merge_patch(current, body)
                            if "resourceVersion" not in (body.get("metadata") or {}):
                                merged["metadata"]["resourceVersion"] = current["metadata"][
                                    "resourceVersion"
                                ]
                            return dict(merged)

                        obj = server.write(kind, namespace, name, merge)
                except Conflict as exc:
                    self._send(409, _status(409, "Conflict", str(exc)))
                    return
                except (ValueError, KeyError, IndexError) as exc:
                    self._send(422, _status(422, "Invalid", f"the patch could not be applied: {exc}"))
                    return
                self._send(200, obj)

            def _proxy(self, method: str, namespace: str, kind: str, name: str, path: str) -> None:
                backend = server._backend(namespace, kind, name.split(":")[0])
                if backend is None:
                    self._send(
                        503,
                        _status(503, "ServiceUnavailable", f"no endpoints available for {kind} {name}"),
                    )
                    return
                data = json.dumps(self._body()).encode() if method == "POST" else None
                request = urllib.request.Request(
                    backend + (path or "/"),
                    data=data,
                    method=method,
                    headers={"Content-Type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        self._send(response.status, json.load(response))
                except urllib.error.HTTPError as exc:
                    self._send(exc.code, json.loads(exc.read() or b"null"))
                except OSError as exc:
                    self._send(
                        503, _status(503, "ServiceUnavailable", f"error trying to reach service: {exc}")
                    )

        return Handler


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])

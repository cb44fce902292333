"""What the platform applied to a namespace, and how the cluster differs from it.

`install` creates every object of the overlay that the namespace lacks (with an administrator's
credentials: the deployer's Role may create nothing) and leaves existing ones as they are; what it
applied is kept as the baseline (`applied.yaml` in the release's directory). `drift` reads the
Deployments, Services and HPAs the deployer may read and names every field the baseline sets that the
cluster now holds differently, leaving out what the controller itself changes on each release
(image, model env, replicas, the color selectors, the release's version label and annotation).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from governance.errors import ConfigError, PermanentError
from governance.releases.kubernetes import KubernetesTarget
from governance.yamlsafe import load_yaml

BASELINE = "applied.yaml"
COMPARED = ("Deployment", "Service", "HorizontalPodAutoscaler")
MANAGED = (  # dotted paths, with [name] for named list items
    re.compile(r"^spec\.replicas$"),
    re.compile(r"^spec\.template\.spec\.containers\[[^]]+\]\.image$"),
    re.compile(r"^spec\.template\.metadata\.annotations\b"),
    re.compile(r"^(spec\.template\.)?metadata\.labels\.app\.kubernetes\.io/version$"),
    re.compile(r"^spec\.selector\.color$"),
)


@dataclass(frozen=True)
class Installed:
    created: list[str]
    existing: list[str]
    undo: Callable[[], None]


def install(target: KubernetesTarget) -> Installed:
    """Create what the namespace lacks, in the overlay's order; a failure removes what this run
    created, so nothing is left half-made."""
    from kubernetes.client.exceptions import ApiException

    namespace = target.settings.namespace
    objects = [o for o in yaml.safe_load_all(target.overlay()) if o]
    for obj in objects:
        declared = obj["metadata"].get("namespace", namespace)
        if obj["kind"] != "Namespace" and declared != namespace:
            raise PermanentError(
                f"{target.settings.overlay}: {obj['kind']} {obj['metadata']['name']} is for namespace "
                f"{declared!r}, the release's is {namespace!r}"
            )
    created: list[dict[str, Any]] = []
    existing: list[str] = []
    for obj in objects:
        try:
            _api(target, obj, "create", body=obj)
        except ApiException as exc:
            if exc.status == 409:
                existing.append(_label(obj))
                continue
            _remove(target, created)
            raise target.error(exc) from None
        created.append(obj)
    _write_baseline(target.lock_dir / BASELINE, objects)
    return Installed([_label(o) for o in created], existing, lambda: _remove(target, created))


def drift(target: KubernetesTarget) -> list[str] | None:
    """Every difference from the baseline, or None when nothing was installed by the platform."""
    path = target.lock_dir / BASELINE
    if not path.is_file():
        return None
    differences: list[str] = []
    for expected in _read_baseline(path):
        if expected["kind"] not in COMPARED:
            continue
        live = target.call(lambda obj=expected: _api(target, obj, "read"))
        if live is None:
            differences.append(f"{_label(expected)}: missing from the cluster")
            continue
        live_dict = target.api.sanitize_for_serialization(live)
        for where in ("metadata.labels", "spec"):
            head, _, tail = where.partition(".")
            want = expected.get(head, {}).get(tail) if tail else expected.get(head)
            have = live_dict.get(head, {}).get(tail) if tail else live_dict.get(head)
            differences += [f"{_label(expected)}: {d}" for d in _differences(want, have, where)]
    return differences


def _differences(expected: Any, live: Any, path: str) -> list[str]:
    """Fields `expected` sets that `live` holds otherwise (fields only the cluster sets, defaults
    among them, are not drift)."""
    if any(pattern.search(path) for pattern in MANAGED):
        return []
    if isinstance(expected, dict):
        live = live if isinstance(live, dict) else {}
        return [
            d
            for key, value in expected.items()
            for d in _differences(value, live.get(key), f"{path}.{key}")
        ]
    if isinstance(expected, list) and all(isinstance(i, dict) and "name" in i for i in expected):
        by_name = {i.get("name"): i for i in live or [] if isinstance(i, dict)}
        return [
            d
            for item in expected
            for d in _differences(item, by_name.get(item["name"]), f"{path}[{item['name']}]")
        ]
    if _normal(expected) != _normal(live):
        return [f"{path} is {live!r} on the cluster, {expected!r} as applied"]
    return []


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _api(target: KubernetesTarget, obj: dict[str, Any], verb: str, **kwargs: Any) -> Any:
    """The official client's call for `obj`'s kind (as kubernetes.utils names them); a read of a
    missing object is None."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    group, _, version = obj["apiVersion"].rpartition("/")
    group = "".join(word.capitalize() for word in group.removesuffix(".k8s.io").split(".")) or "Core"
    kind = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", obj["kind"]).lower()
    name, namespace = obj["metadata"]["name"], target.settings.namespace
    scoped = obj["kind"] != "Namespace"
    api = getattr(client, f"{group}{version.capitalize()}Api", None)
    method = (
        getattr(api(target.api), f"{verb}_{'namespaced_' if scoped else ''}{kind}", None)
        if api
        else None
    )
    if method is None:
        raise PermanentError(
            f"{_label(obj)} ({obj['apiVersion']}): not a kind the official client can {verb}; "
            "apply it with kubectl"
        )
    arguments = {"namespace": namespace} if scoped else {}
    try:
        if verb == "create":
            return method(**arguments, **kwargs)
        return method(name, **arguments, **kwargs)
    except ApiException as exc:
        if exc.status == 404 and verb in ("read", "delete"):
            return None
        raise


def _remove(target: KubernetesTarget, objects: list[dict[str, Any]]) -> None:
    for obj in reversed(objects):
        target.call(lambda obj=obj: _api(target, obj, "delete"))


def _label(obj: dict[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata']['name']}"


def _write_baseline(path: Path, objects: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(yaml.safe_dump(objects, sort_keys=False))
    os.replace(partial, path)


def _read_baseline(path: Path) -> list[dict[str, Any]]:
    """The objects last applied; a damaged file is named, never half-read."""
    objects = load_yaml(path, "release baseline (written by `governance release bootstrap`)")
    if not isinstance(objects, list) or not all(
        isinstance(o, dict)
        and isinstance(o.get("kind"), str)
        and isinstance(o.get("apiVersion"), str)
        and isinstance(o.get("metadata"), dict)
        and isinstance(o["metadata"].get("name"), str)
        for o in objects
    ):
        raise ConfigError(
            f"{path}: not a list of Kubernetes objects; run `governance release bootstrap` again"
        )
    return objects

"""A release assembled from the estate: its target, controller, candidate, approvals and status."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from governance.audit.store import AuditTrail
from governance.config import Estate, ReleaseSpec
from governance.errors import PermanentError
from governance.explain import ServingView
from governance.home import GovernanceHome
from governance.images.containers import ContainerStorage
from governance.models.gate import CHAMPION
from governance.models.registry import ModelRegistry
from governance.notify.alerts import Alerts
from governance.releases.candidate import Candidate, ServedModel, served_versions
from governance.releases.controller import Controller
from governance.releases.state import COLORS, release_state
from governance.releases.target import Target


def release_dir(home: GovernanceHome, name: str) -> Path:
    return home.dir("releases") / name


def make_target(
    spec: ReleaseSpec,
    estate: Estate,
    home: GovernanceHome,
    storage: ContainerStorage,
    registry: ModelRegistry,
) -> Target:
    directory = release_dir(home, spec.name)
    if spec.target == "kubernetes":
        from governance.releases.kubernetes import KubernetesTarget

        assert spec.kubernetes is not None
        return KubernetesTarget(
            spec,
            spec.kubernetes,
            directory,
            lambda candidate: registry.digest(*_model(candidate)),
            home.locks,
        )
    from governance.machine import require
    from governance.releases.local import LocalTarget

    require(f"release {spec.name} (target local)", ("podman", "nginx"))

    def model_dir(candidate: Candidate) -> Path | None:
        if candidate.model is None:
            return None
        name, version = _model(candidate)
        return registry.download(name, version, directory / "models" / version)

    upstreams = {
        variable: f"http://127.0.0.1:{estate.release(upstream).local.service_port}"
        for variable, upstream in spec.upstreams.items()
    }
    return LocalTarget(spec, directory, storage, model_dir, upstreams)


def _model(candidate: Candidate) -> tuple[str, str]:
    if candidate.model is None:
        raise PermanentError(f"release {candidate.release} serves no model")
    return candidate.model.name, candidate.model.version


def make_controller(
    spec: ReleaseSpec,
    home: GovernanceHome,
    target: Target,
    registry: ModelRegistry,
    trail: AuditTrail,
    alerts: Alerts,
) -> Controller:

    def champion(candidate: Candidate) -> None:
        """The model a release serves is its registry's champion; an app release has none."""
        from governance.models.aliases import promote

        if candidate.model is None:
            return
        name, version = _model(candidate)
        if registry.aliases(name).get(CHAMPION) == version:
            return
        promote(
            registry,
            name,
            version,
            CHAMPION,
            reason=f"serves release {spec.name} ({candidate.version})",
            trail=trail,
        )

    return Controller(
        spec,
        target,
        release_state(home, spec.name),
        trail,
        alerts,
        champion,
    )


def make_candidate(
    spec: ReleaseSpec,
    estate: Estate,
    target: Target,
    *,
    image: str,
    image_digest: str,
    model_version: str | None,
    dataset_md5: str | None,
) -> Candidate:
    """The candidate of exact versions; `model_version` and `dataset_md5` only for a model release."""
    served = estate.served_model(spec)
    model = None
    if served is not None:
        spec_model, _ = served
        if model_version is None or dataset_md5 is None:
            raise PermanentError(
                f"release {spec.name}: the candidate needs the version of {spec_model.name}"
            )
        model = ServedModel(
            spec_model.name, spec_model.registered_name, model_version, spec_model.dataset, dataset_md5
        )
    draft = Candidate(spec.name, spec.image, image, image_digest, "", model)
    rendered = target.render(draft)
    manifests = "sha256:" + hashlib.sha256(rendered.encode()).hexdigest()
    return replace(draft, manifests_digest=manifests)


def status(spec: ReleaseSpec, home: GovernanceHome, target: Target) -> dict[str, Any]:
    """Where the release is served, which color serves, what each color runs, health, drift from
    what was applied (Kubernetes), last decision."""
    state = release_state(home, spec.name).load()
    active = target.active_color()
    colors = {}
    for color in COLORS:
        candidate = state.on(color)
        running = target.running(color)
        probe = target.probe(color, "/readyz", timeout_s=2) if running else None
        colors[color] = {
            "running": running,
            "healthy": bool(probe and probe.ok),
            "detail": probe.detail if probe else "not running",
            "versions": _versions(candidate) if candidate else None,
        }
    from governance.releases.kubernetes import KubernetesTarget

    drift = None
    if isinstance(target, KubernetesTarget):
        from governance.releases.baseline import drift as cluster_drift

        drift = cluster_drift(target)
    return {
        "name": spec.name,
        "target": spec.target,
        "service_url": target.service_url,
        "active_color": active,
        "colors": colors,
        "drift": drift,
        "last_decision": state.last_decision,
        "checked_at": time.time(),
    }


def _versions(candidate: Candidate) -> dict[str, str]:
    return {**served_versions(candidate), "image": candidate.image}


def serving(spec: ReleaseSpec, home: GovernanceHome, target: Target) -> ServingView:
    color = target.active_color()
    candidate = release_state(home, spec.name).load().on(color) if color else None
    return ServingView(target.service_url, color, candidate)

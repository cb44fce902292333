"""A model version's life against exact dataset versions: train on the current one, gate on its own."""

from __future__ import annotations

from collections.abc import Mapping

from governance.audit.store import AuditTrail
from governance.config import DatasetSpec, ModelSpec
from governance.datasets.lifecycle import read_version
from governance.datasets.versioning import DatasetStore
from governance.errors import PermanentError
from governance.models.aliases import move_alias
from governance.models.gate import CHALLENGER, GateOutcome, gate_version
from governance.models.registry import ModelRegistry
from governance.models.training import DATASET_MD5_TAG, TrainedVersion, code_version, train_and_register

GATED = "model.gated"


def train_on_current(
    spec: ModelSpec,
    dataset: DatasetSpec,
    store: DatasetStore,
    registry: ModelRegistry,
    tags: Mapping[str, str],
    trail: AuditTrail,
) -> TrainedVersion:
    current = store.current(dataset.name)
    if current is None:
        raise PermanentError(
            f"{spec.name}: dataset {dataset.name} has no published version yet; materialize it first"
        )
    frame = read_version(dataset, store, current.md5)
    trained = train_and_register(
        spec,
        frame,
        dataset_md5=current.md5,
        dataset_source=str(store.workspace_file(dataset.name)),
        code_version=code_version(spec),
        registry=registry,
        tags=tags,
    )
    trail.record_or_undo(
        "model.registered",
        f"model:{spec.registered_name}",
        {
            "model_version": trained.ref,
            "dataset_md5": trained.dataset_md5,
            "mlflow_run_id": trained.run_id,
        },
        "registered",
        [],
        undo=lambda: registry.delete_version(spec.registered_name, trained.version),
        done=f"{trained.ref} was registered",
    )
    return trained


def gate(
    spec: ModelSpec,
    dataset: DatasetSpec,
    store: DatasetStore,
    registry: ModelRegistry,
    version: str,
    trail: AuditTrail,
) -> GateOutcome:
    """Gate `version` on the held-out rows of the dataset version it was trained on, not today's."""
    registered = registry.version(spec.registered_name, version)
    md5 = registered.tags.get(DATASET_MD5_TAG)
    if not md5:
        raise PermanentError(
            f"{spec.registered_name}/{version} has no {DATASET_MD5_TAG} tag: not trained by the platform"
        )
    name = spec.registered_name
    outcome = gate_version(spec, registry, version, read_version(dataset, store, md5))
    versions = {"model_version": f"{name}/{version}", "dataset_md5": md5}
    if outcome.champion_version:
        versions["champion_version"] = f"{name}/{outcome.champion_version}"
    reasons = outcome.decision.reasons
    holds_alias = registry.aliases(name).get(CHALLENGER) == version
    if outcome.decision.passed or holds_alias:  # a pass takes the alias; a failed re-gate loses it
        passed = outcome.decision.passed
        move_alias(
            registry,
            name,
            CHALLENGER,
            version if passed else None,
            trail=trail,
            action=GATED,
            decision="passed: aliased challenger" if passed else "failed",
            reasons=reasons,
            versions=versions,
        )
    else:
        trail.record(GATED, f"model:{name}", versions, "failed", reasons)
    return outcome

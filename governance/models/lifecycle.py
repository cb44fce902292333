"""A model version's life against exact dataset versions: train on the current one, gate on its own."""

from __future__ import annotations

from collections.abc import Mapping

from governance.config import DatasetSpec, ModelSpec
from governance.datasets.lifecycle import read_version
from governance.datasets.versioning import DatasetStore
from governance.errors import PermanentError
from governance.models.gate import GateOutcome, gate_version
from governance.models.registry import ModelRegistry
from governance.models.training import DATASET_MD5_TAG, TrainedVersion, code_version, train_and_register


def train_on_current(
    spec: ModelSpec,
    dataset: DatasetSpec,
    store: DatasetStore,
    registry: ModelRegistry,
    tags: Mapping[str, str],
) -> TrainedVersion:
    current = store.current(dataset.name)
    if current is None:
        raise PermanentError(
            f"{spec.name}: dataset {dataset.name} has no published version yet; materialize it first"
        )
    frame = read_version(dataset, store, current.md5)
    return train_and_register(
        spec,
        frame,
        dataset_md5=current.md5,
        dataset_source=str(store.workspace_file(dataset.name)),
        code_version=code_version(spec),
        registry=registry,
        tags=tags,
    )


def gate(
    spec: ModelSpec, dataset: DatasetSpec, store: DatasetStore, registry: ModelRegistry, version: str
) -> GateOutcome:
    """Gate `version` on the held-out rows of the dataset version it was trained on, not today's."""
    registered = registry.version(spec.registered_name, version)
    md5 = registered.tags.get(DATASET_MD5_TAG)
    if not md5:
        raise PermanentError(
            f"{spec.registered_name}/{version} has no {DATASET_MD5_TAG} tag: not trained by the platform"
        )
    return gate_version(spec, registry, version, read_version(dataset, store, md5))

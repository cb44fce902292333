"""Train a model version on an exact dataset version, track it, and register it.

The split is deterministic (stratified, seeded), so the same dataset version, code and seed give the
same metrics, and the gate can score the champion on exactly the candidate's held-out rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance.config import ModelSpec
from governance.models.metrics import classification_metrics
from governance.models.registry import ModelRegistry
from governance.plugins import load_callable
from governance.provenance import fingerprint

if TYPE_CHECKING:
    import pandas as pd

DATASET_MD5_TAG = "governance.dataset_md5"
DATASET_TAG = "governance.dataset"
CODE_VERSION_TAG = "governance.code_version"


@dataclass(frozen=True)
class TrainedVersion:
    registered_name: str
    version: str
    run_id: str
    experiment_id: str
    model_uri: str
    dataset_md5: str
    metrics: dict[str, float]
    train_rows: int
    test_rows: int

    @property
    def ref(self) -> str:
        return f"{self.registered_name}/{self.version}"


def code_version(spec: ModelSpec) -> str:
    """Trainer code, hyperparameters, seed and split: what makes a retrain give other metrics."""
    settings = json.dumps([spec.params, spec.seed, spec.test_fraction, spec.target], sort_keys=True)
    return fingerprint(spec.trainer.file, spec.trainer.function, settings)


def split(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=spec.test_fraction, random_state=spec.seed, stratify=frame[spec.target]
    )
    return train, test


def held_out(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.Series]:
    _, test = split(frame, spec)
    return test.drop(columns=[spec.target]), test[spec.target]


def train_and_register(
    spec: ModelSpec,
    frame: pd.DataFrame,
    *,
    dataset_md5: str,
    dataset_source: str,
    code_version: str,
    registry: ModelRegistry,
    tags: Mapping[str, str],
) -> TrainedVersion:
    """Fit, evaluate on held-out rows, log everything to one MLflow run, register a version."""
    import mlflow

    train, test = split(frame, spec)
    x_train, y_train = train.drop(columns=[spec.target]), train[spec.target]
    x_test, y_test = test.drop(columns=[spec.target]), test[spec.target]
    lineage = {
        DATASET_TAG: spec.dataset,
        DATASET_MD5_TAG: dataset_md5,
        CODE_VERSION_TAG: code_version,
        **tags,
    }
    with registry.active_run(f"{spec.name}-{dataset_md5[:8]}", lineage) as run:
        mlflow.log_params(
            {
                **spec.params,
                "seed": spec.seed,
                "test_fraction": spec.test_fraction,
                "trainer": spec.trainer.function,
            }
        )
        dataset = _tracked_dataset(frame, spec, dataset_source, dataset_md5)
        registry.call(
            f"record {spec.dataset} as the training input",
            lambda: mlflow.log_input(dataset, context="training"),
        )
        model = load_callable(spec.trainer)(x_train, y_train, params=dict(spec.params), seed=spec.seed)
        metrics = classification_metrics(list(y_test), list(model.predict(x_test)))
        mlflow.log_metrics(metrics)
        info = _log_model(model, x_test)
        # Inside the run's scope: MLflow resolves the logged model's `models:/m-…` source through
        # the fluent URI, which the scope sets to this registry's store.
        version = registry.register(
            spec.registered_name, info.model_uri, info.model_id, run.info.run_id, lineage
        )
        registry.digest(spec.registered_name, str(version.version))  # what a fetching server checks
    return TrainedVersion(
        registered_name=spec.registered_name,
        version=str(version.version),
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=info.model_uri,
        dataset_md5=dataset_md5,
        metrics=metrics,
        train_rows=len(train),
        test_rows=len(test),
    )


def _tracked_dataset(frame: pd.DataFrame, spec: ModelSpec, source: str, md5: str) -> Any:
    """MLflow's dataset record, with the DVC md5 as its digest so the two registries agree."""
    import warnings

    import mlflow.data

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        return mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame, source=source, name=spec.dataset, targets=spec.target, digest=md5
        )


def _log_model(model: Any, sample: pd.DataFrame) -> Any:
    """Log with a signature, an input example and only the requirements serving needs: without
    them MLflow exports the whole platform's lockfile as the model's environment."""
    import warnings
    from importlib.metadata import version

    import mlflow
    from mlflow.models import infer_signature

    requirements = [f"{package}=={version(package)}" for package in ("scikit-learn", "pandas", "numpy")]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Integer columns in Python cannot represent missing")
        signature = infer_signature(sample, model.predict(sample))
        return mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=sample.head(3),
            pip_requirements=requirements,
        )


def model_card(spec: ModelSpec, trained: TrainedVersion) -> str:
    metrics = "\n".join(
        f"| {name} | {value:.4f} | {spec.thresholds.get(name, '')} |"
        for name, value in sorted(trained.metrics.items())
    )
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items()) or "(defaults)"
    return (
        f"### {trained.ref}\n\n{spec.description}\n\n"
        f"- **Dataset**: `{spec.dataset}` at DVC md5 `{trained.dataset_md5}` "
        f"({trained.train_rows} train / {trained.test_rows} held-out rows, "
        f"stratified, seed {spec.seed})\n"
        f"- **Trainer**: `{spec.trainer.file.name}:{spec.trainer.function}` with {params}\n"
        f"- **Target**: `{spec.target}`\n- **MLflow run**: `{trained.run_id}`\n\n"
        f"| metric | held-out value | minimum |\n|---|---|---|\n{metrics}\n"
    )

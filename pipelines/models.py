"""Model assets: train + track + register in MLflow, and the evaluation gate that grants `challenger`."""

from typing import TYPE_CHECKING

import dagster as dg
from dagster import AssetCheckExecutionContext, AssetExecutionContext

from governance.config import DatasetSpec, ModelSpec
from governance.errors import PermanentError
from governance.lineage import refs
from governance.models.lifecycle import gate, train_on_current
from governance.models.training import code_version, model_card
from governance.provenance import git_commit
from pipelines.failures import permanent_failures
from pipelines.lineage import lineage_run
from pipelines.metadata import (
    DATASET_VERSION,
    MODEL_VERSION,
    Materialized,
    code_references,
    gate_metadata,
    latest_entry,
)
from pipelines.resources import AuditResource, DatasetStoreResource, LineageResource, MlflowResource

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

GROUP = "models"
GATE_CHECK = "meets_promotion_policy"


def model_definitions(
    spec: ModelSpec, dataset: DatasetSpec, retry: dg.RetryPolicy
) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    return [_model_asset(spec, dataset, retry), _gate_check(spec, dataset)]


def retrain_job(spec: ModelSpec) -> "UnresolvedAssetJobDefinition":
    """One click in the UI (Jobs → retrain_…): the model on the current dataset version, its gate,
    and everything downstream of it (release candidates and deploys, each behind its own gates)."""
    return dg.define_asset_job(
        f"retrain_{spec.name}",
        selection=dg.AssetSelection.assets(spec.name).downstream(),
        description=f"Retrain {spec.name} on the current version of {spec.dataset}, gate it, and "
        "materialize everything downstream (releases promote only through their own gates).",
    )


def _model_asset(spec: ModelSpec, dataset: DatasetSpec, retry: dg.RetryPolicy) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        deps=[dataset.name],
        group_name=GROUP,
        owners=[spec.owner],
        kinds={"mlflow", "scikitlearn"},
        description=spec.description,
        code_version=code_version(spec),
        retry_policy=retry,
        metadata=code_references(("trainer", spec.trainer.file, spec.trainer.line)),
        # retrained on each new dataset version; a release's deploy stays a person's decision
        automation_condition=dg.AutomationCondition.eager(),
    )
    def model(
        context: AssetExecutionContext,
        datasets: DatasetStoreResource,
        mlflow: MlflowResource,
        lineage: LineageResource,
        audit: AuditResource,
    ) -> Materialized:
        registry = mlflow.registry()
        commit = git_commit(spec.trainer.file.parent)
        tags = {"dagster.run_id": context.run.run_id, "git.commit": commit}
        trail = audit.trail(context.run.run_id)
        with lineage_run(
            context, lineage, refs.model_job(spec), [refs.governed_dataset(dataset)]
        ) as run:
            with permanent_failures():
                trained = train_on_current(spec, dataset, datasets.store(), registry, tags, trail)
            run.inputs = [refs.governed_dataset(dataset, trained.dataset_md5)]
            run.outputs = [refs.model_version(spec, registry.settings.tracking_uri, trained.version)]
        run_url = registry.run_url(trained.experiment_id, trained.run_id)
        version_url = registry.version_url(trained.registered_name, trained.version)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(trained.ref),
            metadata={
                MODEL_VERSION: trained.version,
                "registered_model": trained.registered_name,
                DATASET_VERSION: trained.dataset_md5,
                "mlflow_run_id": trained.run_id,
                "git_commit": commit,
                **({"mlflow_run": dg.MetadataValue.url(run_url)} if run_url else {}),
                **({"mlflow_model_version": dg.MetadataValue.url(version_url)} if version_url else {}),
                **{metric: value for metric, value in trained.metrics.items()},
                "model_card": dg.MetadataValue.md(model_card(spec, trained)),
                "lineage_run_id": run.run_id,
                "lineage_graph": lineage.graph_link(),
                "lineage_explorer": lineage.explorer_link(),
            },
        )

    return model


def _gate_check(spec: ModelSpec, dataset: DatasetSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=spec.name,
        name=GATE_CHECK,
        blocking=True,
        description=(
            "Metrics meet the thresholds and do not regress past the champion on the same "
            f"held-out rows; only then is the version aliased `challenger` in {spec.registered_name}."
        ),
    )
    def meets_promotion_policy(
        context: AssetCheckExecutionContext,
        datasets: DatasetStoreResource,
        mlflow: MlflowResource,
        lineage: LineageResource,
        audit: AuditResource,
    ) -> dg.AssetCheckResult:
        version = latest_entry(context.instance, spec.name, MODEL_VERSION)
        if version is None:
            return dg.AssetCheckResult(passed=False, description=f"{spec.name} has not been trained yet")
        registry = mlflow.registry()
        uri = registry.settings.tracking_uri
        job = refs.check_job(spec.name, GATE_CHECK, spec.owner)
        with lineage_run(context, lineage, job, [refs.model_version(spec, uri, version)]) as run:
            try:
                outcome = gate(
                    spec, dataset, datasets.store(), registry, version, audit.trail(context.run.run_id)
                )
            except PermanentError as exc:
                return dg.AssetCheckResult(
                    passed=False, description=str(exc), metadata={"error": str(exc)}
                )
            run.inputs = [refs.model_version(spec, uri, version, outcome.decision)]
        verdict = (
            "passed; aliased challenger"
            if outcome.decision.passed
            else "; ".join(outcome.decision.reasons)
        )
        return dg.AssetCheckResult(
            passed=outcome.decision.passed,
            description=f"{spec.registered_name}/{version}: {verdict}",
            metadata={**gate_metadata(outcome), "lineage_run_id": run.run_id},
        )

    return meets_promotion_policy

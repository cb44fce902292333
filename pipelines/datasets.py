"""Dataset assets: a raw ingest asset, the governed dataset (DVC-versioned), and its suite check."""

from datetime import timedelta

import dagster as dg
from dagster import AssetCheckExecutionContext, AssetExecutionContext

from governance.config import DatasetSpec
from governance.datasets.lifecycle import code_version, ingest, landed_path, publish, validate_current
from governance.errors import PermanentError
from governance.lineage import refs
from pipelines.failures import permanent_failures
from pipelines.lineage import lineage_run
from pipelines.metadata import (
    DATASET_VERSION,
    Materialized,
    code_references,
    column_schema,
    page_link,
    validation_metadata,
)
from pipelines.resources import (
    AuditResource,
    DatasetStoreResource,
    ExpectationsResource,
    LineageResource,
)

GROUP = "datasets"
SUITE_CHECK = "matches_expectation_suite"


def dataset_definitions(
    spec: DatasetSpec, retry: dg.RetryPolicy
) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    raw = _raw_asset(spec, retry)
    return [raw, _dataset_asset(spec, raw, retry), _suite_check(spec)]


def _raw_asset(spec: DatasetSpec, retry: dg.RetryPolicy) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.raw_name,
        group_name=GROUP,
        owners=[spec.owner],
        kinds={"csv"},
        description=f"Raw {spec.name} as ingested from {spec.source.describe()}.",
        retry_policy=retry,
    )
    def raw(
        context: AssetExecutionContext,
        datasets: DatasetStoreResource,
        lineage: LineageResource,
        audit: AuditResource,
    ) -> Materialized:
        with (
            lineage_run(context, lineage, refs.raw_job(spec), [refs.raw_file(spec)]) as run,
            permanent_failures(),
        ):
            landed = ingest(spec, datasets.landing(), audit.trail(context.run.run_id))
            run.inputs = [refs.raw_file(spec, landed.sha256, landed.rows)]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(landed.sha256),
            metadata={
                "source": dg.MetadataValue.path(str(landed.source)),
                "landed_at": dg.MetadataValue.path(str(landed.path)),
                "sha256": landed.sha256,
                "dagster/row_count": landed.rows,
                "dagster/column_schema": column_schema(spec),  # what the file was read against
                "lineage_run_id": run.run_id,
            },
        )

    return raw


def _dataset_asset(
    spec: DatasetSpec, raw: dg.AssetsDefinition, retry: dg.RetryPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        deps=[raw],
        group_name=GROUP,
        owners=[spec.owner],
        kinds={"dvc", "pandas"},
        description=spec.description,
        code_version=code_version(spec),
        retry_policy=retry,
        metadata=code_references(
            ("cleaner", spec.cleaner.file, spec.cleaner.line), ("expectation suite", spec.suite, None)
        ),
        freshness_policy=(
            dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=spec.freshness_hours))
            if spec.freshness_hours
            else None
        ),
        automation_condition=dg.AutomationCondition.eager(),  # a new raw file is published
    )
    def dataset(
        context: AssetExecutionContext,
        datasets: DatasetStoreResource,
        expectations: ExpectationsResource,
        lineage: LineageResource,
        audit: AuditResource,
    ) -> Materialized:
        landed = landed_path(spec, datasets.landing())
        trail = audit.trail(context.run.run_id)
        with lineage_run(context, lineage, refs.dataset_job(spec), [refs.raw_file(spec)]) as run:
            with permanent_failures(expectations.site()):
                published = publish(spec, landed, datasets.store(), expectations.directory(), trail)
            version, previous = published.version, published.previous
            run.inputs = [refs.raw_file(spec, published.landed_sha256)]
            run.outputs = [
                refs.governed_dataset(spec, version.md5, published.rows, published.null_counts)
            ]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version.md5),
            metadata={
                "dvc_md5": version.md5,
                "previous_dvc_md5": previous.md5 if previous else "(none)",
                "size_bytes": version.size,
                "dvc_commit": version.commit,
                "dagster/row_count": published.rows,
                "dagster/column_schema": column_schema(spec),
                "null_counts": dg.MetadataValue.json(published.null_counts),
                "validation": published.report.summary(),
                "lineage_run_id": run.run_id,
                "lineage_graph": lineage.graph_link(),
                "lineage_explorer": lineage.explorer_link(),
                **(
                    {"data_docs": page_link(expectations.site(), published.report.docs_url)}
                    if published.report.docs_url
                    else {}
                ),
            },
        )

    return dataset


def _suite_check(spec: DatasetSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=spec.name,
        name=SUITE_CHECK,
        blocking=True,
        description=f"The current DVC version of {spec.name} passes {spec.suite.name}.",
    )
    def matches_expectation_suite(
        context: AssetCheckExecutionContext,
        datasets: DatasetStoreResource,
        expectations: ExpectationsResource,
        lineage: LineageResource,
        audit: AuditResource,
    ) -> dg.AssetCheckResult:
        job = refs.check_job(spec.name, SUITE_CHECK, spec.owner)
        trail = audit.trail(context.run.run_id)
        with lineage_run(context, lineage, job, [refs.governed_dataset(spec)]) as run:
            try:
                version, report = validate_current(
                    spec, datasets.store(), expectations.directory(), trail
                )
            except PermanentError as exc:
                return dg.AssetCheckResult(
                    passed=False, description=str(exc), metadata={"error": str(exc)}
                )
            run.inputs = [refs.governed_dataset(spec, version.md5, report.row_count, report=report)]
        return dg.AssetCheckResult(
            passed=report.success,
            description=report.summary(),
            metadata={
                DATASET_VERSION: version.md5,
                "lineage_run_id": run.run_id,
                **validation_metadata(report, expectations.site()),
            },
        )

    return matches_expectation_suite

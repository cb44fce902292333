"""Dataset assets: a raw ingest asset, the governed dataset (DVC-versioned), and its suite check."""

from __future__ import annotations

import dagster as dg

from governance.config import DatasetSpec
from governance.datasets.lifecycle import code_version, ingest, landed_path, publish, validate_current
from governance.errors import PermanentError
from pipelines.failures import permanent_failures
from pipelines.metadata import column_schema, validation_metadata
from pipelines.resources import DatasetStoreResource, ExpectationsResource

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
    def raw(datasets: DatasetStoreResource) -> dg.MaterializeResult:
        with permanent_failures():
            landed = ingest(spec, datasets.landing())
        return dg.MaterializeResult(
            data_version=dg.DataVersion(landed.sha256),
            metadata={
                "source": dg.MetadataValue.path(str(landed.source)),
                "landed_at": dg.MetadataValue.path(str(landed.path)),
                "sha256": landed.sha256,
                "dagster/row_count": landed.rows,
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
    )
    def dataset(
        datasets: DatasetStoreResource, expectations: ExpectationsResource
    ) -> dg.MaterializeResult:
        landed = landed_path(spec, datasets.landing())
        with permanent_failures():
            published = publish(spec, landed, datasets.store(), expectations.directory())
        version, previous = published.version, published.previous
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
                **(
                    {"data_docs": dg.MetadataValue.url(published.report.docs_url)}
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
        datasets: DatasetStoreResource, expectations: ExpectationsResource
    ) -> dg.AssetCheckResult:
        try:
            version, report = validate_current(spec, datasets.store(), expectations.directory())
        except PermanentError as exc:
            return dg.AssetCheckResult(passed=False, description=str(exc), metadata={"error": str(exc)})
        return dg.AssetCheckResult(
            passed=report.success,
            description=report.summary(),
            metadata={"dataset_md5": version.md5, **validation_metadata(report)},
        )

    return matches_expectation_suite

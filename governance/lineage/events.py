"""OpenLineage run events, built with openlineage-python from plain descriptions.

Callers describe datasets with `DatasetRef` (namespace, name, version and what is known about them);
this module turns that into spec facets: schema, version, ownership, documentation,
dataQualityMetrics, and dataQualityAssertions on inputs (the spec defines it as an input facet: the
dataset a check reads). A dataset's name never carries its version: a consumer such as Marquez keys
a dataset by namespace and name and keeps its versions under it, from the version facet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PRODUCER = "urn:governance-platform:0.1.0"
JOB_NAMESPACE = "governance"
PARENT_NAMESPACE = "dagster"
INTEGRATION = "DAGSTER"


@dataclass(frozen=True)
class Assertion:
    name: str
    success: bool
    column: str | None = None


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str
    version: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)  # column -> type
    owner: str | None = None
    description: str | None = None
    row_count: int | None = None
    null_counts: Mapping[str, int] = field(default_factory=dict)
    assertions: Sequence[Assertion] = ()


@dataclass(frozen=True)
class JobRef:
    name: str
    owner: str | None = None
    description: str | None = None
    job_type: str = "ASSET"  # the jobType facet's: ASSET, or ASSET_CHECK for a check's run


@dataclass(frozen=True)
class ParentRef:
    """The orchestrator's run that ran this job; it is also the root, as nothing launches it."""

    job: str
    run_id: str


def new_run_id() -> str:
    from openlineage.client.uuid import generate_new_uuid

    return str(generate_new_uuid())


def run_event(
    state: str,
    job: JobRef,
    run_id: str,
    *,
    parent: ParentRef | None = None,
    inputs: Sequence[DatasetRef] = (),
    outputs: Sequence[DatasetRef] = (),
    error: str | None = None,
) -> dict[str, Any]:
    """A spec RunEvent as a JSON-ready dict; `state` is START, COMPLETE or FAIL."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.generated import error_message_run, parent_run
    from openlineage.client.serde import Serde

    run_facets: dict[str, Any] = {}
    if parent is not None:
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent.run_id),
            job=parent_run.Job(namespace=PARENT_NAMESPACE, name=parent.job),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=parent.run_id),
                job=parent_run.RootJob(namespace=PARENT_NAMESPACE, name=parent.job),
            ),
        )
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python"
        )
    event = RunEvent(
        eventType=RunState[state],
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=run_id, facets=run_facets),
        job=Job(namespace=JOB_NAMESPACE, name=job.name, facets=_job_facets(job)),
        inputs=[_input(ref) for ref in inputs],
        outputs=[_output(ref) for ref in outputs],
        producer=PRODUCER,
    )
    return dict(Serde.to_dict(event))


def _job_facets(job: JobRef) -> dict[str, Any]:
    from openlineage.client.generated import documentation_job, job_type_job, ownership_job

    facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration=INTEGRATION, jobType=job.job_type
        )
    }
    if job.owner:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=job.owner)]
        )
    if job.description:
        facets["documentation"] = documentation_job.DocumentationJobFacet(description=job.description)
    return facets


def _dataset_facets(ref: DatasetRef) -> dict[str, Any]:
    from openlineage.client.generated import (
        data_quality_metrics_dataset,
        dataset_version_dataset,
        documentation_dataset,
        ownership_dataset,
        schema_dataset,
    )

    facets: dict[str, Any] = {}
    if ref.columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in ref.columns.items()
            ]
        )
    if ref.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=ref.version
        )
    if ref.owner:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=ref.owner)]
        )
    if ref.description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
            description=ref.description
        )
    if ref.row_count is not None:
        facets["dataQualityMetrics"] = data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
            rowCount=ref.row_count,
            columnMetrics={
                col: data_quality_metrics_dataset.ColumnMetrics(nullCount=n)
                for col, n in ref.null_counts.items()
            },
        )
    return facets


def _input(ref: DatasetRef) -> Any:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.generated import data_quality_assertions_dataset as dqa

    input_facets: dict[str, Any] = {}
    if ref.assertions:
        input_facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(
            assertions=[
                dqa.Assertion(assertion=a.name, success=a.success, column=a.column)
                for a in ref.assertions
            ]
        )
    return InputDataset(
        namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref), inputFacets=input_facets
    )


def _output(ref: DatasetRef) -> Any:
    from openlineage.client.event_v2 import OutputDataset

    return OutputDataset(namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref))

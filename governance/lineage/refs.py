"""How the estate's artifacts appear as OpenLineage datasets: a stable namespace and name per
artifact (per the spec's naming conventions where it has one: `file` for a local path), and the exact
version in the version facet, never in the name."""

from __future__ import annotations

from urllib.parse import urlparse

from governance.config import AppImageSpec, DatasetSpec, ModelSpec, ReleaseSpec
from governance.datasets.validation import ValidationReport
from governance.lineage.events import Assertion, DatasetRef, JobRef
from governance.models.policy import GateDecision
from governance.releases import gates

DVC_NAMESPACE = "dvc://governance"
FILE_NAMESPACE = "file"
_COLUMN_TYPES = {"string": "string", "float": "double", "integer": "long"}


def raw_job(spec: DatasetSpec) -> JobRef:
    return JobRef(spec.raw_name, spec.owner, f"Ingest the raw source of {spec.name}.")


def dataset_job(spec: DatasetSpec) -> JobRef:
    return JobRef(spec.name, spec.owner, spec.description)


def model_job(spec: ModelSpec) -> JobRef:
    return JobRef(spec.name, spec.owner, spec.description)


def check_job(asset: str, check: str, owner: str) -> JobRef:
    return JobRef(f"{asset}.{check}", owner, f"Blocking check {check} on {asset}.", "ASSET_CHECK")


def raw_file(spec: DatasetSpec, sha256: str | None = None, rows: int | None = None) -> DatasetRef:
    return DatasetRef(
        namespace=FILE_NAMESPACE,
        name=str(spec.source.resolve()),
        version=sha256,
        columns=_columns(spec),
        owner=spec.owner,
        description=f"Raw source of {spec.name} ({spec.source.describe()}).",
        row_count=rows,
    )


def governed_dataset(
    spec: DatasetSpec,
    md5: str | None = None,
    rows: int | None = None,
    null_counts: dict[str, int] | None = None,
    report: ValidationReport | None = None,
) -> DatasetRef:
    return DatasetRef(
        namespace=DVC_NAMESPACE,
        name=spec.name,
        version=md5,
        columns=_columns(spec),
        owner=spec.owner,
        description=spec.description,
        row_count=rows,
        null_counts=null_counts or {},
        assertions=expectation_assertions(report) if report else (),
    )


def model_version(
    spec: ModelSpec, tracking_uri: str, version: str | None, decision: GateDecision | None = None
) -> DatasetRef:
    """A registered model: namespace `mlflow://HOST`, name `models/NAME`, version the registry's."""
    return DatasetRef(
        namespace=mlflow_namespace(tracking_uri),
        name=f"models/{spec.registered_name}",
        version=version,
        owner=spec.owner,
        description=spec.description,
        assertions=gate_assertions(decision) if decision else (),
    )


def mlflow_namespace(tracking_uri: str) -> str:
    parsed = urlparse(tracking_uri)
    host = parsed.netloc if parsed.scheme in ("http", "https") else "local"
    return f"mlflow://{host}"


def expectation_assertions(report: ValidationReport) -> tuple[Assertion, ...]:
    return tuple(Assertion(o.expectation, o.success, o.column) for o in report.outcomes)


def gate_assertions(decision: GateDecision) -> tuple[Assertion, ...]:
    return tuple(Assertion(f"{c.kind}:{c.metric}", c.passed) for c in decision.criteria)


def _columns(spec: DatasetSpec) -> dict[str, str]:
    return {name: _COLUMN_TYPES[kind] for name, kind in spec.columns.items()}


def image_job(spec: AppImageSpec) -> JobRef:
    return JobRef(spec.name, spec.owner, spec.description)


def image(
    spec: AppImageSpec,
    registry: str,
    digest: str | None = None,
    assertions: tuple[Assertion, ...] = (),
) -> DatasetRef:
    """A built image: namespace `oci://REGISTRY`, name the repository, version the digest."""
    return DatasetRef(
        namespace=f"oci://{registry}",
        name=spec.repository,
        version=digest,
        owner=spec.owner,
        description=spec.description,
        assertions=assertions,
    )


def image_reference(reference: str) -> DatasetRef:
    """Any image by reference (`registry/repository@sha256:…` or `:tag`), such as a base image."""
    registry, _, rest = reference.partition("/")
    repository, _, version = rest.partition("@")
    if not version and ":" in repository.rpartition("/")[2]:
        repository, _, version = repository.rpartition(":")
    return DatasetRef(namespace=f"oci://{registry}", name=repository, version=version or None)


def lockfile(spec: AppImageSpec, name: str, digest: str | None = None) -> DatasetRef:
    return DatasetRef(
        namespace=FILE_NAMESPACE,
        name=str(spec.context.resolve() / name),
        version=digest,
        owner=spec.owner,
        description=f"Dependency lockfile of {spec.name}.",
    )


def release_job(spec: ReleaseSpec, step: str) -> JobRef:
    return JobRef(f"{spec.name}.{step}" if step else spec.name, spec.owner, spec.description)


def release(
    spec: ReleaseSpec, version: str | None, decision: gates.GateDecision | None = None
) -> DatasetRef:
    """A release: namespace `release://TARGET`, name the release, version the hash of what serves."""
    assertions = tuple(Assertion(g.name, g.passed) for g in decision.gates) if decision else ()
    return DatasetRef(
        namespace=f"release://{spec.target}",
        name=spec.name,
        version=version,
        owner=spec.owner,
        description=spec.description,
        assertions=assertions,
    )

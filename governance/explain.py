"""Provenance: from a model version back to the data it came from, with the evidence for each step.

Each link says what it is, when, and what vouches for it (validation results, lineage run ids, audit
records), so a reviewer can answer "what exactly is serving, and where did it come from?" in one
command. A release's chain starts at its service and continues with the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from governance.audit.chain import AuditRecord
from governance.config import DatasetSpec, ModelSpec, ReleaseSpec
from governance.datasets.versioning import DatasetStore
from governance.errors import PermanentError
from governance.lineage import refs
from governance.lineage.events import DatasetRef
from governance.models.registry import ModelRegistry
from governance.models.training import DATASET_MD5_TAG
from governance.releases.approvals import APPROVED, CANDIDATE, REJECTED
from governance.releases.candidate import Candidate

PROPOSALS = (CANDIDATE, APPROVED, REJECTED)


@dataclass(frozen=True)
class Link:
    kind: str
    ref: str
    at: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_model(
    spec: ModelSpec,
    dataset: DatasetSpec,
    registry: ModelRegistry,
    store: DatasetStore,
    audit: Iterable[AuditRecord],
    events: Iterable[Mapping[str, Any]],
    *,
    alias: str | None = None,
    version: str | None = None,
) -> list[Link]:
    """The chain model version -> dataset version -> validations -> lineage runs -> audit records."""
    name = spec.registered_name
    if version is None:
        holder = registry.version_for_alias(name, alias or "champion")
        if holder is None:
            raise PermanentError(f"{name} has no version with alias {alias or 'champion'!r}")
        version = str(holder.version)
    registered = registry.version(name, version)
    md5 = registered.tags.get(DATASET_MD5_TAG, "")
    ref = f"{name}/{version}"
    records, events = list(audit), list(events)
    links = [
        Link(
            "model version",
            ref,
            _ms(registered.creation_timestamp),
            {
                "aliases": sorted(a for a, v in registry.aliases(name).items() if v == version),
                "mlflow_run_id": registered.run_id,
                "gate": registered.tags.get("governance.gate.status", "not gated"),
                "git_commit": registered.tags.get("git.commit", ""),
                "dagster_run_id": registered.tags.get("dagster.run_id", ""),
            },
        )
    ]
    dataset_version = next((v for v in store.history(dataset.name) if v.md5 == md5), None)
    links.append(
        Link(
            "dataset version",
            f"{dataset.name}@{md5}",
            dataset_version.committed_at if dataset_version else "",
            {
                "dvc_commit": dataset_version.commit
                if dataset_version
                else "(not in this home's DVC history)"
            },
        )
    )
    links += [
        Link(
            "validation",
            f"{r.action} {r.decision}",
            r.at,
            {"audit_seq": r.seq, "reasons": list(r.reasons)},
        )
        for r in records
        if r.subject == f"dataset:{dataset.name}" and r.versions.get("md5") == md5
    ]
    lineage = [
        refs.governed_dataset(dataset, md5),
        refs.model_version(spec, registry.settings.tracking_uri, version),
    ]
    links += _lineage_links(events, lineage)
    links += _audit_links(
        records,
        lambda r: (
            ref in r.versions.values()
            or (r.subject == f"dataset:{dataset.name}" and md5 in r.versions.values())
        ),
    )
    return links


def _lineage_links(events: Iterable[Mapping[str, Any]], versions: Iterable[DatasetRef]) -> list[Link]:
    """The lineage runs that read or wrote any of `versions` (a version is only unique within its
    dataset: model version 1 of one model is not that of another)."""
    wanted = {(ref.namespace, ref.name, ref.version) for ref in versions}
    return [
        Link(
            "lineage run",
            f"{e['job']['name']} {e['eventType']}",
            e["eventTime"],
            {"run_id": e["run"]["runId"]},
        )
        for e in events
        if _mentions(e, wanted)
    ]


def _audit_links(records: Iterable[AuditRecord], keep: Callable[[AuditRecord], bool]) -> list[Link]:
    return [
        Link(
            "audit record",
            f"{r.action} {r.decision}",
            r.at,
            {"seq": r.seq, "actor": r.actor, "hash": r.hash},
        )
        for r in records
        if keep(r)
    ]


def _mentions(event: Mapping[str, Any], versions: set[tuple[str, str, str | None]]) -> bool:
    for dataset in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
        version = (dataset.get("facets") or {}).get("version", {}).get("datasetVersion")
        if (dataset.get("namespace"), dataset.get("name"), version) in versions:
            return True
    return False


def _ms(timestamp: int | None) -> str:
    return datetime.fromtimestamp((timestamp or 0) / 1000, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ServingView:
    """What the target reports serving, with the versions the platform recorded for that color."""

    service_url: str
    color: str | None
    candidate: Candidate | None


def explain_release(
    spec: ReleaseSpec,
    serving: ServingView,
    served_model: tuple[ModelSpec, DatasetSpec] | None,
    registry: ModelRegistry,
    store: DatasetStore,
    audit: Iterable[AuditRecord],
    events: Iterable[Mapping[str, Any]],
) -> list[Link]:
    """From what serves now: service -> color -> image digest -> (for a model release) model
    version -> dataset md5 -> validations -> lineage runs -> audit records."""
    candidate = serving.candidate
    if serving.color is None or candidate is None:
        raise PermanentError(f"release {spec.name}: nothing is serving (no promotion recorded)")
    records, events = list(audit), list(events)
    decided = next(
        (
            r
            for r in reversed(records)
            if r.subject == f"release:{spec.name}"
            and r.versions.get("release") == candidate.version
            and r.action not in PROPOSALS  # the switch's own record, not the candidate's review
        ),
        None,
    )
    built = next(
        (
            r
            for r in reversed(records)
            if r.action == "image.built" and r.versions.get("digest") == candidate.image_digest
        ),
        None,
    )
    links = [
        Link("service", serving.service_url, _now(), {"release": spec.name, "target": spec.target}),
        Link(
            "color",
            serving.color,
            decided.at if decided else "",
            {"release_version": candidate.version, "decision": decided.decision if decided else ""},
        ),
        Link(
            "image",
            candidate.image,
            built.at if built else "",
            {
                "digest": candidate.image_digest,
                "lockfile": built.versions.get("lockfile", "") if built else "",
            },
        ),
    ]
    if served_model is not None and candidate.model is not None:
        model, dataset = served_model
        links += explain_model(
            model, dataset, registry, store, records, events, version=candidate.model.version
        )
    release_versions = [refs.image_reference(candidate.image), refs.release(spec, candidate.version)]
    evidence = _lineage_links(events, release_versions) + _audit_links(
        records, lambda r: candidate.version in r.versions.values() or r is built
    )
    return links + [link for link in evidence if link not in links]  # the model's chain has some


def provenance_page(title: str, links: Iterable[Link]) -> str:
    """The chain as a page a reviewer opens from the UI: every value escaped, wide cells wrapped."""
    import html

    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(cell))}</td>"
            for cell in (
                link.kind,
                link.ref,
                link.at,
                "; ".join(f"{k}={v}" for k, v in link.details.items() if v not in ("", [], None)),
            )
        )
        + "</tr>"
        for link in links
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;"
        "overflow-wrap:anywhere}"
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{style}</style><h1>{html.escape(title)}</h1>"
        f"<table><tr><th>link</th><th>ref</th><th>at</th><th>evidence</th></tr>{rows}</table>\n"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

"""Library results as Dagster metadata a reviewer can read: numbers as numbers, tables as tables."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import dagster as dg

from governance.config import DatasetSpec
from governance.datasets.validation import ValidationReport
from governance.errors import PermanentError
from governance.explain import Link
from governance.images.dockerfile import Finding
from governance.images.lifecycle import ImageBuild
from governance.models.gate import GateOutcome
from governance.releases.gates import GateDecision
from governance.site import Site

_TYPES = {"string": "string", "float": "float", "integer": "int"}
# The entry in which each kind of asset and check records its exact version; release gates and
# candidates match on these, so they are named once.
DATASET_VERSION, MODEL_VERSION, IMAGE_VERSION = "dataset_md5", "model_version", "digest"

# What an asset body returns. Dagster recognises the bare class (not a parametrised one) as "no
# output value", so only the type checker sees the parameter.
if TYPE_CHECKING:
    Materialized: TypeAlias = dg.MaterializeResult[None]
else:
    Materialized = dg.MaterializeResult


def latest_entry(instance: dg.DagsterInstance, asset: str, key: str) -> Any:
    """One metadata entry of the asset's latest materialization, or None before the first."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    materialization = event.asset_materialization if event else None
    if materialization is None or key not in materialization.metadata:
        return None
    return materialization.metadata[key].value


def column_schema(spec: DatasetSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, _TYPES[kind]) for name, kind in spec.columns.items()]
    )


def page_link(site: Site, page: str | Path) -> dg.MetadataValue:
    """An http link to a page of the platform's site (a browser follows no `file://` link from the
    UI); a page outside the site (a context directory of one's own) stays a path."""
    try:
        return dg.MetadataValue.url(site.url(page))
    except PermanentError:
        return dg.MetadataValue.path(str(page).removeprefix("file://"))


def code_references(*places: tuple[str, Path, int | None]) -> dict[str, Any]:
    """The user's own files behind an asset (cleaner, suite, trainer, Dockerfile), as the asset
    page's code links: (label, file, line)."""
    with warnings.catch_warnings():  # beta in Dagster 1.13; said once here, not on every load
        warnings.simplefilter("ignore", dg.BetaWarning)
        references: list[dg.LocalFileCodeReference | dg.UrlCodeReference] = [
            dg.LocalFileCodeReference(file_path=str(path.resolve()), line_number=line, label=label)
            for label, path, line in places
        ]
        value = dg.CodeReferencesMetadataValue(code_references=references)
    return {"dagster/code_references": value}


def validation_metadata(report: ValidationReport, site: Site) -> dict[str, Any]:
    """Per-expectation results, offending rows and the Data Docs link."""
    metadata: dict[str, Any] = {
        "suite": dg.MetadataValue.path(str(report.suite)),
        "expectations_evaluated": len(report.outcomes),
        "expectations_failed": len(report.failures),
        "rows_validated": report.row_count,
        "summary": report.summary(),
        "expectations": _table(
            [
                {
                    "success": outcome.success,
                    "column": outcome.column or "(table)",
                    "expectation": outcome.expectation,
                    "parameters": ", ".join(f"{k}={v}" for k, v in outcome.params.items()),
                    "observed": outcome.observed[:200],
                    "unexpected_count": outcome.unexpected_count or 0,
                }
                for outcome in sorted(report.outcomes, key=lambda o: o.success)
            ],
            {
                "success": "bool",
                "column": "string",
                "expectation": "string",
                "parameters": "string",
                "observed": "string",
                "unexpected_count": "int",
            },
        ),
    }
    if report.sample_rows:
        metadata["offending_rows_sample"] = dg.MetadataValue.md(_markdown_table(report.sample_rows))
    if report.docs_url:
        metadata["data_docs"] = page_link(site, report.docs_url)
    return metadata


def _table(rows: list[dict[str, Any]], types: dict[str, str]) -> dg.TableMetadataValue:
    """Rows as a Dagster table, so the UI can sort and filter them."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in types.items()])
    records = [
        dg.TableRecord({k: _abbreviated(v) if isinstance(v, str) else v for k, v in row.items()})
        for row in rows
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


_RUN_ID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_LONG_HEX = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{8,}\b")


def _abbreviated(text: str) -> str:
    """A cell with its digests and run ids cut to the prefixes people quote (a run id as the UI
    shows it): a browser cannot wrap such a token, so one of them stretches the table past the
    page. The full values are in the asset's own entries and its audit records."""
    return _LONG_HEX.sub(r"\1…", _RUN_ID.sub(r"\1", text))


def _markdown_table(rows: tuple[dict[str, Any], ...]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(row.get(key)) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """One Markdown table cell: a `|` or a line break in a value would end the cell or the row."""
    return " ".join(str(value).split()).replace("|", "\\|")


def gate_metadata(outcome: GateOutcome) -> dict[str, Any]:
    """Each criterion with its evidence; candidate and champion metrics as numbers."""
    metadata: dict[str, Any] = {
        MODEL_VERSION: outcome.version,
        DATASET_VERSION: outcome.dataset_md5,
        "decision": "passed" if outcome.decision.passed else "failed",
        "champion_version": outcome.champion_version or "(none)",
        "criteria": _table(
            [
                {
                    "passed": c.passed,
                    "metric": c.metric,
                    "kind": c.kind,
                    "observed": c.observed,
                    "required": c.required,
                }
                for c in outcome.decision.criteria
            ],
            {
                "passed": "bool",
                "metric": "string",
                "kind": "string",
                "observed": "float",
                "required": "float",
            },
        ),
        **{f"candidate_{k}": v for k, v in outcome.candidate_metrics.items()},
        **{f"champion_{k}": v for k, v in (outcome.champion_metrics or {}).items()},
    }
    if outcome.decision.reasons:
        metadata["reasons"] = "; ".join(outcome.decision.reasons)
    return metadata


def image_metadata(build: ImageBuild) -> dict[str, Any]:
    """What was built, from which lockfile and bases, each phase's time, and each step's cache hit."""
    return {
        IMAGE_VERSION: build.digest,
        "reference": build.reference,
        "size_mb": round(build.size_bytes / 1e6, 1),
        "compressed_mb": round(build.compressed_bytes / 1e6, 1),
        "duration_s": round(sum(build.phases.values()), 2),
        **{f"{phase}_s": seconds for phase, seconds in build.phases.items()},
        "steps_cached": build.cached_steps,
        "steps_total": len(build.steps),
        "no_cache": build.no_cache,
        "builder": build.builder,
        "lockfile": build.lockfile,
        "lockfile_digest": build.lockfile_digest,
        "dependencies_fetched": build.dependencies_fetched,
        "dependency_packages": build.dependency_packages,
        **{f"base {arg}": reference for arg, reference in build.bases.items()},
        "steps": _table(
            [
                {
                    "step": s.number,
                    "instruction": s.instruction[:160],
                    "cached": s.cached,
                    "seconds": s.seconds,
                }
                for s in build.steps
            ],
            {"step": "int", "instruction": "string", "cached": "bool", "seconds": "float"},
        ),
        "preflight": _table(
            [
                {"check": c.name, "status": c.status, "detail": c.detail, "ms": round(c.seconds * 1000)}
                for c in build.preflight
            ],
            {"check": "string", "status": "string", "detail": "string", "ms": "int"},
        ),
    }


def findings_table(findings: list[Finding]) -> dg.TableMetadataValue:
    return _table(
        [
            {"rule": f.rule, "severity": f.severity, "line": f.line, "message": f.message}
            for f in findings
        ],
        {"rule": "string", "severity": "string", "line": "int", "message": "string"},
    )


def gates_table(decision: GateDecision) -> dg.TableMetadataValue:
    return _table(
        [{"gate": g.name, "passed": g.passed, "evidence": g.evidence} for g in decision.gates],
        {"gate": "string", "passed": "bool", "evidence": "string"},
    )


def provenance_markdown(links: list[Link]) -> str:
    """The explain chain as a table, read top down: what serves, then where it came from."""
    rows = [
        {
            "link": link.kind,
            "ref": link.ref,
            "at": link.at,
            "details": ", ".join(f"{k}={v}" for k, v in link.details.items() if v not in ("", [], None)),
        }
        for link in links
    ]
    return _markdown_table(tuple(rows))

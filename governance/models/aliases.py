"""Operator actions on aliases (promote, demote) and the registry listing, recorded with who and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from governance.audit.chain import Entry
from governance.audit.store import AuditLog
from governance.config import ModelSpec
from governance.errors import PermanentError
from governance.models.registry import ModelRegistry


def promote(
    registry: ModelRegistry,
    name: str,
    version: str,
    alias: str,
    *,
    by: str,
    reason: str,
    audit: AuditLog,
) -> None:
    tags = _record(alias, "promoted", by, reason)
    registry.version(name, version)
    previous = registry.aliases(name).get(alias)
    registry.set_alias(name, alias, version)
    registry.set_tags(name, version, tags)
    versions = {"model_version": f"{name}/{version}"}
    if previous:
        versions["previous_version"] = f"{name}/{previous}"
    audit.append(
        Entry(f"cli:{by}", f"alias.{alias}.promoted", f"model:{name}", versions, "promoted", [reason])
    )


def demote(
    registry: ModelRegistry, name: str, alias: str, *, by: str, reason: str, audit: AuditLog
) -> str:
    """Remove `alias` from whichever version holds it; returns that version."""
    tags = _record(alias, "demoted", by, reason)
    holder = registry.version_for_alias(name, alias)
    if holder is None:
        raise PermanentError(f"{name} has no version with alias {alias!r}")
    registry.delete_alias(name, alias)
    registry.set_tags(name, str(holder.version), tags)
    versions = {"model_version": f"{name}/{holder.version}"}
    audit.append(
        Entry(f"cli:{by}", f"alias.{alias}.demoted", f"model:{name}", versions, "demoted", [reason])
    )
    return str(holder.version)


def _record(alias: str, action: str, by: str, reason: str) -> dict[str, str]:
    if not by.strip() or not reason.strip():
        raise PermanentError("an alias change needs --by (who) and --reason (why)")
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return {
        f"governance.{alias}.{action}_by": by,
        f"governance.{alias}.{action}_reason": reason,
        f"governance.{alias}.{action}_at": at,
    }


def describe(registry: ModelRegistry, spec: ModelSpec) -> dict[str, Any]:
    versions = []
    aliases = registry.aliases(spec.registered_name)
    for version in registry.versions(spec.registered_name):
        versions.append(
            {
                "version": str(version.version),
                "aliases": sorted(a for a, v in aliases.items() if v == str(version.version)),
                "run_id": version.run_id,
                "status": version.status,
                "created_at": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).isoformat(
                    timespec="seconds"
                ),
                "tags": dict(version.tags),
                "metrics": registry.run_metrics(str(version.run_id)) if version.run_id else {},
            }
        )
    return {
        "model": spec.name,
        "registered_name": spec.registered_name,
        "dataset": spec.dataset,
        "versions": versions,
    }

"""Alias moves (promote, demote, the gate's challenger) and the registry listing, each recorded.

An alias move and its audit record succeed together or not at all: the alias moves first, and when
the record cannot be written it is moved back before the error is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from governance.actors import person_of
from governance.actors import reason as checked_reason
from governance.audit.store import AuditTrail
from governance.config import ModelSpec
from governance.errors import PermanentError
from governance.models.registry import ModelRegistry


def move_alias(
    registry: ModelRegistry,
    name: str,
    alias: str,
    version: str | None,
    *,
    trail: AuditTrail,
    action: str,
    decision: str,
    reasons: Sequence[str],
    versions: dict[str, str] | None = None,
) -> str | None:
    """Point `alias` at `version` (None removes it) and record it; returns the previous holder."""
    previous = registry.aliases(name).get(alias)
    if version is None:
        registry.delete_alias(name, alias)
    else:
        registry.set_alias(name, alias, version)

    def undo() -> None:
        if previous is None:
            registry.delete_alias(name, alias)
        else:
            registry.set_alias(name, alias, previous)

    recorded = {"model_version": f"{name}/{version or previous}", **(versions or {})}
    if previous and previous != version and version is not None:
        recorded["previous_version"] = f"{name}/{previous}"
    trail.record_or_undo(
        action,
        f"model:{name}",
        recorded,
        decision,
        reasons,
        undo=undo,
        done=f"{name}@{alias} moved from {previous or 'nowhere'} to {version or 'nowhere'}",
    )
    return previous


def promote(
    registry: ModelRegistry, name: str, version: str, alias: str, *, reason: str, trail: AuditTrail
) -> None:
    why = checked_reason(reason)
    registry.version(name, version)
    move_alias(
        registry,
        name,
        alias,
        version,
        trail=trail,
        action=f"alias.{alias}.promoted",
        decision="promoted",
        reasons=[why],
    )
    registry.set_tags(name, version, _tags(alias, "promoted", trail.actor, why))


def demote(registry: ModelRegistry, name: str, alias: str, *, reason: str, trail: AuditTrail) -> str:
    """Remove `alias` from whichever version holds it; returns that version."""
    why = checked_reason(reason)
    holder = registry.version_for_alias(name, alias)
    if holder is None:
        raise PermanentError(f"{name} has no version with alias {alias!r}")
    move_alias(
        registry,
        name,
        alias,
        None,
        trail=trail,
        action=f"alias.{alias}.demoted",
        decision="demoted",
        reasons=[why],
    )
    registry.set_tags(name, str(holder.version), _tags(alias, "demoted", trail.actor, why))
    return str(holder.version)


def _tags(alias: str, action: str, actor: str, reason: str) -> dict[str, str]:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return {
        f"governance.{alias}.{action}_by": person_of(actor),
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

"""`governance gc`: the history the retention settings let go of, removed, with what it freed.

Every validation leaves a result and a Data Docs page, one a day per dataset at least, kept forever
until now. The newest `retention.validations` of each dataset stay, and so does any one an audit
record names. Every promotion of a local release leaves a copy of its model; those neither color
holds go. Dataset versions, model versions and the audit log are never collected: releases,
champions and audit records point at them, and `datasets checkout` must return any of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from governance.audit.chain import AuditRecord
from governance.audit.store import AuditTrail
from governance.config import RetentionSection
from governance.home import GovernanceHome, disk_usage

# where GX's file context keeps results and their pages: <store>/<suite>/<batch>/<run time>/
_VALIDATION_STORES = ("uncommitted/validations", "uncommitted/data_docs/local_site/validations")


@dataclass(frozen=True)
class Collected:
    kind: str
    removed: int
    kept: int
    freed_bytes: int

    def describe(self) -> str:
        return (
            f"{self.kind}: removed {self.removed}, kept {self.kept}, "
            f"freed {self.freed_bytes / 2**20:.1f} MiB"
        )


def collect_validations(
    gx_dir: Path, keep: int, records: Iterable[AuditRecord], dry_run: bool = False
) -> Collected:
    """Each suite's validation runs beyond its newest `keep`, results and pages together (a page
    without its result, or the reverse, would be a dangling link in the Data Docs index)."""
    named = "\n".join(f"{r.reasons} {r.versions}" for r in records)
    runs: dict[str, list[str]] = {}  # suite -> run times, in every store
    for store in _stores(gx_dir):
        for run in store.glob("*/*/*"):
            if run.is_dir():
                runs.setdefault(run.parent.parent.name, []).append(run.name)
    removed = kept = freed = 0
    for suite, times in runs.items():
        ordered = sorted(set(times), reverse=True)  # run times are ISO 8601: newest first
        for position, time in enumerate(ordered):
            if position < keep or time in named:
                kept += 1
                continue
            removed += 1
            for store in _stores(gx_dir):
                for run in store.glob(f"{suite}/*/{time}"):
                    freed += disk_usage(run)
                    if not dry_run:
                        shutil.rmtree(run)
    return Collected("validations", removed, kept, freed)


def collect_release_models(releases: Path, dry_run: bool = False) -> Collected:
    """The model copies local releases downloaded for versions neither color holds any longer. A
    color's own stays (a rollback switches back to it); another is downloaded again if deployed."""
    from governance.releases.local import target_lock
    from governance.releases.state import COLORS, StateStore

    removed = kept = freed = 0
    for directory in sorted(d for d in releases.iterdir() if (d / "models").is_dir()):
        with target_lock(directory):  # no deploy downloads into it meanwhile
            state = StateStore(directory).load()
            held = {c.model.version for color in COLORS if (c := state.on(color)) and c.model}
            for copy in sorted((directory / "models").iterdir()):
                if copy.name in held:
                    kept += 1
                    continue
                removed += 1
                freed += disk_usage(copy)
                if not dry_run:
                    shutil.rmtree(copy)
    return Collected("release model copies", removed, kept, freed)


def _stores(gx_dir: Path) -> list[Path]:
    return [gx_dir / "gx" / store for store in _VALIDATION_STORES if (gx_dir / "gx" / store).is_dir()]


def collect_garbage(
    retention: RetentionSection, home: GovernanceHome, trail: AuditTrail, dry_run: bool = False
) -> list[Collected]:
    """Every kind the retention settings cover; what was removed is on the audit record."""
    collected = [
        collect_validations(home.gx, retention.validations, trail.log.records(), dry_run),
        collect_release_models(home.dir("releases"), dry_run),
    ]
    if not dry_run:
        reasons = [c.describe() for c in collected]
        trail.record("housekeeping.collected", f"home:{home.root}", {}, "collected", reasons)
    return collected

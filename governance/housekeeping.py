"""`governance gc` and the housekeeping job: the history the retention settings let go of, removed,
with what it freed.

- Every validation leaves a result and a Data Docs page, one a day per dataset at least. The newest
  `retention.validations` of each dataset stay, and so does any one an audit record names.
- Every promotion of a local release leaves a copy of its model; those neither color holds go.
- Every image build leaves its image in the builder's storage when the app's `:build` tag moves on
  to the next; each app's newest `retention.images` builds stay, and any a release color runs.
- The lineage outbox keeps its newest `retention.lineage_events` delivered events; the backend
  they were delivered to keeps them all.
- Dagster's runs beyond the newest `retention.runs` go with their logs (the housekeeping job does
  this: it holds the instance), except those `runs_beyond` pins. Their audit records stay.

Dataset versions, model versions and the audit log are never collected: releases, champions and
audit records point at them, and `datasets checkout` must return any of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from governance.audit.chain import AuditRecord
from governance.audit.store import AuditTrail
from governance.config import Estate
from governance.home import GovernanceHome, disk_usage

if TYPE_CHECKING:
    from governance.images.lifecycle import ImageWorkspace
    from governance.lineage.outbox import Outbox
    from governance.services import Services

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


def collect_release_models(home: GovernanceHome, dry_run: bool = False) -> Collected:
    """The model copies local releases downloaded for versions neither color holds any longer. A
    color's own stays (a rollback switches back to it); another is downloaded again if deployed."""
    from governance.releases.local import target_lock
    from governance.releases.state import release_state

    removed = kept = freed = 0
    releases = home.dir("releases")
    for directory in sorted(d for d in releases.iterdir() if (d / "models").is_dir()):
        with target_lock(directory):  # no deploy downloads into it meanwhile
            state = release_state(home, directory.name).load()
            held = {c.model.version for c in state.held() if c.model}
            for copy in sorted((directory / "models").iterdir()):
                if copy.name in held:
                    kept += 1
                    continue
                removed += 1
                freed += disk_usage(copy)
                if not dry_run:
                    shutil.rmtree(copy)
    return Collected("release model copies", removed, kept, freed)


def collect_images(
    workspace: ImageWorkspace, keep: int, held: Collection[str], dry_run: bool = False
) -> Collected:
    """Each app's builds beyond its newest `keep`, out of the builder's local storage. Never one a
    release color runs (`held`: image digests), nor an image a kept build shares (a rebuild from
    cache is the same image). Their records stay (small, and a release finds its evidence by
    digest), as does the registry's copy, which a deployment pulls by digest. Freed: measured on
    the storage; a dry run's figure is an estimate, the images' sizes as podman reports them."""
    from governance.images.lifecycle import BuildRecords

    if workspace.section.builder == "docker":  # its images are the engine's: `docker image prune`
        return Collected("image builds (in the Docker engine: not collected here)", 0, 0, 0)
    present = workspace.storage.images()
    doomed: dict[str, int] = {}  # image id -> size
    kept = 0
    for builds in BuildRecords(workspace.root).every().values():
        stays = {b.image_id for n, b in enumerate(builds) if n < keep or b.digest in held}
        for image in dict.fromkeys(b.image_id for b in builds):  # oldest duplicates drop out
            local = present.get(image)
            if image in stays or (local and local.containers):  # in use: a color not recorded
                kept += 1
            elif local:
                doomed[image] = local.size
    if dry_run or not doomed:
        return Collected("image builds", len(doomed), kept, sum(doomed.values()))
    graph = workspace.root / "graph"  # walked only when something goes: it holds every layer
    before = disk_usage(graph)
    for image in doomed:
        workspace.storage.remove_image(image)
    return Collected("image builds", len(doomed), kept, max(before - disk_usage(graph), 0))


def held_images(home: GovernanceHome, releases: Collection[str]) -> set[str]:
    """The image digests the colors of `releases`, and of every release with files here, run."""
    from governance.releases.state import release_state

    known = {d.name for d in home.dir("releases").iterdir() if d.is_dir()} | set(releases)
    return {
        candidate.image_digest
        for name in sorted(known)
        for candidate in release_state(home, name).load().held()
    }


def collect_lineage_events(outbox: Outbox, keep: int, dry_run: bool = False) -> Collected:
    return Collected("delivered lineage events", *outbox.collect_delivered(keep, dry_run))


def runs_beyond(newest_first: Sequence[str], keep: int, pinned: Collection[str]) -> list[str]:
    """The runs beyond the newest `keep` that nothing pins. Pinned are the runs the asset catalog
    shows as current (an asset's latest materialization and latest run, a check's latest result)
    and runs not finished: deleting one would make an asset read as never materialized, or pull a
    run's history from under it."""
    return [run for position, run in enumerate(newest_first) if position >= keep and run not in pinned]


def _stores(gx_dir: Path) -> list[Path]:
    return [gx_dir / "gx" / store for store in _VALIDATION_STORES if (gx_dir / "gx" / store).is_dir()]


def collect_garbage(
    estate: Estate,
    services: Services,
    trail: AuditTrail,
    dry_run: bool = False,
    also: Sequence[Collected] = (),
) -> list[Collected]:
    """Every kind the estate's retention settings cover, and what the caller collected `also`
    (the housekeeping job: Dagster's runs); what was removed is on one audit record."""
    home, retention = services.home, estate.retention
    workspace = services.image_workspace(estate.images)
    held = held_images(home, estate.releases)
    collected = [
        *also,
        collect_validations(home.gx, retention.validations, trail.log.records(), dry_run),
        collect_release_models(home, dry_run),
        collect_images(workspace, retention.images, held, dry_run),
        collect_lineage_events(services.outbox(), retention.lineage_events, dry_run),
    ]
    if not dry_run:
        reasons = [c.describe() for c in collected]
        trail.record("housekeeping.collected", f"home:{home.root}", {}, "collected", reasons)
    return collected

"""`governance gc` and the housekeeping job on real stores (a Great Expectations context, a Dagster
instance): what goes, what stays, and its record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from governance.audit.store import AuditTrail, open_audit_log
from governance.config import DatasetSpec, ImagesSection
from governance.datasets.validation import validate_frame
from governance.home import GovernanceHome
from governance.housekeeping import (
    collect_images,
    collect_release_models,
    collect_validations,
    held_images,
)
from governance.images.containers import ContainerStorage
from governance.images.lifecycle import BuildRecords, ImageBuild, ImageWorkspace
from governance.releases.state import FileStateStore, ReleaseState
from pipelines.definitions import build_definitions
from pipelines.housekeeping import housekeeping
from tests.conftest import repository_estate_data, run_governance, write_estate
from tests.integration.test_validation import clean_penguins
from tests.release_evidence import RELEASE, candidate

STORES = ("uncommitted/validations", "uncommitted/data_docs/local_site/validations")


def runs(gx: Path) -> list[set[str]]:
    """Each store's validation runs (their run times)."""
    return [{p.name for p in (gx / "gx" / store).glob("penguins/*/*")} for store in STORES]


@pytest.mark.usefixtures("own_image_storage")
def test_validations_beyond_retention_go_results_and_pages_together_unless_named(
    penguins_csv: Path, penguins_spec: DatasetSpec, home: Path, tmp_path: Path
) -> None:
    gx = GovernanceHome.resolve().gx
    frame = clean_penguins(penguins_spec, penguins_csv)
    urls = [
        validate_frame(frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=gx).docs_url
        for _ in range(5)
    ]
    times = sorted(runs(gx)[0])
    assert len(times) == 5 and runs(gx) == [set(times)] * 2
    audit = open_audit_log(GovernanceHome.resolve().audit_db)
    AuditTrail(audit, "cli:alice").record(
        "dataset.checked", "dataset:penguins", {}, "passed", [str(urls[0])]
    )

    planned = collect_validations(gx, 2, audit.records(), dry_run=True)
    assert runs(gx) == [set(times)] * 2  # a dry run removes nothing
    done = collect_validations(gx, 2, audit.records())
    assert (done.removed, done.kept) == (planned.removed, planned.kept) == (2, 3)
    assert done.freed_bytes == planned.freed_bytes > 0
    # the newest two stay, and the oldest, which an audit record names; page and result alike
    assert runs(gx) == [{times[0], *times[3:]}] * 2

    # The command applies the estate's retention (at least the 30 the Data Docs index lists).
    data = repository_estate_data()
    estate = write_estate(data, tmp_path / "estate")
    result = run_governance("--estate", str(estate.path), "gc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("validations: removed 0, kept 3, freed 0.0 MiB"), result.stdout
    records = json.loads(run_governance("audit", "show", "--json").stdout)
    assert records[-1]["action"] == "housekeeping.collected" and records[-1]["actor"].startswith("cli:")

    data["retention"] = {"validations": 5}
    refused = tmp_path / "estate" / "refused.yaml"
    refused.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_governance("--estate", str(refused), "gc")
    assert result.returncode == 2
    assert "retention.validations" in result.stderr and "30" in result.stderr, result.stderr


def test_model_copies_neither_color_holds_go_and_a_colors_own_stays(tmp_path: Path) -> None:
    """Day after day each promotion downloads its model beside the release; only the two colors'
    are ever mounted (a rollback switches to the other color's)."""
    directory = tmp_path / "releases" / RELEASE
    image = "127.0.0.1:5000/penguins/model-server@sha256:" + "ab" * 32
    state = ReleaseState(
        colors={"blue": candidate(image, "3").to_dict(), "green": candidate(image, "2").to_dict()}
    )
    FileStateStore(directory).save(state)
    for version in ("1", "2", "3"):
        (directory / "models" / version).mkdir(parents=True)
        (directory / "models" / version / "model.skops").write_bytes(b"m" * 1000)

    assert collect_release_models(GovernanceHome(tmp_path), dry_run=True).removed == 1
    assert sorted(p.name for p in (directory / "models").iterdir()) == ["1", "2", "3"]
    done = collect_release_models(GovernanceHome(tmp_path))
    assert (done.removed, done.kept, done.freed_bytes) == (1, 2, 1000)
    assert sorted(p.name for p in (directory / "models").iterdir()) == ["2", "3"]


@pytest.mark.usefixtures("own_image_storage")
def test_runs_beyond_retention_go_with_their_logs_but_never_those_the_catalog_shows(
    home: Path, tmp_path: Path
) -> None:
    """The housekeeping job on a persistent sqlite instance: an asset's latest materialization and
    a check's latest result stay however old; other runs beyond the newest 10 go, files and all."""

    @dg.asset
    def feed() -> int:
        return 1

    @dg.asset_check(asset=feed)
    def feed_is_fine() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    data = repository_estate_data()
    data["retention"] = {"runs": 10}
    estate = write_estate(data, tmp_path / "estate")
    check_feed = dg.define_asset_job("check_feed", dg.AssetSelection.checks_for_assets(feed))
    job, _ = housekeeping(estate, [feed_is_fine.check_key])
    governed = build_definitions(estate)
    defs = dg.Definitions(
        assets=[feed], asset_checks=[feed_is_fine], jobs=[check_feed, job], resources=governed.resources
    )
    instance_dir = tmp_path / "dagster"
    instance_dir.mkdir()
    with dg.instance_for_test(temp_dir=str(instance_dir)) as instance:
        materialized = dg.materialize([feed], instance=instance).run_id
        checked = defs.resolve_job_def("check_feed").execute_in_process(instance=instance).run_id
        daily = defs.resolve_job_def("housekeeping")
        kept = [daily.execute_in_process(instance=instance).run_id for _ in range(12)]
        remaining = {r.dagster_run.run_id for r in instance.get_run_records()}
        latest = instance.get_latest_materialization_event(feed.key)

    assert remaining == {materialized, checked, *kept[2:]}
    assert latest is not None and latest.run_id == materialized
    for run_id in kept[:2]:  # nothing of a collected run is left: no event database, no logs
        assert [p for p in instance_dir.rglob(f"*{run_id}*")] == []
    assert (instance_dir / "history" / "runs" / f"{kept[-1]}.db").is_file()
    records = open_audit_log(GovernanceHome.resolve().audit_db).records()
    first = [r.reasons[0] for r in records if r.action == "housekeeping.collected"]
    assert [line.split(",")[0] for line in first] == ["Dagster runs: removed 0"] * 10 + [
        "Dagster runs: removed 1"  # the 11th and 12th runs: the oldest unpinned run each
    ] * 2


def test_image_builds_beyond_retention_leave_the_builders_storage(tmp_path: Path) -> None:
    """Real images in a real storage: each app keeps its newest builds, whatever a release color
    runs and whatever a container uses; an image a newer build shares (a rebuild from cache) is
    never removed under it."""
    storage = ContainerStorage(tmp_path / "images", "127.0.0.1:5000", {})
    workspace = ImageWorkspace(ImagesSection(), storage)
    ids = {n: _image(storage, n, tmp_path) for n in (0, 1, 3, 4, 5)}
    storage.run(["buildah", "tag", ids[3], "localhost/app:three"], what="tag")  # two names
    storage.run(["podman", "create", "--name", "uses-0", ids[0], "/payload"], what="create")
    # builds 0 to 5, oldest first; build 2 was a rebuild from cache of build 4's image
    builds = [(0, ids[0]), (1, ids[1]), (2, ids[4]), (3, ids[3]), (4, ids[4]), (5, ids[5])]
    for n, image in builds:
        BuildRecords(workspace.root).save(_build(n, image))
    directory = tmp_path / "releases" / RELEASE
    FileStateStore(directory).save(
        ReleaseState(colors={"blue": candidate(_reference(1), "1").to_dict()})
    )
    held = held_images(GovernanceHome(tmp_path), [])
    assert held == {_digest(1)}

    planned = collect_images(workspace, 2, held, dry_run=True)
    assert set(ids.values()) <= set(storage.images())  # a dry run removes nothing
    done = collect_images(workspace, 2, held)
    assert (done.removed, done.kept) == (planned.removed, planned.kept) == (1, 4)
    assert planned.freed_bytes > 0 and done.freed_bytes > 0  # an estimate, then measured
    left = set(storage.images())  # the newest two, the one a color runs, and the one in use
    assert ids[3] not in left and {ids[0], ids[1], ids[4], ids[5]} <= left
    assert collect_images(workspace, 2, held).removed == 0  # what is gone is not counted again


def _image(storage: ContainerStorage, n: int, tmp_path: Path) -> str:
    """A small image of its own layer, committed with buildah."""
    payload = tmp_path / f"payload-{n}"
    payload.write_bytes(os.urandom(256 * 1024))
    container = storage.run(["buildah", "from", "scratch"], what="from").splitlines()[-1]
    storage.run(["buildah", "copy", container, str(payload), "/payload"], what="copy")
    committed = storage.run(
        ["buildah", "commit", "--rm", container, f"localhost/app:{n}"], what="commit"
    )
    return committed.strip().splitlines()[-1]


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _reference(n: int) -> str:
    return f"127.0.0.1:5000/app@{_digest(n)}"


def _build(n: int, image_id: str) -> ImageBuild:
    return ImageBuild(
        name="app",
        repository="app",
        reference=_reference(n),
        digest=_digest(n),
        image_id=image_id,
        size_bytes=0,
        compressed_bytes=0,
        lockfile="uv.lock",
        lockfile_digest="",
        dependencies_fetched=False,
        dependency_packages=0,
        bases={},
        steps=[],
        phases={},
        preflight=[],
        findings=[],
        builder="buildah",
        no_cache=False,
        finished_at=float(n),
    )


def test_builds_in_a_docker_engine_are_named_as_not_collected(tmp_path: Path) -> None:
    """The engine's images are not in a storage the platform owns: gc says so, and touches none."""
    storage = ContainerStorage(tmp_path / "images", "127.0.0.1:5000", {})
    workspace = ImageWorkspace(ImagesSection(builder="docker"), storage)
    BuildRecords(workspace.root).save(_build(1, "ab" * 32))
    done = collect_images(workspace, 1, set())
    assert done.describe().startswith("image builds (in the Docker engine: not collected here)")
    assert not (storage.root / "graph").exists()  # podman never ran on it

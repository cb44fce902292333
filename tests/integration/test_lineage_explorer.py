"""The lineage explorer in Chromium, over a real outbox and audit log, served by the site: every
version side by side, a version's facets, runs and audit records on a click, filters by run and
time, and event values shown as text, never run as markup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.actors import dagster_run
from governance.audit.store import AuditTrail, open_audit_log
from governance.home import GovernanceHome
from governance.lineage.events import Assertion, DatasetRef, JobRef, ParentRef, new_run_id, run_event
from governance.lineage.outbox import SqliteOutbox
from governance.services import Services, Settings
from governance.site import Site, start, stop
from tests.browser import Tour, chromium
from tests.conftest import run_governance
from tests.services import free_port

DATASET = DatasetRef("dvc://governance", "penguins", "md5-day-one", columns={"species": "string"})
RELEASE = DatasetRef("release://local", "penguin_service", "release-abc")
DATASET_KEY, MODEL_KEY = "dvc://governance/penguins", "mlflow://local/models/penguin-classifier"
HOSTILE = '<img src=x onerror="document.title=1">'
DAY_ONE, DAY_TWO = new_run_id(), new_run_id()  # the Dagster runs of two trainings


def model(version: str, accuracy_passed: bool = True) -> DatasetRef:
    return DatasetRef(
        "mlflow://local",
        "models/penguin-classifier",
        version,
        owner="ml-platform@example.com",
        assertions=(Assertion("threshold:accuracy", accuracy_passed),),
    )


@pytest.fixture
def site(home: Path) -> Iterator[Site]:
    governed = GovernanceHome(home)
    box = SqliteOutbox(governed.lineage / "outbox.db")
    for dagster_run_id, version in ((DAY_ONE, "1"), (DAY_TWO, "2")):
        parent = ParentRef("__ASSET_JOB", dagster_run_id)
        run = new_run_id()
        for state in ("START", "COMPLETE"):
            outputs = [model(version)] if state == "COMPLETE" else []
            box.append(
                run_event(
                    state,
                    JobRef("penguin_classifier"),
                    run,
                    parent=parent,
                    inputs=[DATASET],
                    outputs=outputs,
                )
            )
        gate = JobRef("penguin_classifier.meets_promotion_policy", job_type="ASSET_CHECK")
        box.append(run_event("COMPLETE", gate, new_run_id(), parent=parent, inputs=[model(version)]))
    release = JobRef("penguin_service_candidate")
    box.append(
        run_event(
            "COMPLETE", release, new_run_id(), parent=ParentRef("__ASSET_JOB", DAY_TWO),
            inputs=[model("2")], outputs=[RELEASE],
        )
    )  # fmt: skip
    box.append(
        run_event(
            "COMPLETE", JobRef(HOSTILE), new_run_id(), outputs=[DatasetRef("file", HOSTILE, HOSTILE)]
        )
    )
    trail = AuditTrail(open_audit_log(governed.audit_db), dagster_run(DAY_TWO))
    trail.record("model.gated", "model:penguin_classifier", {"model_version": "2"}, "passed", ["ok"])
    served = Services(Settings(site_url=f"http://127.0.0.1:{free_port()}")).site()
    start(served)
    yield served
    stop(governed)


def test_two_trainings_show_two_versions_side_by_side_with_their_evidence(
    site: Site, tmp_path: Path
) -> None:
    with chromium(tmp_path / "tour") as tour:
        assert tour.open(site.page_url("lineage/explorer.html")) == 200
        node = tour.page.locator(f'.node[data-key="{MODEL_KEY}"]')
        assert node.locator(".version").all_inner_texts() == ["1", "2"]
        # One edge per pair of artifacts a run read and wrote (two trainings, one edge), each
        # drawn from a node's right to the next column's node on its left, the columns side by side.
        edges = tour.page.locator("#edges path")
        assert sorted(
            (e.get_attribute("data-from"), e.get_attribute("data-to")) for e in edges.all()
        ) == [
            (DATASET_KEY, MODEL_KEY),
            (MODEL_KEY, "release://local/penguin_service"),
        ]
        tops = {round(box["y"]) for c in tour.page.locator(".column").all() if (box := c.bounding_box())}
        assert len(tops) == 1, f"the columns wrapped: {tops}"
        graph = tour.page.locator("#graph").bounding_box()
        assert graph and graph["y"] < 80, "the header takes the space the graph does not fill"
        for edge in edges.all():
            start, end = _ends(edge.get_attribute("d") or "")
            source = tour.page.locator(
                f'.node[data-key="{edge.get_attribute("data-from")}"]'
            ).bounding_box()
            target = tour.page.locator(
                f'.node[data-key="{edge.get_attribute("data-to")}"]'
            ).bounding_box()
            assert source and target and start[0] < end[0]
            assert abs(end[0] - start[0] - (target["x"] - source["x"] - source["width"])) < 2
        tour.shot("explorer")

        node.locator('.version[data-version="2"]').click()
        details = _details(tour)
        assert "produced by penguin_classifier" in details and f"Dagster run {DAY_TWO}" in details
        assert "dvc://governance/penguins @ md5-day-one" in details  # what it was made from
        assert "threshold:accuracy" in details and "ml-platform@example.com" in details  # facets
        assert "penguin_classifier.meets_promotion_policy" in details  # what read it: its gate
        assert "model.gated passed" in details  # its audit record
        assert tour.page.locator("#edges path.hot").count() == 2  # made from, and read into
        related = tour.page.locator(".version.related")
        assert related.all_inner_texts() == ["md5-day-one", "release-abc"]
        tour.shot("explorer-version")

        tour.page.fill("#run", DAY_ONE)  # the first Dagster run's versions only
        assert node.locator(".version").all_inner_texts() == ["1"]
        tour.page.fill("#run", "")
        tour.page.fill("#from", "2999-01-01T00:00")  # nothing that late
        assert tour.page.locator(".version").count() == 0

        tour.page.fill("#from", "")
        assert HOSTILE in tour.text()  # shown as text...
        assert tour.page.title() == "Lineage explorer"  # ...never run
        assert tour.page.locator("img").count() == 0


def _ends(path: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """The first and last point of an SVG path `M x,y C … x,y`."""
    numbers = [float(n) for n in re.findall(r"-?[0-9.]+", path)]
    return (numbers[0], numbers[1]), (numbers[-2], numbers[-1])


def _details(tour: Tour) -> str:
    return " ".join(tour.page.inner_text("#details").split())


def test_the_explorer_is_also_one_offline_file_from_the_cli(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "review" / "explorer.html"
    written = run_governance("lineage", "explorer", "--out", str(out))
    assert written.returncode == 0, written.stderr
    page = out.read_text()
    assert "models/penguin-classifier" in page and "<script src" not in page  # nothing to fetch
    assert HOSTILE not in page  # an event's value cannot close the script that holds it

"""Alerts from real failures (a check with nothing to check, the run it fails, a broken Dockerfile, a
black-holed registry, a build slower than its history, a lineage backlog) arrive at a loopback
webhook: what failed, why, the run; the same cause once per window with a count; a hanging
receiver holds nobody up; the webhook URL is written nowhere."""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from governance.config import Estate
from governance.errors import GovernanceError
from governance.home import GovernanceHome
from governance.images.lifecycle import BuildAlerts, BuildRecords, ImageWorkspace, build_image
from governance.lineage.events import JobRef, new_run_id, run_event
from governance.lineage.outbox import SqliteOutbox
from governance.notify.alerts import Alert, Alerts
from governance.notify.slack import SlackNotifier
from pipelines.definitions import build_definitions
from pipelines.resources import AlertsResource, LineageResource
from tests.badfiles import BAD_FILES
from tests.conftest import materialize_groups, repository_estate_data, write_estate
from tests.services import LineageBackend, free_port

SECRET = "alert-hook-s3cr3t"
WINDOW_S = 3600.0  # deduplication: longer than any run between ticks; ended by turning the ledger back


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[LineageBackend]:
    server = LineageBackend()
    monkeypatch.setenv("GOVERNANCE_SLACK_WEBHOOK_URL", f"{server.url}/services/T0/B0/{SECRET}")
    yield server
    server.close()


def texts(receiver: LineageBackend, count: int, timeout_s: float = 20) -> list[str]:
    """The messages, once `count` have arrived (they are sent on their own threads)."""
    deadline = time.monotonic() + timeout_s
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [str(message["text"]) for message in receiver.received]


def estate_with(tmp_path: Path, **alerts: float) -> Estate:
    data = repository_estate_data()
    data["alerts"] = {**data.get("alerts", {}), **alerts}
    return write_estate(data, tmp_path / "estate")


def alerts_for(estate: Estate) -> Alerts:
    return AlertsResource().alerts(estate.alerts)


def fail_quality_run(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    """The daily quality job before any version is published: its blocking check fails."""
    result = defs.resolve_job_def("dataset_quality").execute_in_process(
        instance=instance, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    return result.run_id


def test_failed_checks_and_runs_alert_once_per_cause_with_a_count(
    receiver: LineageBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    estate = estate_with(tmp_path, dedup_window_s=WINDOW_S)
    defs = build_definitions(estate)
    checks = defs.get_sensor_def("alert_on_failed_checks")
    resources = {"alerting": AlertsResource()}
    with dg.instance_for_test() as instance:
        repository = defs.get_repository_def()

        def tick(cursor: str | None) -> str | None:
            context = dg.build_sensor_context(
                instance=instance, repository_def=repository, cursor=cursor, resources=resources
            )
            checks(context)
            return context.cursor

        first_run = fail_quality_run(defs, instance)
        cursor = tick(None)
        (check_alert,) = texts(receiver, 1)
        assert "blocking check failed: check penguins:matches_expectation_suite" in check_alert
        assert "no version has been published yet" in check_alert
        assert f"run: http://127.0.0.1:3000/runs/{first_run}" in check_alert

        # A failed blocking check fails its run: the run's own alert names the job and the step.
        run = instance.get_run_by_id(first_run)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(first_run, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert failure.dagster_event is not None
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure.dagster_event,
            resources=resources,
        ).for_run_failure()
        defs.get_sensor_def("alert_on_run_failure")(context)
        run_alert = texts(receiver, 2)[1]
        assert "Dagster run failed: job dataset_quality" in run_alert
        assert "why: step penguins_matches_expectation_suite:" in run_alert
        assert f"/runs/{first_run}" in run_alert
        sent = len(receiver.received)

        # The same tick again: the cursor has seen it. The same failure again, within the window:
        # held back. After the window (the ledger's clock turned back by it, as a slow run on a
        # busy machine may take longer than any short window): sent, with the count held back.
        cursor = tick(cursor)
        fail_quality_run(defs, instance)
        cursor = tick(cursor)
        time.sleep(0.5)
        assert len(receiver.received) == sent
        ledger = GovernanceHome.resolve().root / "alerts.db"
        with sqlite3.connect(ledger) as db:
            db.execute("UPDATE alerts SET sent_at = sent_at - ?", (WINDOW_S,))
        fail_quality_run(defs, instance)
        tick(cursor)
        last = texts(receiver, sent + 1)[-1]
        assert "blocking check failed" in last and "the same happened 1 more time(s)" in last

    assert SECRET.encode() not in ledger.read_bytes() and SECRET not in caplog.text


def test_a_bad_dataset_fails_its_run_and_the_alert_says_which_value(
    receiver: LineageBackend,
    estate_with_source: Callable[[Path], Estate],
    penguins_csv: Path,
    tmp_path: Path,
) -> None:
    """A flipper of 1810 mm: the dataset step refuses to publish it, and the run's alert names the
    step and the broken rule."""
    (bad,) = [b for b in BAD_FILES if b.name == "out_of_range"]
    estate = estate_with_source(bad.write(penguins_csv, tmp_path))
    with dg.instance_for_test() as instance:
        result = materialize_groups(estate, instance, "datasets", raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        (failure,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert run is not None and failure.dagster_event is not None
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure.dagster_event,
            resources={"alerting": AlertsResource()},
        ).for_run_failure()
        build_definitions(estate).get_sensor_def("alert_on_run_failure")(context)
    (text,) = texts(receiver, 1)
    assert f"Dagster run failed: job {run.job_name}" in text
    assert "why: step penguins:" in text and "flipper_length_mm" in text
    assert f"run: http://127.0.0.1:3000/runs/{result.run_id}" in text


def test_a_lineage_backlog_older_than_its_threshold_alerts(
    receiver: LineageBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{free_port()}")  # refused
    estate = estate_with(tmp_path, lineage_backlog_s=0.5)
    SqliteOutbox(GovernanceHome.resolve().lineage / "outbox.db").append(
        run_event("START", JobRef("waiting"), new_run_id())
    )
    time.sleep(0.6)
    sensor = build_definitions(estate).get_sensor_def("lineage_outbox")
    sensor(
        dg.build_sensor_context(resources={"lineage": LineageResource(), "alerting": AlertsResource()})
    )
    (text,) = texts(receiver, 1)
    assert "lineage backlog: lineage outbox" in text
    assert "events undelivered for more than 0 s" in text or "more than 1 s" in text
    assert "1 pending" in text


def test_a_hanging_receiver_holds_up_nothing(receiver: LineageBackend, tmp_path: Path) -> None:
    receiver.mode = "hold"
    alerts = Alerts(SlackNotifier(f"{receiver.url}/hook", timeout_s=1), tmp_path / "alerts.db", 60)
    try:
        sending = alerts.alert(Alert("build_failed", "image x", "it broke"))
        assert sending is not None and sending.is_alive()  # the caller is already on its way
        assert receiver.holding.wait(10)
        sending.join(10)
        assert not sending.is_alive() and not receiver.release.is_set()  # ended by its deadline
    finally:
        receiver.release.set()


def test_an_unusable_ledger_still_alerts(receiver: LineageBackend, tmp_path: Path) -> None:
    ledger = tmp_path / "alerts.db"
    ledger.write_bytes(b"this is not a database" * 100)
    alerts = Alerts(SlackNotifier(f"{receiver.url}/hook"), ledger, 60)
    alerts.alert(Alert("preflight_failed", "image x", "registry down"))
    (text,) = texts(receiver, 1)
    assert "build preflight failed: image x" in text


APP = "alerted_server"  # the model server under a name of its own (see app_edit)


@pytest.mark.usefixtures("image_lab")
def test_image_builds_alert_on_failure_preflight_and_delay(
    receiver: LineageBackend, tmp_path: Path, app_edit: Callable[[Callable[[Path], None]], Estate]
) -> None:
    home = GovernanceHome.resolve()

    def build_alerts(estate: Estate) -> BuildAlerts:
        return BuildAlerts(alerts_for(estate), 2.0, 10, "http://dagster.example/runs/r1")

    # A build much slower than its history (seeded with three builds of 10 ms).
    estate = app_edit(lambda context: None)
    workspace = ImageWorkspace.resolve(estate.images, home)
    for _ in range(3):
        BuildRecords(workspace.root).add_duration(APP, False, 0.01)
    build_image(estate.image(APP), workspace, alerts=build_alerts(estate))
    (slow,) = texts(receiver, 1)
    assert f"image build delayed: image {APP}" in slow and "the median 0 s" in slow

    # A Dockerfile whose RUN step fails.
    def break_it(context: Path) -> None:
        dockerfile = context / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + "\nRUN exit 3\n")

    broken = app_edit(break_it)
    with pytest.raises(GovernanceError, match="RUN exit 3"):
        build_image(broken.image(APP), workspace, alerts=build_alerts(broken))
    failed = texts(receiver, 2)[1]
    assert f"image build failed: image {APP}" in failed
    assert "run: http://dagster.example/runs/r1" in failed

    # A registry that accepts connections and never answers.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        blackholed = ImageWorkspace.resolve(
            estate.images, home, registry=f"127.0.0.1:{hole.getsockname()[1]}"
        )
        with pytest.raises(GovernanceError, match="preflight failed"):
            build_image(estate.image(APP), blackholed, alerts=build_alerts(estate))
    preflight = texts(receiver, 3)[2]
    assert f"build preflight failed: image {APP}" in preflight


@pytest.fixture
def app_edit(tmp_path: Path) -> Callable[[Callable[[Path], None]], Estate]:
    """The estate with the model server's context replaced by an edited copy."""
    import shutil

    from tests.conftest import REPO

    def make(edit: Callable[[Path], None]) -> Estate:
        context = tmp_path / f"model-server-{len(list(tmp_path.glob('model-server-*')))}"
        shutil.copytree(REPO / "examples/penguins/apps/model-server", context)
        edit(context)
        data = repository_estate_data()
        # Under a name of its own: build history is kept per app in the builder storage, which the
        # session's other homes share and add to while this test counts on its seeded history.
        app = data["images"]["apps"].pop("model_server")
        data["images"]["apps"][APP] = app | {"context": str(context)}
        for release in data["releases"].values():
            if release["image"] == "model_server":
                release["image"] = APP
        return write_estate(data, tmp_path / "estate")

    return make

"""Schedules, sensors and jobs that run governance on its own clock."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import dagster as dg

from governance.config import AlertsSection
from governance.notify.alerts import Alert
from pipelines.resources import AlertsResource, LineageResource

DATASET_QUALITY_CRON = "0 6 * * *"
FIRST_LOOK_BACK_S = 900  # a check sensor's first tick alerts on failures this recent, not on history


def dataset_quality(
    dataset_keys: Sequence[dg.AssetKey],
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    """A daily job of the datasets' checks only: it re-validates what is current, rebuilding nothing."""
    job = dg.define_asset_job(
        "dataset_quality",
        selection=dg.AssetSelection.checks_for_assets(*dataset_keys),
        description="Re-validate the current version of every governed dataset against its suite.",
    )
    return job, daily(job, DATASET_QUALITY_CRON, "Daily quality run over every governed dataset.")


def daily(
    job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition, cron: str, description: str
) -> dg.ScheduleDefinition:
    """`daily_<job>`, on in every deployment from the start (UTC)."""
    return dg.ScheduleDefinition(
        name=f"daily_{job.name}",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )


def lineage_outbox_sensor(section: AlertsSection) -> dg.SensorDefinition:
    @dg.sensor(
        name="lineage_outbox",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Deliver pending OpenLineage events in order and redraw the lineage graph; "
        "alert when undelivered events grow old.",
    )
    def lineage_outbox(lineage: LineageResource, alerting: AlertsResource) -> dg.SkipReason:
        emitter = lineage.emitter()
        result = emitter.flush()
        graph = lineage.refresh_graph()
        oldest = lineage.outbox().oldest_pending_at()
        if oldest is not None and time.time() - oldest > section.lineage_backlog_s:
            alerting.alerts(section).alert(
                Alert(
                    "lineage_backlog",
                    "lineage outbox",
                    f"events undelivered for more than {section.lineage_backlog_s:.0f} s: "
                    f"{result.error or 'the backend accepts nothing'}",
                    details=(f"{result.pending} pending, the oldest since {time.ctime(oldest)}",),
                )
            )
        state = f"; backend unavailable: {result.error}" if result.error else ""
        return dg.SkipReason(
            f"delivered {result.delivered}, {result.pending} pending{state}; graph {graph}"
        )

    return lineage_outbox


def alert_sensors(section: AlertsSection) -> list[dg.SensorDefinition]:
    """Every failed run and every failed check becomes an alert, whichever asset or job it was."""

    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alert on every failed run: the job, the failed step and its error.",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext, alerting: AlertsResource) -> None:
        run = context.dagster_run
        steps = context.get_step_failure_events()
        reason = context.failure_event.message or "the run failed"
        if steps:
            error = steps[0].step_failure_data.error
            reason = f"step {steps[0].step_key}: {error.message if error else reason}"
        alerting.alerts(section).alert(
            Alert("run_failed", f"job {run.job_name}", reason, alerting.run_link(run.run_id))
        )

    @dg.sensor(
        name="alert_on_failed_checks",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alert on every asset check that fails with severity ERROR.",
    )
    def alert_on_failed_checks(
        context: dg.SensorEvaluationContext, alerting: AlertsResource
    ) -> dg.SkipReason:
        if context.repository_def is None:
            return dg.SkipReason("no repository to watch")
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        since = time.time() - FIRST_LOOK_BACK_S
        storage = context.instance.event_log_storage
        alerts = alerting.alerts(section)
        sent = 0
        for key in sorted(context.repository_def.asset_graph.asset_check_keys, key=str):
            name = key.to_user_string()
            for record in reversed(storage.get_asset_check_execution_history(key, limit=20)):
                new = record.id > seen[name] if name in seen else record.create_timestamp > since
                if new and record.status.value == "FAILED":
                    evaluation = record.event.asset_check_evaluation if record.event else None
                    if evaluation is not None and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                        why = evaluation.description or "the check failed"
                        link = alerting.run_link(record.run_id)
                        alerts.alert(Alert("check_failed", f"check {name}", why, link))
                        sent += 1
                seen[name] = max(seen.get(name, 0), record.id)
        context.update_cursor(json.dumps(seen, sort_keys=True))
        return dg.SkipReason(f"{sent} failed check(s) alerted")

    return [alert_on_run_failure, alert_on_failed_checks]

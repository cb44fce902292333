"""Schedules, sensors and jobs that run governance on its own clock."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from pipelines.resources import LineageResource

DATASET_QUALITY_CRON = "0 6 * * *"


def dataset_quality(
    dataset_keys: Sequence[dg.AssetKey],
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    """A daily job of the datasets' checks only: it re-validates what is current, rebuilding nothing."""
    job = dg.define_asset_job(
        "dataset_quality",
        selection=dg.AssetSelection.checks_for_assets(*dataset_keys),
        description="Re-validate the current version of every governed dataset against its suite.",
    )
    schedule = dg.ScheduleDefinition(
        name="daily_dataset_quality",
        job=job,
        cron_schedule=DATASET_QUALITY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily quality run over every governed dataset.",
    )
    return job, schedule


def lineage_outbox_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="lineage_outbox",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Deliver pending OpenLineage events in order and redraw the lineage graph.",
    )
    def lineage_outbox(lineage: LineageResource) -> dg.SkipReason:
        emitter = lineage.emitter()
        result = emitter.flush()
        graph = lineage.refresh_graph()
        state = f"; backend unavailable: {result.error}" if result.error else ""
        return dg.SkipReason(
            f"delivered {result.delivered}, {result.pending} pending{state}; graph {graph}"
        )

    return lineage_outbox

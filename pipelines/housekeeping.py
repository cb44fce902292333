"""The daily housekeeping job: `governance gc` as a visible, audited run, plus Dagster's own run
history, which only a run on the instance can collect.

No `from __future__ import annotations` here: Dagster reads the op's context annotation as a type.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from governance.config import Estate
from governance.housekeeping import Collected
from pipelines.ops import daily
from pipelines.resources import AuditResource

HOUSEKEEPING_CRON = "30 5 * * *"  # before the daily quality run


def housekeeping(
    estate: Estate, checks: Sequence[dg.AssetCheckKey]
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """`governance gc` on a schedule: a visible, audited run, whose log says what it freed.
    `checks`: the code location's asset checks, whose latest results' runs stay (the event log
    has no list of them, and a run's step context has its repository only when launched from it)."""

    @dg.op(name="collect_garbage", description="Remove history beyond the retention settings.")
    def collect(context: dg.OpExecutionContext, audit: AuditResource) -> None:
        from governance.housekeeping import collect_garbage

        trail = audit.trail(context.run.run_id)
        runs = collect_runs(context, estate.retention.runs, checks)
        for collected in collect_garbage(estate, audit.services(), trail, also=[runs]):
            context.log.info(collected.describe())

    @dg.job(name="housekeeping", description="Remove what the estate's `retention` does not keep.")
    def job() -> None:
        collect()

    return job, daily(job, HOUSEKEEPING_CRON, "Daily `governance gc`.")


def collect_runs(
    context: dg.OpExecutionContext, keep: int, checks: Sequence[dg.AssetCheckKey]
) -> Collected:
    """Runs beyond the newest `keep` that `runs_beyond` does not pin, with their event logs and
    their step logs and outputs (the compute log manager's directory of the run)."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from governance.home import disk_usage
    from governance.housekeeping import runs_beyond

    instance = context.instance
    records = instance.get_run_records(order_by="create_timestamp", ascending=False)
    pinned = {context.run_id} | {r.dagster_run.run_id for r in records if not r.dagster_run.is_finished}
    for asset in instance.get_asset_records():
        entry = asset.asset_entry
        latest = entry.last_materialization_record
        pinned |= {entry.last_run_id or "", latest.run_id if latest else ""}
    latest_checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    pinned |= {execution.run_id for execution in latest_checks.values()}
    doomed = runs_beyond([r.dagster_run.run_id for r in records], keep, pinned)
    if not doomed:  # the instance's directory is walked only when something goes
        return Collected("Dagster runs", 0, len(records), 0)
    root = Path(instance.root_directory)
    before = disk_usage(root)
    for run_id in doomed:
        instance.delete_run(run_id)
        instance.compute_log_manager.delete_logs(prefix=[run_id])
        if isinstance(instance.event_log_storage, SqliteEventLogStorage):
            # the run's own event database: emptied by delete_run, yet as large as before
            Path(instance.event_log_storage.path_for_shard(run_id)).unlink(missing_ok=True)
    freed = max(before - disk_usage(root), 0)  # this run's own events grow meanwhile
    return Collected("Dagster runs", len(doomed), len(records) - len(doomed), freed)

"""The daily housekeeping job: `governance gc` as a visible, audited run.

No `from __future__ import annotations` here: Dagster reads the op's context annotation as a type.
"""

import dagster as dg

from governance.config import RetentionSection
from pipelines.ops import daily
from pipelines.resources import AuditResource

HOUSEKEEPING_CRON = "30 5 * * *"  # before the daily quality run


def housekeeping(retention: RetentionSection) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """`governance gc` on a schedule: a visible, audited run, whose log says what it freed."""

    @dg.op(name="collect_garbage", description="Remove history beyond the retention settings.")
    def collect(context: dg.OpExecutionContext, audit: AuditResource) -> None:
        from governance.housekeeping import collect_garbage

        trail = audit.trail(context.run.run_id)
        for collected in collect_garbage(retention, audit.services().home, trail):
            context.log.info(collected.describe())

    @dg.job(name="housekeeping", description="Remove what the estate's `retention` does not keep.")
    def job() -> None:
        collect()

    return job, daily(job, HOUSEKEEPING_CRON, "Daily `governance gc`.")

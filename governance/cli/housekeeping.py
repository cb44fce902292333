"""`governance gc` and `governance upgrade`: the home kept within its retention, and its stores at
the schemas of the pinned tools."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import click

from governance.cli.root import CliContext, cli, echo, pass_ctx


@cli.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@pass_ctx
def gc(ctx: CliContext, dry_run: bool) -> None:
    """Remove what `retention` in the estate lets go of, and say what that freed: validation
    results and Data Docs pages (never one an audit record names), local releases' model copies no
    color holds, image builds in the builder's storage (never one a color runs) and delivered
    lineage events. Recorded in the audit log. Dagster's run history is collected by the daily
    `housekeeping` job, which runs on the instance."""
    from governance.actors import operator
    from governance.housekeeping import collect_garbage

    trail = ctx.services.trail(operator(getpass.getuser()))
    for collected in collect_garbage(ctx.estate, ctx.services, trail, dry_run):
        echo(("would be " if dry_run else "") + collected.describe())
    keep = ctx.estate.retention.runs
    echo(f"Dagster runs beyond the newest {keep}: collected by the `housekeeping` job on the instance")


@cli.command("upgrade")
@pass_ctx
def upgrade(ctx: CliContext) -> None:
    """Migrate the home's stores to the pinned tools' schemas: MLflow's database (embedded sqlite
    store) and the Dagster instance in $DAGSTER_HOME. A no-op on current stores; `make dev` runs it
    before it starts. Recorded in the audit log, and the versions in <home>/versions.json."""
    from governance.actors import operator
    from governance.upgrade import upgrade_home

    dagster_home = Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else None
    trail = ctx.services.trail(operator(getpass.getuser()))
    done = upgrade_home(ctx.home, ctx.registry().settings, dagster_home, trail)
    echo(f"written by: {', '.join(f'{t} {v}' for t, v in done.before.items()) or '(not recorded)'}")
    echo(f"changed: {', '.join(done.changed()) or 'nothing'}")
    for step in done.steps:
        echo(f"migrated: {step}")

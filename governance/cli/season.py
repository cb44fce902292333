"""`governance simulate season`: days of the platform's use on one home, each checked."""

from __future__ import annotations

import os
from pathlib import Path

import click

from governance.cli.root import EXIT_FAILED, EXIT_INPUT, CliContext, cli, echo, fail, pass_ctx
from governance.season.data import DEFECTS


@cli.group("simulate")
def simulate() -> None:
    """Simulated use of the platform, on a home of its own."""


@simulate.command("season")
@click.option("--days", type=click.IntRange(1, 3650), required=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Draws every day's feed.")
@click.option("--release", default=None, help="The release of a model (default: the only one).")
@click.option(
    "--defect",
    "defects",
    multiple=True,
    metavar="DAY:KIND",
    help=f"A defective feed on DAY: {', '.join(DEFECTS)}.",
)
@click.option("--rollback", "rollbacks", type=int, multiple=True, metavar="DAY")
@click.option("--heal", "heals", type=int, multiple=True, metavar="DAY", help="Kill what serves.")
@click.option("--restart", "restarts", type=int, multiple=True, metavar="DAY", help="Reboot first.")
@click.option("--gc", is_flag=True, help="Run the daily housekeeping job after each day.")
@click.option(
    "--dagster-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The persistent Dagster instance (default: $DAGSTER_HOME, else <home>/dagster).",
)
@pass_ctx
def simulate_season(
    ctx: CliContext,
    days: int,
    seed: int,
    release: str | None,
    defects: tuple[str, ...],
    rollbacks: tuple[int, ...],
    heals: tuple[int, ...],
    restarts: tuple[int, ...],
    gc: bool,
    dagster_home: Path | None,
) -> None:
    """Run DAYS days: each a new feed drawn from the dataset's source, then the day's run through
    `dagster asset materialize`, the day's events, and every invariant. Without any of --defect,
    --rollback, --heal or --restart, each week has a defect, a rollback, a dying container and a
    restart (days 3, 5, 6, 7; every second week a defect on day 4 too). Reports go to
    <home>/season/days.jsonl; a season run again goes on from its first unreported day. Exit 1 at
    the first day that breaks an invariant."""
    from governance.season.plan import SeasonPlan
    from governance.season.simulate import Season

    if defects or rollbacks or heals or restarts:
        plan = SeasonPlan(
            days, seed, dict(_defect(d) for d in defects), *map(frozenset, (rollbacks, heals, restarts))
        ).checked()
    else:
        plan = SeasonPlan.weekly(days, seed)
    estate = ctx.estate
    models = [name for name, spec in estate.releases.items() if spec.model]
    if release is None and len(models) != 1:
        fail(f"name the release with --release: one of {', '.join(models) or '(none)'}", EXIT_INPUT)
    instance = dagster_home or Path(os.environ.get("DAGSTER_HOME") or ctx.home.root / "dagster")
    directory = ctx.home.root / "season"
    name = release or models[0]
    season = Season(plan, estate, name, ctx.services, directory, instance, echo, housekeeping=gc)
    reports = season.run()
    if any(report.violations for report in reports):
        fail(f"the season broke an invariant: see {season.reports}", EXIT_FAILED)
    echo(f"{len(season.done())} of {days} days done, every invariant holds ({season.reports})")


def _defect(value: str) -> tuple[int, str]:
    day, _, kind = value.partition(":")
    if not day.isdigit() or not kind:
        raise click.BadParameter(f"{value!r}: expected DAY:KIND, for example 3:truncated")
    return int(day), kind

"""`governance audit …` and `governance lineage …`: the platform's records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from governance.cli.root import EXIT_INPUT, CliContext, cli, echo, fail, pass_ctx


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@pass_ctx
def audit_verify(ctx: CliContext) -> None:
    """Check the hash chain; exit 1 naming the first broken record."""
    from governance.audit.chain import verify

    records = list(ctx.audit_log().records())
    broken = verify(records)
    if broken is not None:
        echo(f"audit log BROKEN at {broken}", err=True)
        sys.exit(1)
    head = records[-1].hash if records else "(empty)"
    echo(f"audit log intact: {len(records)} records, head {head}")


@audit.command("show")
@click.option("--subject", default=None, help="Only records about this subject (e.g. dataset:penguins).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def audit_show(ctx: CliContext, subject: str | None, as_json: bool) -> None:
    """Print audit records, oldest first."""
    records = list(ctx.audit_log().records(subject))
    if as_json:
        echo(json.dumps([record.as_dict() for record in records], indent=2))
        return
    from governance.display import one_line

    for r in records:
        versions = " ".join(f"{k}={v}" for k, v in r.versions.items())
        reasons = f" ({'; '.join(r.reasons)})" if r.reasons else ""
        # One record, one line: a stored newline must not forge a record on the screen.
        echo(one_line(f"{r.seq:>6}  {r.at}  {r.actor}  {r.action}  {r.subject}  {versions}  "
                      f"{r.decision}{reasons}"))  # fmt: skip


@cli.group()
def lineage() -> None:
    """OpenLineage events and their delivery."""


@lineage.command("events")
@pass_ctx
def lineage_events(ctx: CliContext) -> None:
    """Every recorded event, oldest first, as JSON lines."""
    for event in ctx.lineage_outbox().events():
        echo(json.dumps(event, sort_keys=True))


@lineage.command("flush")
@pass_ctx
def lineage_flush(ctx: CliContext) -> None:
    """Deliver pending events, in order; exit 1 if the backend is still unreachable."""
    transport = ctx.services.lineage_transport()
    result = ctx.lineage_outbox().flush(transport)
    rejected = result.dead_lettered
    dead = f"; {rejected} rejected (see `lineage dead-letters`)" if rejected else ""
    echo(
        f"delivered {result.delivered} event(s) to {transport.describe()}; "
        f"{result.pending} pending{dead}"
    )
    if result.error:
        fail(result.error, 1)


@lineage.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def lineage_dead_letters(ctx: CliContext, as_json: bool) -> None:
    """Events the backend rejected (4xx): kept, never resent, listed here; exit 1 if any."""
    letters = ctx.lineage_outbox().dead_letters()
    if as_json:
        echo(json.dumps([letter.__dict__ for letter in letters], indent=2, sort_keys=True))
    else:
        for letter in letters:
            job = letter.event.get("job", {}).get("name", "?")
            echo(f"{letter.seq:>6}  {letter.event.get('eventType', '?')}  {job}  {letter.error}")
    sys.exit(1 if letters else 0)


@lineage.command("graph")
@click.option(
    "--format", "fmt", type=click.Choice(["svg", "png", "html", "dot"]), default="svg", show_default=True
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Default: lineage.FORMAT in the home."
)
@pass_ctx
def lineage_graph(ctx: CliContext, fmt: str, out: Path | None) -> None:
    """Render datasets and jobs from the recorded events, with versions on the nodes."""
    from governance.lineage.graph import render

    destination = out or ctx.home.lineage / f"lineage.{fmt}"
    render(list(ctx.lineage_outbox().events()), fmt, destination)
    echo(f"lineage graph written to {destination}")


@lineage.command("explorer")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The HTML file to write.")
@pass_ctx
def lineage_explorer(ctx: CliContext, out: Path) -> None:
    """Write the lineage explorer (every version, its facets and audit records) as one offline page;
    the site serves the same page live at /lineage/explorer.html."""
    from governance.lineage.explorer import render_explorer

    page = render_explorer(ctx.lineage_outbox().events(), ctx.audit_log().records())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_INPUT)
    echo(f"lineage explorer written to {out}")

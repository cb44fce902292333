"""`governance site …`: the platform's pages (Data Docs, lineage, provenance) over HTTP on loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from governance.cli.root import CliContext, cli, echo, pass_ctx

if TYPE_CHECKING:
    from governance.site import Site

_URL = click.option("--url", default=None, help="http://HOST:PORT (or $GOVERNANCE_SITE_URL).")


@cli.group("site")
def site() -> None:
    """The pages every metadata link in the Dagster UI points to."""


@site.command("start")
@_URL
@pass_ctx
def site_start(ctx: CliContext, url: str | None) -> None:
    """Serve the site in the background unless it answers already (`make dev` serves it itself)."""
    from governance.site import start

    served = _site(ctx, url)
    pid = start(served)
    where = served.base_url
    echo(f"site started at {where} (pid {pid})" if pid else f"site answering at {where}")


@site.command("stop")
@pass_ctx
def site_stop(ctx: CliContext) -> None:
    """Stop the site that `site start` started."""
    from governance.site import stop

    echo("site stopped" if stop(ctx.home) else "no site was started from this home")


@site.command("serve")
@_URL
@pass_ctx
def site_serve(ctx: CliContext, url: str | None) -> None:
    """Serve the site in this process (in the foreground) until interrupted."""
    from governance.site import serve

    served = _site(ctx, url)
    echo(f"serving {served.base_url}")
    serve(served)


def _site(ctx: CliContext, url: str | None) -> Site:
    ctx.override(site_url=url)
    return ctx.services.site()

"""The root `governance` group and the context every command shares (estate, home, audit, MLflow)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

import click

from governance.config import Estate, load_estate
from governance.home import GovernanceHome

if TYPE_CHECKING:
    from governance.audit.store import AuditLog
    from governance.explain import Link
    from governance.lineage.outbox import Outbox
    from governance.models.registry import ModelRegistry


class CliContext:
    def __init__(self, estate_path: str, home: str | None, audit_url: str | None) -> None:
        self.estate_path = estate_path
        self.audit_url = audit_url
        self.home = GovernanceHome.resolve(home)
        self._estate: Estate | None = None
        self.tracking_uri: str | None = None

    @property
    def estate(self) -> Estate:
        if self._estate is None:
            self._estate = load_estate(self.estate_path)
        return self._estate

    def audit_log(self) -> AuditLog:
        from governance.audit.store import open_audit_log

        return open_audit_log(self.home.audit_db, self.audit_url)

    def lineage_outbox(self) -> Outbox:
        from governance.lineage.outbox import Outbox

        return Outbox(self.home.lineage / "outbox.db")

    def registry(self) -> ModelRegistry:
        from governance.models.registry import ModelRegistry
        from governance.models.settings import mlflow_settings

        return ModelRegistry(mlflow_settings(self.home, self.tracking_uri))


pass_ctx = click.make_pass_decorator(CliContext)


@click.group()
@click.option(
    "--estate",
    default="governance.yaml",
    envvar="GOVERNANCE_ESTATE",
    show_default=True,
    help="The estate file.",
)
@click.option("--home", default=None, help="State directory (default: $GOVERNANCE_HOME or .governance).")
@click.option(
    "--audit-url",
    default=None,
    envvar="GOVERNANCE_AUDIT_URL",
    help="postgresql://… for a Postgres audit log (default: sqlite under the home).",
)
@click.pass_context
def cli(ctx: click.Context, estate: str, home: str | None, audit_url: str | None) -> None:
    """Govern datasets, models, images and releases."""
    ctx.obj = CliContext(estate, home, audit_url)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def print_links(links: Sequence[Link], as_json: bool) -> None:
    """A provenance chain, one link per line (or JSON)."""
    if as_json:
        click.echo(json.dumps([link.as_dict() for link in links], indent=2))
        return
    for link in links:
        details = ", ".join(f"{k}={v}" for k, v in link.details.items() if v not in ("", [], None))
        click.echo(f"{link.kind:>16}  {link.ref}  [{link.at}]  {details}")

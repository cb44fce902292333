"""The root `governance` group and the context every command shares (estate, home, audit, MLflow)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

import click

from governance.config import Estate, load_estate
from governance.home import GovernanceHome
from governance.services import Services, Settings

if TYPE_CHECKING:
    from governance.audit.store import AuditLog
    from governance.datasets.versioning import DatasetStore
    from governance.explain import Link
    from governance.lineage.outbox import Outbox
    from governance.models.registry import ModelRegistry


class CliContext:
    """The command's view of the composition root: flags are the explicit settings."""

    def __init__(self, estate_path: str, home: str | None, audit_url: str | None) -> None:
        self.estate_path = estate_path
        self.services = Services(Settings(home=home, audit_url=audit_url))
        self._estate: Estate | None = None

    @property
    def home(self) -> GovernanceHome:
        return self.services.home

    def override(
        self,
        *,
        tracking_uri: str | None = None,
        dagster_url: str | None = None,
        site_url: str | None = None,
    ) -> None:
        """A command's own flags are explicit settings too (None leaves a setting as it was)."""
        settings = self.services.settings
        self.services = Services(
            replace(
                settings,
                tracking_uri=tracking_uri or settings.tracking_uri,
                dagster_url=dagster_url or settings.dagster_url,
                site_url=site_url or settings.site_url,
            )
        )

    @property
    def estate(self) -> Estate:
        if self._estate is None:
            self._estate = load_estate(self.estate_path)
        return self._estate

    def audit_log(self) -> AuditLog:
        return self.services.audit_log()

    def lineage_outbox(self) -> Outbox:
        return self.services.outbox()

    def registry(self) -> ModelRegistry:
        return self.services.registry()

    def dataset_store(self) -> DatasetStore:
        return self.services.dataset_store()


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
    help="postgresql://… audit log (or $GOVERNANCE_AUDIT_URL; default: sqlite under the home).",
)
@click.option("--debug", is_flag=True, help="On an unexpected error, print its traceback.")
@click.pass_context
def cli(ctx: click.Context, estate: str, home: str | None, audit_url: str | None, debug: bool) -> None:
    """Govern datasets, models, images and releases."""
    ctx.obj = CliContext(estate, home, audit_url)


EXIT_FAILED = 1  # a check ran and failed
EXIT_INPUT = 2  # the input or the request is unusable
EXIT_UNEXPECTED = 3  # a bug
EXIT_UNAVAILABLE = 4  # a service the command needs is down; retry


def echo(text: str = "", err: bool = False) -> None:
    """Print for a person: no credential and no terminal escape from the data being shown."""
    from governance.display import printable
    from governance.redaction import redact

    click.echo(printable(redact(text)), err=err)


def fail(message: str, code: int) -> NoReturn:
    from governance.display import one_line, shortened

    echo(f"error: {shortened(one_line(message))}", err=True)
    sys.exit(code)


def print_links(links: Sequence[Link], as_json: bool) -> None:
    """A provenance chain, one link per line (or JSON)."""
    if as_json:
        echo(json.dumps([link.as_dict() for link in links], indent=2))
        return
    for link in links:
        details = ", ".join(f"{k}={v}" for k, v in link.details.items() if v not in ("", [], None))
        echo(f"{link.kind:>16}  {link.ref}  [{link.at}]  {details}")

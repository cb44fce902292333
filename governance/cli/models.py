"""`governance models …`: registered versions, alias moves, provenance."""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from governance.actors import operator
from governance.cli.root import CliContext, cli, echo, pass_ctx, print_links


@cli.group()
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking server (or $MLFLOW_TRACKING_URI; default: the embedded store under the home).",
)
@pass_ctx
def models(ctx: CliContext, tracking_uri: str | None) -> None:
    """Registered model versions and their aliases."""
    ctx.override(tracking_uri=tracking_uri)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def models_list(ctx: CliContext, as_json: bool) -> None:
    """Each governed model's versions with aliases, tags and metrics."""
    from governance.models.aliases import describe

    registry = ctx.registry()
    listing = [describe(registry, spec) for spec in ctx.estate.models.values()]
    if as_json:
        echo(json.dumps(listing, indent=2))
        return
    for entry in listing:
        echo(f"{entry['model']} ({entry['registered_name']}): {len(entry['versions'])} version(s)")
        for version in entry["versions"]:
            aliases = ",".join(version["aliases"]) or "-"
            gate = version["tags"].get("governance.gate.status", "not gated")
            accuracy = version["metrics"].get("accuracy")
            shown = f"{accuracy:.4f}" if accuracy is not None else "-"
            echo(f"  v{version['version']}  aliases={aliases}  gate={gate}  accuracy={shown}")


def _alias_change(command: Callable[..., None]) -> Callable[..., None]:
    """The options every alias move takes: which alias, and who decided it and why (recorded)."""
    for option in reversed(
        [
            click.option("--alias", default="champion", show_default=True),
            click.option("--by", required=True, help="Who decides (recorded)."),
            click.option("--reason", required=True, help="Why (recorded)."),
        ]
    ):
        command = option(command)
    return command


@models.command("promote")
@click.argument("name")
@click.argument("version")
@_alias_change
@pass_ctx
def models_promote(ctx: CliContext, name: str, version: str, alias: str, by: str, reason: str) -> None:
    """Point ALIAS of model NAME at VERSION."""
    from governance.audit.store import AuditTrail
    from governance.models.aliases import promote

    spec = ctx.estate.model(name)
    trail = AuditTrail(ctx.audit_log(), operator(by))
    promote(ctx.registry(), spec.registered_name, version, alias, reason=reason, trail=trail)
    echo(f"{spec.registered_name}@{alias} -> version {version} (by {by}: {reason})")


@models.command("demote")
@click.argument("name")
@_alias_change
@pass_ctx
def models_demote(ctx: CliContext, name: str, alias: str, by: str, reason: str) -> None:
    """Remove ALIAS from whichever version of model NAME holds it."""
    from governance.audit.store import AuditTrail
    from governance.models.aliases import demote

    spec = ctx.estate.model(name)
    trail = AuditTrail(ctx.audit_log(), operator(by))
    version = demote(ctx.registry(), spec.registered_name, alias, reason=reason, trail=trail)
    echo(f"{spec.registered_name}@{alias} removed from version {version} (by {by}: {reason})")


@models.command("explain")
@click.argument("name")
@click.option(
    "--alias", default=None, help="Which version: the one holding this alias (default champion)."
)
@click.option("--version", default=None, help="Or an exact version number.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def models_explain(
    ctx: CliContext, name: str, alias: str | None, version: str | None, as_json: bool
) -> None:
    """Where a model version came from: dataset version, validations, lineage runs, audit records."""
    from governance.explain import explain_model

    spec = ctx.estate.model(name)
    store = ctx.dataset_store()
    links = explain_model(
        spec,
        ctx.estate.dataset(spec.dataset),
        ctx.registry(),
        store,
        ctx.audit_log().records(),
        ctx.lineage_outbox().events(),
        alias=alias,
        version=version,
    )
    print_links(links, as_json)

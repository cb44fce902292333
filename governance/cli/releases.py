"""`governance release …`: approve or reject, launch, bootstrap, status, rollback, heal and down,
outside Dagster."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from governance.actors import operator, person, self_heal
from governance.actors import reason as checked_reason
from governance.cli.root import CliContext, cli, echo, fail, pass_ctx, print_links

if TYPE_CHECKING:
    from governance.config import ReleaseSpec
    from governance.releases.controller import Controller, Outcome
    from governance.releases.target import Target


@cli.group("release")
def release() -> None:
    """Blue/green releases: the model server serving a governed model version."""


def _target(ctx: CliContext, spec: ReleaseSpec) -> Target:
    return ctx.services.release_target(spec, ctx.estate)


def _controller(ctx: CliContext, name: str, actor: str) -> Controller:
    return ctx.services.release_controller(ctx.estate.release(name), ctx.estate, actor)


def _report(outcome: Outcome) -> None:
    decision = outcome.decision
    echo(f"{decision.action}: {decision.candidate or '-'} (serving: {decision.active_color or 'none'})")
    for reason in decision.reasons:
        echo(f"  {reason}")
    for name, seconds in outcome.timings.items():
        echo(f"  {name} {seconds:.2f}")


@release.command("approve")
@click.argument("name")
@click.option("--by", required=True, help="Who approves: one of the release's approvers.")
@click.option("--reason", default="approved for release", show_default=True)
@pass_ctx
def release_approve(ctx: CliContext, name: str, by: str, reason: str) -> None:
    """Approve NAME's current candidate (exactly its versions); recorded in the audit log. Refused
    unless BY is one of the release's approvers and did not launch the candidate."""
    _decide(ctx, name, by, reason, approve=True)


@release.command("reject")
@click.argument("name")
@click.option("--by", required=True, help="Who rejects: one of the release's approvers.")
@click.option("--reason", required=True, help="Why, for the audit log and the gate.")
@pass_ctx
def release_reject(ctx: CliContext, name: str, by: str, reason: str) -> None:
    """Reject NAME's current candidate: its approval gate stays shut until someone approves it."""
    _decide(ctx, name, by, reason, approve=False)


def _decide(ctx: CliContext, name: str, by: str, reason: str, approve: bool) -> None:
    from governance.releases.approvals import decide

    actor = operator(by)
    version = decide(ctx.estate.release(name), ctx.audit_log(), actor, approve, reason)
    echo(f"{name}: {version} {'approved' if approve else 'rejected'} by {by.strip()}")


@release.command("launch")
@click.argument("name")
@click.option("--dagster-url", default=None, help="The webserver (or $GOVERNANCE_DAGSTER_URL).")
@click.option("--location", default="governance", show_default=True, help="The code location.")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE run tag (repeatable).")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait for the run.")
@click.option(
    "--by",
    default=getpass.getuser,
    show_default="the current user",
    help="Who launches: recorded with the candidate, and never its approver.",
)
@click.option(
    "--candidate-only",
    is_flag=True,
    help="Materialize the candidate alone (its exact versions, to be approved before the release).",
)
@pass_ctx
def release_launch(
    ctx: CliContext,
    name: str,
    dagster_url: str | None,
    location: str,
    tags: tuple[str, ...],
    timeout: float,
    by: str,
    candidate_only: bool,
) -> None:
    """Materialize NAME's candidate and release on a Dagster deployment and wait for the run, so a
    deployment from CI passes the same gates, approvals and audit as one from the UI.
    Exit 0 when the run succeeds, 1 when it fails or is canceled."""
    from governance.launch import DagsterApi
    from governance.releases.approvals import LAUNCHED_BY_TAG

    ctx.estate.release(name)  # an unknown release is refused before anything is launched
    pairs = {LAUNCHED_BY_TAG: person(by), **dict(_tag(text) for text in tags)}
    ctx.override(dagster_url=dagster_url)
    api = DagsterApi(ctx.services.dagster_url())
    assets = [f"{name}_candidate"] if candidate_only else [f"{name}_candidate", name]
    run_id = api.launch(location, assets, pairs)
    echo(f"launched {api.run_url(run_id)}")
    status = api.wait(run_id, timeout, on_status=lambda status: echo(f"  {status}"))
    echo(f"{name}: run {run_id} {status}")
    sys.exit(0 if status == "SUCCESS" else 1)


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--tag")
    return key.strip(), value


def _acted(default_reason: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """NAME, who acts (`--by`, the current user by default) and why (`--reason`)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in (
            pass_ctx,
            click.option("--reason", default=default_reason, show_default=True),
            click.option("--by", default=getpass.getuser, show_default="the current user"),
            click.argument("name"),
        ):
            command = option(command)
        return command

    return decorate


@release.command("rollback")
@_acted("manual rollback")
def release_rollback(ctx: CliContext, name: str, by: str, reason: str) -> None:
    """Switch NAME's service back to the previous color; the champion alias follows."""
    outcome = _controller(ctx, name, operator(by)).rollback(checked_reason(reason))
    _report(outcome)
    sys.exit(0 if outcome.decision.action == "rolled back" else 1)


@release.command("heal")
@click.argument("name")
@pass_ctx
def release_heal(ctx: CliContext, name: str) -> None:
    """Probe the serving color once; after N consecutive failures restart it or roll back.
    Exit 0 healthy or recovered, 1 degraded or failed."""
    outcome = _controller(ctx, name, self_heal()).heal()
    _report(outcome)
    sys.exit(0 if outcome.decision.action in ("healthy", "restarted", "rolled back", "unchanged") else 1)


@release.command("bootstrap")
@_acted("first install")
def release_bootstrap(ctx: CliContext, name: str, by: str, reason: str) -> None:
    """Create every object NAME's Kubernetes overlay defines that its namespace lacks (run it with
    an administrator's kubeconfig: the release controller's Role may create nothing). Existing
    objects are left as they are; what was applied becomes the baseline `release status` checks
    for drift. Recorded in the audit log."""
    import hashlib

    from governance.audit.store import AuditTrail
    from governance.releases.baseline import install
    from governance.releases.kubernetes import KubernetesTarget

    spec = ctx.estate.release(name)
    target = _target(ctx, spec)
    if not isinstance(target, KubernetesTarget):
        fail(f"{name}: the {spec.target} target needs no bootstrap; its first promotion starts it", 2)
    actor, why = operator(by), checked_reason(reason)
    installed = install(target)
    manifests = "sha256:" + hashlib.sha256(target.overlay().encode()).hexdigest()
    AuditTrail(ctx.audit_log(), actor).record_or_undo(
        "release.bootstrapped",
        f"release:{name}",
        {"manifests": manifests},
        "installed",
        [why, f"created: {', '.join(installed.created) or 'nothing'}"],
        undo=installed.undo,
        done=f"{name}: {len(installed.created)} object(s) created in {target.settings.namespace}",
    )
    for label in installed.created:
        echo(f"  created {label}")
    for label in installed.existing:
        echo(f"  exists  {label} (left as it is)")
    echo(f"{name}: {len(installed.created)} created, {len(installed.existing)} already there")


@release.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def release_status(ctx: CliContext, as_json: bool) -> None:
    """Per release: service URL, serving color, versions on each color, health, last decision."""
    from governance.releases.lifecycle import status

    reports = [status(spec, ctx.home, _target(ctx, spec)) for spec in ctx.estate.releases.values()]
    if as_json:
        echo(json.dumps(reports, indent=2))
        return
    for report in reports:
        echo(
            f"{report['name']}: {report['service_url']} -> {report['active_color'] or 'nothing serving'}"
        )
        for color, info in report["colors"].items():
            versions = info["versions"] or {}
            what = (
                f"{versions.get('model_version', '-')} on {versions.get('image', '-')}"
                if versions
                else "-"
            )
            health = "healthy" if info["healthy"] else info["detail"]
            echo(f"  {color:5} {what} ({health})")
        drift = report.get("drift")
        if report["target"] == "kubernetes":
            if drift is None:
                echo("  drift: not checked (the namespace was not installed by `release bootstrap`)")
            elif not drift:
                echo("  drift: none (the cluster holds what was applied)")
            for line in drift or []:
                echo(f"  drift: {line}")
        last = report["last_decision"]
        if last:
            echo(f"  last decision: {last['action']} {last['candidate']}: {'; '.join(last['reasons'])}")


@release.command("down")
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True, help="Every release in the estate.")
@pass_ctx
def release_down(ctx: CliContext, name: str | None, everything: bool) -> None:
    """Stop what the target started for NAME (or --all): both colors and the service."""
    if bool(name) == everything:
        fail("give a release NAME or --all", 2)
    specs = list(ctx.estate.releases.values()) if everything else [ctx.estate.release(str(name))]
    for spec in specs:
        _target(ctx, spec).down()
        echo(f"{spec.name}: stopped")


@release.command("explain")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def release_explain(ctx: CliContext, name: str, as_json: bool) -> None:
    """What serves NAME now and where it came from: service, color, image, model, dataset,
    validations, lineage runs and audit records, each with a time."""
    from governance.explain import explain_release
    from governance.releases.lifecycle import serving

    spec = ctx.estate.release(name)
    links = explain_release(
        spec,
        serving(spec, ctx.home, _target(ctx, spec)),
        ctx.estate.served_model(spec),
        ctx.registry(),
        ctx.dataset_store(),
        ctx.audit_log().records(),
        ctx.lineage_outbox().events(),
    )
    print_links(links, as_json)

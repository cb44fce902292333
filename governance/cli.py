"""The `governance` command: the same library calls the Dagster assets make, for operators and CI.

Exit codes: 0 success, 1 a check failed (validation, policy), 2 bad input or usage. Any
GovernanceError is printed as one line without a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from governance.config import Estate, load_estate
from governance.errors import DatasetReadError, GovernanceError
from governance.home import GovernanceHome

if TYPE_CHECKING:
    from governance.audit.store import AuditLog
    from governance.lineage.outbox import Outbox
    from governance.models.registry import ModelRegistry


class _Context:
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


pass_ctx = click.make_pass_decorator(_Context)


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
    ctx.obj = _Context(estate, home, audit_url)


@cli.group()
def datasets() -> None:
    """Versioned, validated datasets."""


@datasets.command("validate")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@pass_ctx
def datasets_validate(ctx: _Context, name: str, path: Path) -> None:
    """Run dataset NAME's expectation suite on the file PATH, as it is."""
    from governance.datasets.lifecycle import validate_file
    from governance.datasets.report import render

    spec = ctx.estate.dataset(name)
    report = validate_file(spec, path, ctx.home.gx)
    click.echo(render(report, path))
    sys.exit(0 if report.success else 1)


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def datasets_list(ctx: _Context, as_json: bool) -> None:
    """Every governed dataset with its current and past versions."""
    from governance.datasets.versioning import DatasetStore

    store = DatasetStore(ctx.home.datasets_repo, str(ctx.home.dvc_remote))
    listing: list[dict[str, Any]] = []
    for spec in ctx.estate.datasets.values():
        history = store.history(spec.name)
        listing.append(
            {
                "name": spec.name,
                "description": spec.description,
                "owner": spec.owner,
                "suite": str(spec.suite),
                "current": history[0].as_dict() if history else None,
                "versions": [version.as_dict() for version in history],
            }
        )
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for entry in listing:
        current = entry["current"]["md5"] if entry["current"] else "(no version yet)"
        click.echo(f"{entry['name']}: current {current}, {len(entry['versions'])} version(s)")
        for version in entry["versions"]:
            click.echo(f"  {version['md5']}  {version['committed_at']}  {version['size']} bytes")


@datasets.command("checkout")
@click.argument("name")
@click.option("--version", "md5", required=True, help="The DVC md5 (or a unique prefix).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write it (default: ./NAME-MD5.csv).",
)
@pass_ctx
def datasets_checkout(ctx: _Context, name: str, md5: str, out: Path | None) -> None:
    """Write an older (or the current) version of dataset NAME to a file."""
    from governance.datasets.versioning import DatasetStore

    ctx.estate.dataset(name)
    store = DatasetStore(ctx.home.datasets_repo, str(ctx.home.dvc_remote))
    version = store.find(name, md5)
    destination = out or Path(f"{name}-{version.md5}.csv")
    store.export(name, version.md5, destination)
    click.echo(f"{name} {version.md5} ({version.committed_at}) written to {destination}")


@cli.group()
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    default=None,
    help="MLflow tracking server (default: the embedded store under the home).",
)
@pass_ctx
def models(ctx: _Context, tracking_uri: str | None) -> None:
    """Registered model versions and their aliases."""
    ctx.tracking_uri = tracking_uri


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def models_list(ctx: _Context, as_json: bool) -> None:
    """Each governed model's versions with aliases, tags and metrics."""
    from governance.models.aliases import describe

    registry = ctx.registry()
    listing = [describe(registry, spec) for spec in ctx.estate.models.values()]
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for entry in listing:
        click.echo(f"{entry['model']} ({entry['registered_name']}): {len(entry['versions'])} version(s)")
        for version in entry["versions"]:
            aliases = ",".join(version["aliases"]) or "-"
            gate = version["tags"].get("governance.gate.status", "not gated")
            accuracy = version["metrics"].get("accuracy")
            shown = f"{accuracy:.4f}" if accuracy is not None else "-"
            click.echo(f"  v{version['version']}  aliases={aliases}  gate={gate}  accuracy={shown}")


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="champion", show_default=True)
@click.option("--by", required=True, help="Who decides (recorded).")
@click.option("--reason", required=True, help="Why (recorded).")
@pass_ctx
def models_promote(ctx: _Context, name: str, version: str, alias: str, by: str, reason: str) -> None:
    """Point ALIAS of model NAME at VERSION."""
    from governance.models.aliases import promote

    spec = ctx.estate.model(name)
    promote(
        ctx.registry(), spec.registered_name, version, alias, by=by, reason=reason, audit=ctx.audit_log()
    )
    click.echo(f"{spec.registered_name}@{alias} -> version {version} (by {by}: {reason})")


@models.command("demote")
@click.argument("name")
@click.option("--alias", default="champion", show_default=True)
@click.option("--by", required=True, help="Who decides (recorded).")
@click.option("--reason", required=True, help="Why (recorded).")
@pass_ctx
def models_demote(ctx: _Context, name: str, alias: str, by: str, reason: str) -> None:
    """Remove ALIAS from whichever version of model NAME holds it."""
    from governance.models.aliases import demote

    spec = ctx.estate.model(name)
    version = demote(
        ctx.registry(), spec.registered_name, alias, by=by, reason=reason, audit=ctx.audit_log()
    )
    click.echo(f"{spec.registered_name}@{alias} removed from version {version} (by {by}: {reason})")


@models.command("explain")
@click.argument("name")
@click.option(
    "--alias", default=None, help="Which version: the one holding this alias (default champion)."
)
@click.option("--version", default=None, help="Or an exact version number.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def models_explain(
    ctx: _Context, name: str, alias: str | None, version: str | None, as_json: bool
) -> None:
    """Where a model version came from: dataset version, validations, lineage runs, audit records."""
    from governance.datasets.versioning import DatasetStore
    from governance.explain import explain_model

    spec = ctx.estate.model(name)
    store = DatasetStore(ctx.home.datasets_repo, str(ctx.home.dvc_remote))
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
    if as_json:
        click.echo(json.dumps([link.as_dict() for link in links], indent=2))
        return
    for link in links:
        details = ", ".join(f"{k}={v}" for k, v in link.details.items() if v not in ("", [], None))
        click.echo(f"{link.kind:>16}  {link.ref}  [{link.at}]  {details}")


@cli.group()
def images() -> None:
    """Container images of the apps."""


@images.command("check-lockfile")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def images_check_lockfile(directory: Path) -> None:
    """What a frozen install in DIRECTORY would refuse, per manifest and package; exit 1 if any."""
    from governance.images.lockfiles import check_lockfile

    report = check_lockfile(directory)
    for mismatch in report.mismatches:
        click.echo(str(mismatch))
    if not report.consistent:
        click.echo(
            f"{report.lockfile}: {len(report.mismatches)} mismatch(es); "
            f"a frozen {report.kind} install would fail"
        )
        sys.exit(1)
    click.echo(f"{report.lockfile}: consistent with every manifest ({report.kind})")


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@pass_ctx
def audit_verify(ctx: _Context) -> None:
    """Check the hash chain; exit 1 naming the first broken record."""
    from governance.audit.chain import verify

    records = list(ctx.audit_log().records())
    broken = verify(records)
    if broken is not None:
        click.echo(f"audit log BROKEN at {broken}", err=True)
        sys.exit(1)
    head = records[-1].hash if records else "(empty)"
    click.echo(f"audit log intact: {len(records)} records, head {head}")


@audit.command("show")
@click.option("--subject", default=None, help="Only records about this subject (e.g. dataset:penguins).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def audit_show(ctx: _Context, subject: str | None, as_json: bool) -> None:
    """Print audit records, oldest first."""
    records = list(ctx.audit_log().records(subject))
    if as_json:
        click.echo(json.dumps([record.as_dict() for record in records], indent=2))
        return
    for r in records:
        versions = " ".join(f"{k}={v}" for k, v in r.versions.items())
        reasons = f" ({'; '.join(r.reasons)})" if r.reasons else ""
        click.echo(
            f"{r.seq:>6}  {r.at}  {r.actor}  {r.action}  {r.subject}  {versions}  {r.decision}{reasons}"
        )


@cli.group()
def lineage() -> None:
    """OpenLineage events and their delivery."""


@lineage.command("events")
@pass_ctx
def lineage_events(ctx: _Context) -> None:
    """Every recorded event, oldest first, as JSON lines."""
    for event in ctx.lineage_outbox().events():
        click.echo(json.dumps(event, sort_keys=True))


@lineage.command("flush")
@pass_ctx
def lineage_flush(ctx: _Context) -> None:
    """Deliver pending events, in order; exit 1 if the backend is still unreachable."""
    from governance.lineage.transport import transport_from_environment

    transport = transport_from_environment(ctx.home.lineage / "events.jsonl")
    result = ctx.lineage_outbox().flush(transport)
    click.echo(
        f"delivered {result.delivered} event(s) to {transport.describe()}; {result.pending} pending"
    )
    if result.error:
        _fail(result.error, 1)


@lineage.command("graph")
@click.option(
    "--format", "fmt", type=click.Choice(["svg", "png", "html", "dot"]), default="svg", show_default=True
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Default: lineage.FORMAT in the home."
)
@pass_ctx
def lineage_graph(ctx: _Context, fmt: str, out: Path | None) -> None:
    """Render datasets and jobs from the recorded events, with versions on the nodes."""
    from governance.lineage.graph import render

    destination = out or ctx.home.lineage / f"lineage.{fmt}"
    render(list(ctx.lineage_outbox().events()), fmt, destination)
    click.echo(f"lineage graph written to {destination}")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DatasetReadError as exc:
        _fail(str(exc), 2)
    except GovernanceError as exc:
        _fail(str(exc), 2)

"""`governance images …`: preflight, build, test, lockfile consistency, Dockerfile policy, registry."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from governance.actors import operator
from governance.cli.root import CliContext, cli, echo, pass_ctx

if TYPE_CHECKING:
    from governance.images.lifecycle import ImageWorkspace


@cli.group()
def images() -> None:
    """Container images of the apps."""


@images.command("check-lockfile")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def images_check_lockfile(directory: Path) -> None:
    """What a frozen install in DIRECTORY would refuse, per manifest and package; exit 1 if any.
    What it would accept although wrong (a misdirected workspace link) is a warning."""
    from governance.images.lockfiles import check_lockfile

    report = check_lockfile(directory)
    for mismatch in report.mismatches:
        echo(str(mismatch))
    for warning in report.warnings:
        echo(f"warning: {warning}")
    if not report.consistent:
        echo(
            f"{report.lockfile}: {len(report.mismatches)} mismatch(es); "
            f"a frozen {report.kind} install would fail; fix: {report.fix}"
        )
        sys.exit(1)
    echo(f"{report.lockfile}: consistent with every manifest ({report.kind})")


@images.command("lint-dockerfile")
@click.argument("dockerfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--json", "as_json", is_flag=True, help="Findings as JSON (rule, severity, line, message)."
)
def images_lint_dockerfile(dockerfile: Path, as_json: bool) -> None:
    """Check DOCKERFILE against the build policy; exit 1 on any error-severity finding."""
    from governance.images.dockerfile import lint

    findings = lint(dockerfile)
    if as_json:
        echo(json.dumps([finding.as_dict() for finding in findings], indent=2))
    else:
        for f in findings:
            echo(f"{dockerfile}:{f.line}: {f.severity}: {f.rule}: {f.message}")
        echo(f"{len(findings)} finding(s)")
    sys.exit(1 if any(f.severity == "error" for f in findings) else 0)


def _workspace(ctx: CliContext) -> ImageWorkspace:
    return ctx.services.image_workspace(ctx.estate.images)


@images.command("preflight")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Checks as JSON.")
@pass_ctx
def images_preflight(ctx: CliContext, name: str, as_json: bool) -> None:
    """Everything a build of NAME depends on, each with a verdict within seconds; exit 1 if any fails."""
    from governance.images.lifecycle import preflight

    checks = preflight(ctx.estate.image(name), _workspace(ctx))
    if as_json:
        echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        for check in checks:
            echo(str(check))
    sys.exit(1 if any(c.blocking for c in checks) else 0)


@images.command("build")
@click.argument("name")
@click.option("--no-cache", is_flag=True, help="Rebuild every step instead of reusing cached layers.")
@click.option("--json", "as_json", is_flag=True, help="The build record as JSON on stdout.")
@pass_ctx
def images_build(ctx: CliContext, name: str, no_cache: bool, as_json: bool) -> None:
    """Preflight, fetch, build, push NAME: the path the Dagster asset runs. Progress goes to stderr."""
    from governance.audit.store import AuditTrail
    from governance.images.lifecycle import build_image

    trail = AuditTrail(ctx.audit_log(), operator(getpass.getuser()))
    build = build_image(
        ctx.estate.image(name),
        _workspace(ctx),
        no_cache=no_cache,
        progress=lambda line: echo(line, err=True),
        trail=trail,
        alerts=ctx.services.build_alerts(ctx.estate.alerts),
    )
    if as_json:
        echo(build.to_json())
        return
    phases = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in build.phases.items())
    echo(f"{build.reference}")
    echo(f"  size {build.size_bytes / 1e6:.1f} MB ({build.compressed_bytes / 1e6:.1f} MB compressed)")
    echo(f"  steps from cache {build.cached_steps}/{len(build.steps)}; {phases}")
    echo(f"  lockfile {build.lockfile} {build.lockfile_digest}")


@images.command("test")
@click.argument("name")
@pass_ctx
def images_test(ctx: CliContext, name: str) -> None:
    """The image checks on NAME's last build: policy, smoke test, size budget; exit 1 if any fails."""
    from governance.images.lifecycle import BuildRecords, policy_findings
    from governance.images.smoke import smoke_test

    spec = ctx.estate.image(name)
    workspace = _workspace(ctx)
    build = BuildRecords(workspace.root).latest(name)
    errors = [f for f in policy_findings(spec, build) if f.severity == "error"]
    smoke = smoke_test(build.reference, workspace.storage, health_path=spec.health_path)
    size_mb = build.size_bytes / 1e6
    results = [
        ("policy", not errors, "; ".join(f"{f.rule}: {f.message}" for f in errors) or "no errors"),
        ("smoke", smoke.ok, smoke.detail),
        ("size", size_mb <= spec.size_budget_mb, f"{size_mb:.0f} MB of {spec.size_budget_mb:.0f} MB"),
    ]
    echo(build.reference)
    for check, ok, detail in results:
        echo(f"{'ok  ' if ok else 'FAIL'}  {check}: {detail}")
    if not smoke.ok and smoke.logs:
        echo(smoke.logs)
    sys.exit(0 if all(ok for _, ok, _ in results) else 1)


@images.group("registry")
def images_registry() -> None:
    """The loopback OCI registry that images are pushed to."""


@images_registry.command("start")
@pass_ctx
def images_registry_start(ctx: CliContext) -> None:
    """Start the configured loopback registry (storage under the home) unless one answers."""
    from governance.images.registry import start_registry

    workspace = _workspace(ctx)
    pid = start_registry(workspace.registry, ctx.home.root / "registry")
    echo(f"registry {workspace.registry}: " + (f"started (pid {pid})" if pid else "already answering"))


@images_registry.command("stop")
@pass_ctx
def images_registry_stop(ctx: CliContext) -> None:
    """Stop the registry that `registry start` started."""
    from governance.images.registry import stop_registry

    stopped = stop_registry(ctx.home.root / "registry")
    echo("registry stopped" if stopped else "no registry was started from this home")


@images.command("base")
@click.argument("name")
@pass_ctx
def images_base(ctx: CliContext, name: str) -> None:
    """The base image NAME by digest: from the registry when it holds its recipe, else built from
    Debian packages and pushed. Prints the reference; progress goes to stderr."""
    from governance.errors import ConfigError
    from governance.images.bases import ensure_base

    section = ctx.estate.images
    if name not in section.bases:
        known = ", ".join(sorted(section.bases)) or "none"
        raise ConfigError(f"no base image {name!r} in images.bases (known: {known})")
    workspace = _workspace(ctx)
    base = ensure_base(name, section, workspace.storage, progress=lambda line: echo(line, err=True))
    echo(base.reference)


@images.group("engine")
def images_engine() -> None:
    """The Docker-compatible engine (podman's API service) on the builder's storage, for Compose
    and Dagster's DockerRunLauncher (deploy/docker)."""


@images_engine.command("start")
@click.option(
    "--group-id", type=int, default=10001, show_default=True,
    help="The group given the socket: the platform image's user, whose Dagster daemon launches runs.",
)  # fmt: skip
@pass_ctx
def images_engine_start(ctx: CliContext, group_id: int) -> None:
    """Start the engine unless it answers."""
    from governance.images.engine import docker_host, start_engine

    storage = _workspace(ctx).storage
    pid = start_engine(storage, group_id)
    echo(f"engine {docker_host(storage)}: " + (f"started (pid {pid})" if pid else "already answering"))


@images_engine.command("stop")
@pass_ctx
def images_engine_stop(ctx: CliContext) -> None:
    """Stop the engine that `engine start` started."""
    from governance.images.engine import stop_engine

    echo("engine stopped" if stop_engine(_workspace(ctx).storage) else "no engine was started here")


@images_engine.command("env")
@pass_ctx
def images_engine_env(ctx: CliContext) -> None:
    """The engine's client settings as shell exports (DOCKER_HOST, the storage's configuration)."""
    import shlex

    from governance.images.engine import environment

    for name, value in sorted(environment(_workspace(ctx).storage).items()):
        echo(f"export {name}={shlex.quote(value)}")

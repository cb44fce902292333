"""`governance images …`: lockfile consistency and Dockerfile policy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from governance.cli.root import cli


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
        click.echo(json.dumps([finding.as_dict() for finding in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{dockerfile}:{f.line}: {f.severity}: {f.rule}: {f.message}")
        click.echo(f"{len(findings)} finding(s)")
    sys.exit(1 if any(f.severity == "error" for f in findings) else 0)

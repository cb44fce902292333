"""`governance datasets …`: validate, list and check out dataset versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from governance.cli.root import EXIT_INPUT, CliContext, cli, echo, fail, pass_ctx


@cli.group()
def datasets() -> None:
    """Versioned, validated datasets."""


@datasets.command("validate")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@pass_ctx
def datasets_validate(ctx: CliContext, name: str, path: Path) -> None:
    """Run dataset NAME's expectation suite on the file PATH, as it is."""
    from governance.datasets.lifecycle import validate_file
    from governance.datasets.report import render

    spec = ctx.estate.dataset(name)
    report = validate_file(spec, path, ctx.home.gx, ctx.home.locks)
    echo(render(report, path))
    sys.exit(0 if report.success else 1)


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def datasets_list(ctx: CliContext, as_json: bool) -> None:
    """Every governed dataset with its current and past versions."""

    store = ctx.dataset_store()
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
        echo(json.dumps(listing, indent=2))
        return
    for entry in listing:
        current = entry["current"]["md5"] if entry["current"] else "(no version yet)"
        echo(f"{entry['name']}: current {current}, {len(entry['versions'])} version(s)")
        for version in entry["versions"]:
            echo(f"  {version['md5']}  {version['committed_at']}  {version['size']} bytes")


@datasets.command("checkout")
@click.argument("name")
@click.option("--version", "md5", required=True, help="The DVC md5 (or a unique prefix).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write it (default: ./NAME-MD5.csv).",
)
@click.option("--force", is_flag=True, help="Replace an existing file (never a directory).")
@pass_ctx
def datasets_checkout(ctx: CliContext, name: str, md5: str, out: Path | None, force: bool) -> None:
    """Write an older (or the current) version of dataset NAME to a file."""
    import os
    import tempfile

    ctx.estate.dataset(name)
    store = ctx.dataset_store()
    version = store.find(name, md5)
    destination = out or Path(f"{name}-{version.md5}.csv")
    if destination.is_dir():
        fail(f"{destination} is a directory; give a file path with --out", EXIT_INPUT)
    if (destination.exists() or destination.is_symlink()) and not force:
        fail(f"{destination} exists (or is a link); pass --force to replace it", EXIT_INPUT)
    # Written beside the destination and renamed over it: a link there is replaced, never followed,
    # and a failed export leaves no half-written file.
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    except OSError as exc:
        fail(f"cannot write {destination}: {exc.strerror or exc}", EXIT_INPUT)
    os.close(fd)
    try:
        store.export(name, version.md5, Path(partial))
        os.replace(partial, destination)
    finally:
        Path(partial).unlink(missing_ok=True)
    echo(f"{name} {version.md5} ({version.committed_at}) written to {destination}")

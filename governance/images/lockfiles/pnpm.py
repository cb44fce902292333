"""pnpm v9 lockfiles: importers per workspace package, `catalog:` and `workspace:` protocols.

Mirrors what `pnpm install --frozen-lockfile` compares: the set of importers, each importer's
specifiers against its package.json, and the catalog specifiers against pnpm-workspace.yaml.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from governance.images.lockfiles import Mismatch
from governance.images.lockfiles.manifests import read_json, read_yaml, workspace_manifests

DEPENDENCY_TYPES = ("dependencies", "devDependencies", "optionalDependencies")
LOCKFILE_VERSION = "9.0"


def check(root: Path) -> Iterator[Mismatch]:
    lock = read_yaml(root / "pnpm-lock.yaml")
    workspace = (
        read_yaml(root / "pnpm-workspace.yaml") if (root / "pnpm-workspace.yaml").is_file() else {}
    )
    if str(lock.get("lockfileVersion")) != LOCKFILE_VERSION:
        yield Mismatch(
            "pnpm-lock.yaml",
            "lockfileVersion",
            f"is {lock.get('lockfileVersion')!r}; pnpm 9+ needs {LOCKFILE_VERSION!r}",
        )
    catalogs = _workspace_catalogs(workspace)
    yield from _check_catalogs(catalogs, lock.get("catalogs") or {})
    packages = _workspace_packages(root, workspace.get("packages") or [])
    importers: dict[str, Any] = lock.get("importers") or {}
    for path in sorted(set(packages) - set(importers)):
        yield Mismatch(
            f"{path}/package.json", "(importer)", "workspace package is missing from the lockfile"
        )
    for path in sorted(set(importers) - set(packages)):
        yield Mismatch(  # pnpm's frozen install ignores it: a stale entry, not a refusal
            "pnpm-lock.yaml",
            f"importers[{path}]",
            "no longer a workspace package; `pnpm install` drops it from the lockfile",
            blocking=False,
        )
    auto_peers = bool((lock.get("settings") or {}).get("autoInstallPeers"))
    for path in sorted(set(packages) & set(importers)):
        manifest = _with_auto_installed_peers(packages[path]) if auto_peers else packages[path]
        yield from _check_importer(root, path, manifest, importers[path] or {}, catalogs, packages)


def _with_auto_installed_peers(manifest: dict[str, Any]) -> dict[str, Any]:
    """With autoInstallPeers, pnpm locks every peer not declared otherwise as a dependency."""
    declared = {name for kind in DEPENDENCY_TYPES for name in manifest.get(kind) or {}}
    peers = {k: v for k, v in (manifest.get("peerDependencies") or {}).items() if k not in declared}
    return {**manifest, "dependencies": {**peers, **(manifest.get("dependencies") or {})}}


def _check_importer(
    root: Path,
    path: str,
    manifest: dict[str, Any],
    importer: dict[str, Any],
    catalogs: dict[str, dict[str, str]],
    packages: dict[str, dict[str, Any]],
) -> Iterator[Mismatch]:
    where = "package.json" if path == "." else f"{path}/package.json"
    for kind in DEPENDENCY_TYPES:
        wanted: dict[str, str] = manifest.get(kind) or {}
        locked: dict[str, Any] = importer.get(kind) or {}
        for name in sorted(set(wanted) - set(locked)):
            yield Mismatch(where, name, f"{kind} asks {wanted[name]!r} but the lockfile has no entry")
        for name in sorted(set(locked) - set(wanted)):
            yield Mismatch(where, name, f"locked in {kind} but no longer in package.json")
        for name in sorted(set(wanted) & set(locked)):
            spec, entry = wanted[name], locked[name]
            if spec != entry.get("specifier"):
                yield Mismatch(
                    where, name, f"{kind} asks {spec!r}, the lockfile has {entry.get('specifier')!r}"
                )
            elif spec.startswith("catalog:"):
                catalog = spec.removeprefix("catalog:") or "default"
                if name not in catalogs.get(catalog, {}):
                    yield Mismatch(
                        where,
                        name,
                        f"uses {spec!r} but pnpm-workspace.yaml has no {catalog} catalog entry for it",
                    )
            elif spec.startswith("workspace:"):
                yield from _check_link(root, where, path, name, str(entry.get("version", "")), packages)


def _check_link(
    root: Path, where: str, path: str, name: str, version: str, packages: dict[str, dict[str, Any]]
) -> Iterator[Mismatch]:
    """pnpm's frozen install compares specifiers only: a `workspace:` entry locked as something
    else, or linked to the wrong directory, installs as locked. Both are warnings: the build gets
    the wrong package (or none), and `pnpm install` in the workspace relinks it."""
    if not version.startswith("link:"):
        yield Mismatch(
            where, name, f"workspace: dependency locked as {version!r}, not a link", blocking=False
        )
        return
    resolved = (root / path / version.removeprefix("link:")).resolve()
    target = (
        resolved.relative_to(root.resolve()).as_posix()
        if resolved.is_relative_to(root.resolve())
        else None
    )
    linked = packages.get(target) if target is not None else None
    if linked is None or linked.get("name") != name:
        yield Mismatch(
            where,
            name,
            f"workspace link {version} does not lead to the workspace package {name}; a frozen "
            "install links it as locked (run `pnpm install` to relink)",
            blocking=False,
        )


def _check_catalogs(
    catalogs: dict[str, dict[str, str]], locked: dict[str, dict[str, Any]]
) -> Iterator[Mismatch]:
    for catalog, entries in sorted(locked.items()):
        for name, entry in sorted(entries.items()):
            wanted = catalogs.get(catalog, {}).get(name)
            if wanted is None:
                yield Mismatch(
                    "pnpm-workspace.yaml", name, f"locked in the {catalog} catalog but no longer in it"
                )
            elif str(wanted) != str(entry.get("specifier")):
                yield Mismatch(
                    "pnpm-workspace.yaml",
                    name,
                    f"{catalog} catalog asks {wanted!r}, the lockfile has {entry.get('specifier')!r}",
                )


def _workspace_catalogs(workspace: dict[str, Any]) -> dict[str, dict[str, str]]:
    catalogs = {name: dict(entries or {}) for name, entries in (workspace.get("catalogs") or {}).items()}
    if workspace.get("catalog"):
        catalogs["default"] = dict(workspace["catalog"])
    return catalogs


def _workspace_packages(root: Path, patterns: list[str]) -> dict[str, dict[str, Any]]:
    return {
        ".": read_json(root / "package.json"),
        **workspace_manifests(root, patterns, "package.json", read_json),
    }

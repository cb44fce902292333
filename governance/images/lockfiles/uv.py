"""uv workspaces: each member's dependencies and dependency groups against what uv.lock recorded.

`uv sync --locked` refuses when the requirements in a pyproject.toml differ from the ones the lock
was resolved for (`[package.metadata]` per member, `[manifest]` for the workspace). Requirements
are compared as parsed requirements, so `<2,>=1` and `>=1,<2` are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from governance.errors import PermanentError
from governance.images.lockfiles import Mismatch
from governance.images.lockfiles.manifests import read_toml, workspace_glob

Key = tuple[str, frozenset[str], str]  # name, extras, marker


def check(root: Path) -> Iterator[Mismatch]:
    lock = read_toml(root / "uv.lock")
    pyproject = read_toml(root / "pyproject.toml")
    members = _members(root, pyproject)
    manifest = lock.get("manifest") or {}
    locked_members = {canonicalize_name(m) for m in manifest.get("members", [])}
    is_workspace = "workspace" in ((pyproject.get("tool") or {}).get("uv") or {})
    if is_workspace and locked_members != set(members):
        for name in sorted(set(members) - locked_members):
            yield Mismatch(
                f"{members[name][0]}/pyproject.toml", name, "workspace member is missing from uv.lock"
            )
        for name in sorted(locked_members - set(members)):
            yield Mismatch("uv.lock", name, "locked as a workspace member but no longer one")
    if "project" not in pyproject:  # a virtual workspace root keeps its groups in [manifest]
        yield from _compare(
            "pyproject.toml",
            "dependency-groups",
            _groups("pyproject.toml", pyproject),
            _locked_groups(manifest.get("dependency-groups") or {}),
        )
    packages: dict[str, dict[str, Any]] = {
        canonicalize_name(p["name"]): p for p in lock.get("package", [])
    }
    for name, (path, project) in sorted(members.items()):
        where = f"{path}/pyproject.toml" if path != "." else "pyproject.toml"
        metadata = (packages.get(name) or {}).get("metadata") or {}
        yield from _compare(
            where,
            "dependencies",
            _requirements(where, project.get("project", {}).get("dependencies", [])),
            _locked(metadata.get("requires-dist", [])),
        )
        yield from _compare(
            where,
            "dependency-groups",
            _groups(where, project),
            _locked_groups(metadata.get("requires-dev") or {}),
        )


def _compare(
    where: str, what: str, wanted: dict[Key, SpecifierSet], locked: dict[Key, SpecifierSet]
) -> Iterator[Mismatch]:
    for key in sorted(set(wanted) - set(locked)):
        yield Mismatch(
            where,
            _show(key),
            f"{what} asks {_range(wanted[key])} but uv.lock has no such requirement",
        )
    for key in sorted(set(locked) - set(wanted)):
        yield Mismatch(where, _show(key), f"locked in {what} but no longer in pyproject.toml")
    for key in sorted(set(wanted) & set(locked)):
        if wanted[key] != locked[key]:
            yield Mismatch(
                where,
                _show(key),
                f"{what} asks {_range(wanted[key])}, uv.lock has {_range(locked[key])}",
            )


def _range(specifier: SpecifierSet) -> str:
    return str(specifier) or "any version"


def _members(root: Path, pyproject: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    members: dict[str, tuple[str, dict[str, Any]]] = {}
    if "project" in pyproject:
        members[canonicalize_name(pyproject["project"]["name"])] = (".", pyproject)
    patterns = ((pyproject.get("tool") or {}).get("uv") or {}).get("workspace", {}).get("members", [])
    for pattern in patterns if isinstance(patterns, list) else [patterns]:
        for manifest in workspace_glob(root, pattern, "pyproject.toml"):
            project = read_toml(manifest)
            if "project" in project:
                members[canonicalize_name(project["project"]["name"])] = (
                    manifest.parent.relative_to(root).as_posix(),
                    project,
                )
    return members


def _groups(where: str, pyproject: dict[str, Any]) -> dict[Key, SpecifierSet]:
    found: dict[Key, SpecifierSet] = {}
    for group, entries in (pyproject.get("dependency-groups") or {}).items():
        strings = [e for e in entries if isinstance(e, str)]  # include-group tables are expanded by uv
        found.update(
            {
                (f"{group}:{k[0]}", k[1], k[2]): v
                for k, v in _requirements(f"{where}: dependency-groups.{group}", strings).items()
            }
        )
    return found


def _locked_groups(groups: dict[str, list[dict[str, Any]]]) -> dict[Key, SpecifierSet]:
    found: dict[Key, SpecifierSet] = {}
    for group, entries in groups.items():
        found.update({(f"{group}:{k[0]}", k[1], k[2]): v for k, v in _locked(entries).items()})
    return found


def _requirements(where: str, strings: list[str]) -> dict[Key, SpecifierSet]:
    found: dict[Key, SpecifierSet] = {}
    for text in strings:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise PermanentError(f"{where}: invalid requirement {text!r}: {exc}") from None
        key = (
            canonicalize_name(requirement.name),
            frozenset(requirement.extras),
            str(requirement.marker or ""),
        )
        found[key] = requirement.specifier
    return found


def _locked(entries: list[dict[str, Any]]) -> dict[Key, SpecifierSet]:
    return {
        (
            canonicalize_name(e["name"]),
            frozenset(e.get("extras", [])),
            str(e.get("marker", "")),
        ): SpecifierSet(e.get("specifier", ""))
        for e in entries
    }


def _show(key: Key) -> str:
    name, extras, marker = key
    shown = name + (f"[{','.join(sorted(extras))}]" if extras else "")
    return shown + (f" ; {marker}" if marker else "")

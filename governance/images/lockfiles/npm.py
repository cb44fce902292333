"""npm lockfiles (v2/v3 `package-lock.json`): each workspace's manifest against its `packages` entry,
which is what `npm ci` compares before it refuses with "package.json and package-lock.json ... are
not in sync"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from governance.images.lockfiles import Mismatch
from governance.images.lockfiles.manifests import read_json, workspace_manifests

DEPENDENCY_TYPES = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


def check(root: Path) -> Iterator[Mismatch]:
    lock = read_json(root / "package-lock.json")
    if int(lock.get("lockfileVersion", 1)) < 2:
        yield Mismatch(
            "package-lock.json",
            "lockfileVersion",
            "v1 lockfiles carry no manifest copy; regenerate with npm 7+",
        )
        return
    manifest = read_json(root / "package.json")
    locked: dict[str, Any] = lock.get("packages") or {}
    patterns = manifest.get("workspaces") or []
    workspaces = {"": manifest, **workspace_manifests(root, patterns, "package.json", read_json)}
    for key, wanted in workspaces.items():
        where = f"{key}/package.json" if key else "package.json"
        entry = locked.get(key)
        if entry is None:
            yield Mismatch(where, "(workspace)", "missing from package-lock.json")
            continue
        for kind in DEPENDENCY_TYPES:
            asked: dict[str, str] = wanted.get(kind) or {}
            recorded: dict[str, str] = entry.get(kind) or {}
            for name in sorted(set(asked) | set(recorded)):
                if asked.get(name) != recorded.get(name):
                    yield Mismatch(
                        where,
                        name,
                        f"{kind} asks {asked.get(name)!r}, package-lock.json has {recorded.get(name)!r}",
                    )

"""Reading manifests and lockfiles: one place for the formats and for workspace globs."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from governance.errors import PermanentError
from governance.yamlsafe import parse_yaml


def read_json(path: Path) -> dict[str, Any]:
    return _read(path, json.loads)


def read_yaml(path: Path) -> dict[str, Any]:
    return _read(path, lambda text: parse_yaml(text, str(path), "YAML file"))


def read_toml(path: Path) -> dict[str, Any]:
    return _read(path, tomllib.loads)


def workspace_manifests(
    root: Path, patterns: list[str], filename: str, read: Callable[[Path], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each directory matching a workspace glob that holds `filename`, by its posix path from root."""
    found: dict[str, dict[str, Any]] = {}
    for pattern in patterns:
        if isinstance(pattern, str) and pattern.startswith("!"):
            continue
        for manifest in workspace_glob(root, pattern, filename):
            found[manifest.parent.relative_to(root).as_posix()] = read(manifest)
    return found


def workspace_glob(root: Path, pattern: object, filename: str) -> list[Path]:
    """The `filename`s under the directories a workspace pattern names. A pattern must be a
    relative glob that stays inside the workspace: anything else is refused, never followed."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise PermanentError(
            f"{root}: a workspace pattern must be a non-empty string, not {pattern!r:.80}"
        )
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise PermanentError(f"{root}: workspace pattern {pattern!r:.200} leaves the workspace")
    try:
        return sorted(root.glob(f"{pattern.rstrip('/')}/{filename}"))
    except (OSError, ValueError, NotImplementedError) as exc:
        raise PermanentError(f"{root}: workspace pattern {pattern!r:.200} is unusable ({exc})") from None


def _read(path: Path, parse: Callable[[str], Any]) -> dict[str, Any]:
    try:
        data = parse(path.read_text(encoding="utf-8-sig"))
    except Exception as exc:  # each format raises its own error type; all mean "unreadable"
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PermanentError(f"{path}: unreadable: {first_line}") from None
    if not isinstance(data, dict):
        raise PermanentError(f"{path}: expected a mapping at the top level")
    return data

"""pip-tools style locks: every requirement of `requirements.in` pinned in `requirements.txt`, at a
version its specifier allows, and nothing pinned for a top-level requirement that was removed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from governance.errors import PermanentError
from governance.images.lockfiles import Mismatch

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def check(root: Path) -> Iterator[Mismatch]:
    wanted = _requirements(root / "requirements.in")
    pinned, direct = _pins(root / "requirements.txt")
    for name, requirement in sorted(wanted.items()):
        version = pinned.get(name)
        if version is None:
            yield Mismatch("requirements.in", name, "not pinned in requirements.txt")
        elif requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            yield Mismatch(
                "requirements.in", name, f"asks {requirement.specifier}, requirements.txt pins {version}"
            )
    for name in sorted(direct - set(wanted)):
        yield Mismatch("requirements.txt", name, "pinned via requirements.in but no longer in it")


def _requirements(path: Path) -> dict[str, Requirement]:
    found: dict[str, Requirement] = {}
    for line in _lines(path):
        if line.startswith("-"):
            continue  # options and nested files (-r, -c) are out of scope here
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise PermanentError(f"{path}: invalid requirement {line!r}: {exc}") from None
        found[canonicalize_name(requirement.name)] = requirement
    return found


def _pins(path: Path) -> tuple[dict[str, Version], set[str]]:
    pins: dict[str, Version] = {}
    direct: set[str] = set()
    current = None
    for raw in _raw_lines(path):
        match = _PIN.match(raw)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = Version(match[3])
        elif current and re.search(
            r"(#\s+via\s+-r\s+requirements\.in|^\s+#\s+-r\s+requirements\.in)", raw
        ):
            direct.add(current)
    return pins, direct


def _raw_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError as exc:
        raise PermanentError(f"{path}: unreadable: {exc}") from None


def _lines(path: Path) -> list[str]:
    stripped = (line.split("#", 1)[0].strip() for line in _raw_lines(path))
    return [line for line in stripped if line]

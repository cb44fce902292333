"""Say exactly what a frozen install (`pnpm install --frozen-lockfile`, `uv sync --locked`) would
refuse, before a build spends minutes finding out; and, apart, what it would accept although it is
wrong (a workspace link to a directory that is not the package it names, a stale importer): a
warning, never a mismatch, since the install goes through (the differential tests hold the check
to that)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from governance.errors import PermanentError


@dataclass(frozen=True)
class Mismatch:
    manifest: str
    package: str
    problem: str
    blocking: bool = True  # the frozen install refuses it (False: it installs, but wrongly)

    def __str__(self) -> str:
        return f"{self.manifest}: {self.package}: {self.problem}"


# What brings a lockfile back in line with its manifests without installing anything.
_RELOCK = {
    "pnpm": "pnpm install --lockfile-only",
    "npm": "npm install --package-lock-only",
    "uv": "uv lock",
    "pip-tools": "pip-compile --generate-hashes requirements.in",
}


@dataclass(frozen=True)
class LockfileReport:
    kind: str
    lockfile: Path
    mismatches: tuple[Mismatch, ...]
    warnings: tuple[Mismatch, ...] = ()

    @property
    def consistent(self) -> bool:
        return not self.mismatches

    @property
    def fix(self) -> str:
        """The command that updates the lockfile, and where to run it (a workspace's root)."""
        return f"run `{_RELOCK[self.kind]}` in {self.lockfile.parent}, then commit {self.lockfile.name}"


def check_lockfile(directory: Path) -> LockfileReport:
    """Detect the package manager by its lockfile and check every manifest against it."""
    from governance.images.lockfiles import npm, piptools, pnpm, uv

    checkers = {
        "pnpm-lock.yaml": ("pnpm", pnpm.check),
        "package-lock.json": ("npm", npm.check),
        "uv.lock": ("uv", uv.check),
        "requirements.txt": ("pip-tools", piptools.check),
    }
    for name, (kind, check) in checkers.items():
        if (directory / name).is_file():
            try:
                found = tuple(check(directory))
            except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
                # A file that parsed but is not shaped like its format (a list where a mapping
                # belongs, a missing section): unusable input, named as such.
                raise PermanentError(
                    f"{directory / name}: not a {kind} lockfile of a known shape "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            return LockfileReport(
                kind,
                directory / name,
                tuple(m for m in found if m.blocking),
                tuple(m for m in found if not m.blocking),
            )
    raise PermanentError(f"{directory}: no lockfile found (looked for {', '.join(checkers)})")

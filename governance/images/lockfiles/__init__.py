"""Say exactly what a frozen install (`pnpm install --frozen-lockfile`, `uv sync --locked`) would
refuse, before a build spends minutes finding out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from governance.errors import PermanentError


@dataclass(frozen=True)
class Mismatch:
    manifest: str
    package: str
    problem: str

    def __str__(self) -> str:
        return f"{self.manifest}: {self.package}: {self.problem}"


@dataclass(frozen=True)
class LockfileReport:
    kind: str
    lockfile: Path
    mismatches: tuple[Mismatch, ...]

    @property
    def consistent(self) -> bool:
        return not self.mismatches


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
                mismatches = tuple(check(directory))
            except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
                # A file that parsed but is not shaped like its format (a list where a mapping
                # belongs, a missing section): unusable input, named as such.
                raise PermanentError(
                    f"{directory / name}: not a {kind} lockfile of a known shape "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            return LockfileReport(kind, directory / name, mismatches)
    raise PermanentError(f"{directory}: no lockfile found (looked for {', '.join(checkers)})")

"""Where the platform keeps its state.

Everything a run writes (Dagster instance, MLflow store, DVC repository and remote, GX context,
lineage, audit log) lives under one directory, so two homes never interfere and each test can run in
a temporary one. For runs in separate containers, what they share moves out of it: the stores
(audit log, lineage outbox, release state, alert ledger, locks) to the Postgres database of
GOVERNANCE_DATABASE_URL, and the files (the datasets' git and DVC remotes, MLflow's artifacts, the
GX context with its validation results and Data Docs) to the volume of GOVERNANCE_SHARED_DIR.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from governance.locks import Locks

HOME_ENV = "GOVERNANCE_HOME"
DATABASE_URL_ENV = "GOVERNANCE_DATABASE_URL"
SHARED_DIR_ENV = "GOVERNANCE_SHARED_DIR"
DEFAULT_HOME = ".governance"


@dataclass(frozen=True)
class GovernanceHome:
    root: Path
    database_url: str | None = None  # postgresql://…: the shared stores; None: files under `root`
    shared_dir: Path | None = None  # the volume every run mounts; None: its files under `root`

    @classmethod
    def resolve(
        cls, explicit: str | None = None, environ: Mapping[str, str] = os.environ
    ) -> GovernanceHome:
        """An explicit path wins, then `$GOVERNANCE_HOME`, then `.governance/` in the working dir;
        the shared database is `$GOVERNANCE_DATABASE_URL`, refused unless it is Postgres."""
        raw = explicit or environ.get(HOME_ENV) or DEFAULT_HOME
        url = environ.get(DATABASE_URL_ENV, "").strip() or None
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            from governance.errors import ConfigError

            raise ConfigError(f"{DATABASE_URL_ENV} must be a postgresql://… URL")
        shared = environ.get(SHARED_DIR_ENV, "").strip()
        return cls(Path(raw).expanduser().resolve(), url, Path(shared).resolve() if shared else None)

    @property
    def locks(self) -> Locks:
        return Locks(self.database_url)

    def dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def datasets_repo(self) -> Path:
        """The DVC + git repository whose history is the datasets' version history."""
        return self.dir("datasets")

    @property
    def dvc_remote(self) -> Path:
        return self._shared("dvc-remote")

    @property
    def datasets_git_remote(self) -> Path | None:
        """The bare repository every run's working copy of the datasets pushes to, when shared."""
        return self.shared_dir / "datasets.git" if self.shared_dir else None

    @property
    def landing(self) -> Path:
        """Raw files as ingested, before cleaning and validation."""
        return self.dir("landing")

    @property
    def gx(self) -> Path:
        """The GX context: validation results and Data Docs, which checks link to."""
        return self._shared("gx")

    def _shared(self, name: str) -> Path:
        path = (self.shared_dir or self.root) / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def mlflow(self) -> Path:
        return self.dir("mlflow")

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.db"

    @property
    def lineage(self) -> Path:
        return self.dir("lineage")


def disk_usage(root: Path) -> int:
    """Bytes of the files under `root` (symlinks not followed), not counting mounts inside it: a
    running container's root file system is its image's layers, counted once already."""
    device = root.stat().st_dev
    total = 0
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        subdirectories[:] = [d for d in subdirectories if _device_of(here / d) in (device, None)]
        for name in files:
            path = here / name
            try:
                if not path.is_symlink():
                    total += path.stat().st_size
            except OSError:  # removed while counting
                continue
    return total


def _device_of(path: Path) -> int | None:
    try:
        return path.lstat().st_dev
    except OSError:
        return None

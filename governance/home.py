"""Where the platform keeps its state.

Everything a run writes (Dagster instance, MLflow store, DVC repository and remote, GX context,
lineage, audit log) lives under one directory, so two homes never interfere and each test can run in
a temporary one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "GOVERNANCE_HOME"
DEFAULT_HOME = ".governance"


@dataclass(frozen=True)
class GovernanceHome:
    root: Path

    @classmethod
    def resolve(
        cls, explicit: str | None = None, environ: Mapping[str, str] = os.environ
    ) -> GovernanceHome:
        """An explicit path wins, then `$GOVERNANCE_HOME`, then `.governance/` in the working dir."""
        raw = explicit or environ.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(raw).expanduser().resolve())

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
        return self.dir("dvc-remote")

    @property
    def landing(self) -> Path:
        """Raw files as ingested, before cleaning and validation."""
        return self.dir("landing")

    @property
    def gx(self) -> Path:
        return self.dir("gx")

    @property
    def mlflow(self) -> Path:
        return self.dir("mlflow")

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.db"

    @property
    def lineage(self) -> Path:
        return self.dir("lineage")

"""Resources: each external system behind a ConfigurableResource with an embedded local default.

Paths resolve at run time from `GOVERNANCE_HOME` (never at import), so one code location serves any
home and tests run each in a temporary one.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from governance.datasets.versioning import DatasetStore
from governance.home import GovernanceHome
from governance.models.registry import ModelRegistry
from governance.models.settings import DEFAULT_UI_URL, mlflow_settings


class DatasetStoreResource(dg.ConfigurableResource):  # type: ignore[misc]
    """DVC-versioned datasets; by default the repository and its remote live under the home."""

    home: str | None = None
    remote_url: str | None = None  # e.g. s3://bucket/datasets at scale

    def _home(self) -> GovernanceHome:
        return GovernanceHome.resolve(self.home)

    def store(self) -> DatasetStore:
        home = self._home()
        return DatasetStore(home.datasets_repo, self.remote_url or str(home.dvc_remote))

    def landing(self) -> Path:
        return self._home().landing


class ExpectationsResource(dg.ConfigurableResource):  # type: ignore[misc]
    """A Great Expectations file context; Data Docs are built next to it."""

    context_dir: str | None = None

    def directory(self) -> Path:
        if self.context_dir:
            return Path(self.context_dir)
        return GovernanceHome.resolve().gx


class MlflowResource(dg.ConfigurableResource):  # type: ignore[misc]
    """MLflow tracking and registry: by default a sqlite store with local artifacts under the home;
    any tracking server (`http://…`) by config."""

    tracking_uri: str | None = None
    ui_url: str | None = DEFAULT_UI_URL
    request_timeout_s: int = 10
    attempts: int = 4

    def registry(self) -> ModelRegistry:
        settings = mlflow_settings(
            GovernanceHome.resolve(),
            self.tracking_uri,
            ui_url=self.ui_url,
            request_timeout_s=self.request_timeout_s,
            attempts=self.attempts,
        )
        return ModelRegistry(settings)

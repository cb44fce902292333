"""Resources: each external system behind a ConfigurableResource with an embedded local default.

Paths resolve at run time from `GOVERNANCE_HOME` (never at import), so one code location serves any
home and tests run each in a temporary one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from governance.audit.store import AuditLog, AuditTrail, open_audit_log
from governance.config import ImagesSection
from governance.datasets.versioning import DatasetStore
from governance.home import GovernanceHome
from governance.lineage.emitter import LineageEmitter
from governance.lineage.outbox import Outbox
from governance.lineage.transport import HttpTransport, transport_from_environment
from governance.models.registry import ModelRegistry
from governance.models.settings import DEFAULT_UI_URL, mlflow_settings

if TYPE_CHECKING:
    from governance.images.lifecycle import ImageWorkspace


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


class LineageResource(dg.ConfigurableResource):  # type: ignore[misc]
    """OpenLineage behind a durable outbox under the home. Without `url`, the standard OpenLineage
    configuration applies (`OPENLINEAGE_URL`, `openlineage.yml`), else a JSON-lines file."""

    url: str | None = None
    api_key: str | None = None  # dg.EnvVar("OPENLINEAGE_API_KEY") in production

    def outbox(self) -> Outbox:
        """Every event recorded, delivered or not."""
        return Outbox(GovernanceHome.resolve().lineage / "outbox.db")

    def emitter(self) -> LineageEmitter:
        if self.url:
            return LineageEmitter(self.outbox(), HttpTransport(self.url, api_key=self.api_key))
        default = GovernanceHome.resolve().lineage / "events.jsonl"
        return LineageEmitter(self.outbox(), transport_from_environment(default))

    def graph_path(self) -> Path:
        return GovernanceHome.resolve().lineage / "lineage.svg"

    def refresh_graph(self) -> Path:
        from governance.lineage.graph import render

        return render(list(self.outbox().events()), "svg", self.graph_path())


class AuditResource(dg.ConfigurableResource):  # type: ignore[misc]
    """The audit log: sqlite at `$GOVERNANCE_HOME/audit.db`, or Postgres with
    `url=dg.EnvVar("GOVERNANCE_AUDIT_URL")` (the URL holds a password: never a plain string)."""

    url: str | None = None

    def log(self) -> AuditLog:
        return open_audit_log(GovernanceHome.resolve().audit_db, self.url)

    def trail(self, run_id: str) -> AuditTrail:
        return AuditTrail(self.log(), f"dagster:{run_id}")


class ImagesResource(dg.ConfigurableResource):  # type: ignore[misc]
    """The image builder, layer cache and registry. By default (from `governance.yaml`): buildah
    with storage under the home and the loopback registry; `registry`/`storage` override them."""

    registry: str | None = None
    storage: str | None = None

    def workspace(self, section: ImagesSection) -> ImageWorkspace:
        from governance.images.lifecycle import ImageWorkspace

        return ImageWorkspace.resolve(
            section, GovernanceHome.resolve(), registry=self.registry, storage=self.storage
        )

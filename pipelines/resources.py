"""Resources: each external system behind a ConfigurableResource with an embedded local default.

Paths resolve at run time from `GOVERNANCE_HOME` (never at import), so one code location serves any
home and tests run each in a temporary one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from governance.actors import dagster_run
from governance.services import Services, Settings

if TYPE_CHECKING:
    from governance.audit.store import AuditLog, AuditTrail
    from governance.config import AlertsSection, ImagesSection
    from governance.datasets.versioning import DatasetStore
    from governance.images.lifecycle import BuildAlerts, ImageWorkspace
    from governance.lineage.emitter import LineageEmitter
    from governance.lineage.outbox import Outbox
    from governance.models.registry import ModelRegistry
    from governance.notify.alerts import Alerts
    from governance.site import Site


class _ServicesResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # its value is itself
    """A resource is a shell over the composition root: its config fields are explicit settings
    (the strongest level of the one precedence), and unset ones defer to the environment."""

    def explicit(self) -> dict[str, Any]:
        return {}

    def services(self) -> Services:
        return compose(self)

    def site(self) -> Site:
        """Where metadata links point: the platform's pages over HTTP."""
        return self.services().site()


def compose(*resources: _ServicesResource) -> Services:
    """One `Services` from the explicit settings of several resources (a release uses four)."""
    explicit: dict[str, Any] = {}
    for resource in resources:
        explicit.update({k: v for k, v in resource.explicit().items() if v is not None})
    return Services(Settings(**explicit))


class DatasetStoreResource(_ServicesResource):
    """DVC-versioned datasets; by default the repository and its remote live under the home."""

    home: str | None = None
    remote_url: str | None = None  # e.g. s3://bucket/datasets at scale
    git_remote: str | None = None  # the history's shared remote, when runs are containers

    def explicit(self) -> dict[str, Any]:
        return {"home": self.home, "dvc_remote": self.remote_url, "datasets_git_remote": self.git_remote}

    def store(self) -> DatasetStore:
        return self.services().dataset_store()

    def landing(self) -> Path:
        return self.services().home.landing


class ExpectationsResource(_ServicesResource):
    """A Great Expectations file context; Data Docs are built next to it."""

    context_dir: str | None = None

    def directory(self) -> Path:
        if self.context_dir:
            return Path(self.context_dir)
        return self.services().home.gx


class MlflowResource(_ServicesResource):
    """MLflow tracking and registry: by default a sqlite store with local artifacts under the home;
    any tracking server (`http://…`) by config or `MLFLOW_TRACKING_URI`."""

    tracking_uri: str | None = None
    ui_url: str | None = None  # the MLflow UI links point to (or $GOVERNANCE_MLFLOW_UI_URL)
    request_timeout_s: int = 10
    attempts: int = 4

    def explicit(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "mlflow_ui_url": self.ui_url,
            "mlflow_request_timeout_s": self.request_timeout_s,
            "mlflow_attempts": self.attempts,
        }

    def registry(self) -> ModelRegistry:
        return self.services().registry()


class LineageResource(_ServicesResource):
    """OpenLineage behind a durable outbox under the home. Without `url`, the standard OpenLineage
    configuration applies (`OPENLINEAGE_URL`, `openlineage.yml`), else a JSON-lines file."""

    url: str | None = None
    api_key: str | None = None  # dg.EnvVar("OPENLINEAGE_API_KEY") in production

    def explicit(self) -> dict[str, Any]:
        return {"lineage_url": self.url, "lineage_api_key": self.api_key}

    def outbox(self) -> Outbox:
        """Every event recorded, delivered or not."""
        return self.services().outbox()

    def emitter(self) -> LineageEmitter:
        return self.services().lineage_emitter()

    def graph_path(self) -> Path:
        return self.services().home.lineage / "lineage.svg"

    def graph_link(self) -> dg.MetadataValue:
        return dg.MetadataValue.url(self.site().page_url("lineage/lineage.svg"))

    def explorer_link(self) -> dg.MetadataValue:
        return dg.MetadataValue.url(self.site().page_url("lineage/explorer.html"))

    def refresh_graph(self) -> Path:
        from governance.lineage.graph import render

        return render(list(self.outbox().events()), "svg", self.graph_path())


class AuditResource(_ServicesResource):
    """The audit log: sqlite at `$GOVERNANCE_HOME/audit.db`, or Postgres with `GOVERNANCE_AUDIT_URL`
    (or `url=dg.EnvVar("GOVERNANCE_AUDIT_URL")`: the URL holds a password, never a plain string)."""

    url: str | None = None

    def explicit(self) -> dict[str, Any]:
        return {"audit_url": self.url}

    def log(self) -> AuditLog:
        return self.services().audit_log()

    def trail(self, run_id: str) -> AuditTrail:
        return self.services().trail(dagster_run(run_id))


class ImagesResource(_ServicesResource):
    """The image builder, layer cache and registry. By default (from `governance.yaml`): buildah
    with storage under the home and the loopback registry; `registry`/`storage` override them."""

    registry: str | None = None
    storage: str | None = None

    def explicit(self) -> dict[str, Any]:
        return {"image_registry": self.registry, "image_storage": self.storage}

    def workspace(self, section: ImagesSection) -> ImageWorkspace:
        return self.services().image_workspace(section)


class AlertsResource(_ServicesResource):
    """Alerts through the one notifier (Slack with `GOVERNANCE_SLACK_WEBHOOK_URL`), linking to runs on
    the webserver at `dagster_url` (or `GOVERNANCE_DAGSTER_URL`)."""

    dagster_url: str | None = None

    def explicit(self) -> dict[str, Any]:
        return {"dagster_url": self.dagster_url}

    def alerts(self, section: AlertsSection) -> Alerts:
        return self.services().alerts(section)

    def for_build(self, section: AlertsSection, run_id: str) -> BuildAlerts:
        return self.services().build_alerts(section, run_id)

    def run_link(self, run_id: str) -> str:
        return self.services().run_link(run_id)

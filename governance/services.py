"""The composition root: every service the CLI and the Dagster resources use, built in one place
from one precedence of settings, so a setting can never mean two things.

Precedence, for each setting: an explicit value (a CLI flag, a resource's config), then the
environment variable, then `governance.yaml` where it has a key, then the embedded default under
the home. The README's settings table lists each one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from governance.home import GovernanceHome

if TYPE_CHECKING:
    from governance.audit.store import AuditLog, AuditTrail
    from governance.config import AlertsSection, Estate, ImagesSection, ReleaseSpec
    from governance.datasets.versioning import DatasetStore
    from governance.images.lifecycle import BuildAlerts, ImageWorkspace
    from governance.lineage.emitter import LineageEmitter
    from governance.lineage.outbox import Outbox
    from governance.lineage.transport import Transport
    from governance.models.registry import ModelRegistry
    from governance.notify.alerts import Alerts
    from governance.notify.slack import SlackNotifier
    from governance.releases.controller import Controller
    from governance.releases.target import Target
    from governance.site import Site

AUDIT_URL_ENV = "GOVERNANCE_AUDIT_URL"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
DVC_REMOTE_ENV = "GOVERNANCE_DVC_REMOTE"
DATASETS_GIT_REMOTE_ENV = "GOVERNANCE_DATASETS_GIT_REMOTE"
CLI_WORKER_ENV = "GOVERNANCE_CLI_WORKER"
DAGSTER_URL_ENV = "GOVERNANCE_DAGSTER_URL"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
SITE_URL_ENV = "GOVERNANCE_SITE_URL"
MLFLOW_UI_URL_ENV = "GOVERNANCE_MLFLOW_UI_URL"


@dataclass(frozen=True)
class Settings:
    """Explicit values (flags, resource config); None defers to the environment, then the default."""

    home: str | None = None
    audit_url: str | None = None
    tracking_uri: str | None = None
    mlflow_ui_url: str | None = None
    mlflow_request_timeout_s: int = 10
    mlflow_attempts: int = 4
    dvc_remote: str | None = None
    datasets_git_remote: str | None = None
    lineage_url: str | None = None
    lineage_api_key: str | None = None
    image_registry: str | None = None
    image_storage: str | None = None
    dagster_url: str | None = None
    site_url: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, compare=False)

    def pick(self, explicit: str | None, variable: str) -> str | None:
        return explicit or self.environ.get(variable) or None

    def cli_worker(self) -> bool:
        """Whether the CLI hands commands to its resident worker (`auto`, the default) or not (`off`)."""
        value = self.environ.get(CLI_WORKER_ENV, "auto").strip().lower() or "auto"
        if value not in ("auto", "off"):
            from governance.errors import PermanentError

            raise PermanentError(f"{CLI_WORKER_ENV} must be auto or off, not {value!r}")
        return value == "auto"

    def runtime_dir(self) -> Path:
        """This user's directory for sockets: $XDG_RUNTIME_DIR, else the temporary directory."""
        import tempfile

        base = self.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        return Path(base) / f"governance-{os.getuid()}"


class Services:
    """Builds each service when asked (a fresh connection per call, as the callers expect); the CLI
    context and the Dagster resources are shells over this class. The environment is read here and
    nowhere else: the CLI's options carry no `envvar` of their own."""

    def __init__(self, settings: Settings = Settings()) -> None:
        self.settings = settings
        self.home = GovernanceHome.resolve(settings.home, settings.environ)

    def audit_log(self) -> AuditLog:
        from governance.audit.store import open_audit_log

        url = self.settings.pick(self.settings.audit_url, AUDIT_URL_ENV) or self.home.database_url
        return open_audit_log(self.home.audit_db, url)

    def trail(self, actor: str) -> AuditTrail:
        from governance.audit.store import AuditTrail

        return AuditTrail(self.audit_log(), actor)

    def registry(self) -> ModelRegistry:
        from governance.models.registry import ModelRegistry
        from governance.models.settings import DEFAULT_UI_URL, mlflow_settings

        s = self.settings
        return ModelRegistry(
            mlflow_settings(
                self.home,
                s.pick(s.tracking_uri, TRACKING_URI_ENV),
                ui_url=s.pick(s.mlflow_ui_url, MLFLOW_UI_URL_ENV) or DEFAULT_UI_URL,
                request_timeout_s=s.mlflow_request_timeout_s,
                attempts=s.mlflow_attempts,
            )
        )

    def dataset_store(self) -> DatasetStore:
        from governance.datasets.versioning import DatasetStore

        s = self.settings
        remote = s.pick(s.dvc_remote, DVC_REMOTE_ENV)
        shared = self.home.datasets_git_remote
        git_remote = s.pick(s.datasets_git_remote, DATASETS_GIT_REMOTE_ENV) or (
            str(shared) if shared else None
        )
        return DatasetStore(
            self.home.datasets_repo, remote or str(self.home.dvc_remote), self.home.locks, git_remote
        )

    def outbox(self) -> Outbox:
        from governance.lineage.outbox import PostgresOutbox, SqliteOutbox

        if self.home.database_url:
            return PostgresOutbox(self.home.database_url)
        return SqliteOutbox(self.home.lineage / "outbox.db")

    def lineage_transport(self) -> Transport:
        from governance.lineage.transport import HttpTransport, transport_from_environment

        if self.settings.lineage_url:
            return HttpTransport(self.settings.lineage_url, api_key=self.settings.lineage_api_key)
        return transport_from_environment(self.home.lineage / "events.jsonl", self.settings.environ)

    def lineage_emitter(self) -> LineageEmitter:
        from governance.lineage.emitter import LineageEmitter

        return LineageEmitter(self.outbox(), self.lineage_transport())

    def image_workspace(self, section: ImagesSection) -> ImageWorkspace:
        from governance.images.lifecycle import ImageWorkspace

        s = self.settings
        return ImageWorkspace.resolve(
            section,
            self.home,
            registry=s.image_registry,
            storage=s.image_storage,
            environ=s.environ,
        )

    def dagster_url(self) -> str:
        """The Dagster webserver: where runs are launched from CI and what alerts link to."""
        return self.settings.pick(self.settings.dagster_url, DAGSTER_URL_ENV) or DEFAULT_DAGSTER_URL

    def site(self) -> Site:
        """The platform's pages on loopback, where every metadata link points."""
        from governance.site import DEFAULT_SITE_URL, Site
        from governance.site_vendor import Vendor

        url = self.settings.pick(self.settings.site_url, SITE_URL_ENV) or DEFAULT_SITE_URL
        environ = self.settings.environ
        cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "governance"
        registry = environ.get("NPM_CONFIG_REGISTRY") or "https://registry.npmjs.org"
        vendor = Vendor(cache / "site-vendor", registry)
        pages = {"lineage/explorer.html": self._explorer, "lineage/lineage.svg": self._graph}
        return Site(url, self.home, pages, vendor)

    def _explorer(self) -> bytes:
        from governance.lineage.explorer import render_explorer

        return render_explorer(self.outbox().events(), self.audit_log().records()).encode()

    def _graph(self) -> bytes:
        from governance.lineage.graph import draw

        return draw(self.outbox().events())

    def run_link(self, run_id: str) -> str:
        return f"{self.dagster_url().rstrip('/')}/runs/{run_id}"

    def alerts(self, section: AlertsSection) -> Alerts:
        from governance.notify.alerts import Alerts

        ledger = self.home.root / "alerts.db"
        return Alerts(self.notifier(), ledger, section.dedup_window_s, self.home.database_url)

    def build_alerts(self, section: AlertsSection, run_id: str | None = None) -> BuildAlerts:
        from governance.images.lifecycle import BuildAlerts

        link = self.run_link(run_id) if run_id else None
        alerts = self.alerts(section)
        return BuildAlerts(alerts, section.slow_build_factor, section.slow_build_history, link)

    def notifier(self) -> SlackNotifier:
        from governance.notify.slack import SlackNotifier

        return SlackNotifier.from_environment(self.settings.environ)

    def release_target(self, spec: ReleaseSpec, estate: Estate) -> Target:
        from governance.releases.lifecycle import make_target

        storage = self.image_workspace(estate.images).storage
        return make_target(spec, estate, self.home, storage, self.registry())

    def release_controller(self, spec: ReleaseSpec, estate: Estate, actor: str) -> Controller:
        from governance.releases.lifecycle import make_controller, make_target

        registry = self.registry()  # one registry for the target and the champion alias
        storage = self.image_workspace(estate.images).storage
        target = make_target(spec, estate, self.home, storage, registry)
        trail = self.trail(actor)
        return make_controller(spec, self.home, target, registry, trail, self.alerts(estate.alerts))

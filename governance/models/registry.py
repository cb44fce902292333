"""MLflow tracking and registry behind one small class.

Four MLflow behaviours are tamed here:
- its HTTP client retries for minutes by default; the platform bounds each request and retries with
  its own backoff, so an unreachable server is a clear, quick TransientError;
- sqlite without a busy timeout raises "database is locked" under concurrent writers (mlflow#6490);
- version numbers can race on creation (mlflow#22635): a registration is retried, and made
  idempotent with a registration id tag, so a retry never yields a second version;
- a dataset's row is shared by every run of the experiment that logs it, and the store reads then
  inserts it: two trainings on the same data at once lose a unique-constraint race, so a logged
  input goes through `call` too (a retry finds the row and links it).
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import PermanentError
from governance.locks import file_lock
from governance.redaction import redact_url
from governance.retry import Backoff, with_retries

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

REGISTRATION_TAG = "governance.registration_id"
_TRANSIENT_MARKERS = (
    "database is locked",
    "connection refused",
    "max retries exceeded",
    "timed out",
    "timeout",
    "unique constraint failed",
    "temporarily unavailable",
    "error code 50",  # "failed with error code 503 != 200"
)


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str
    artifact_location: str | None = None  # for file/sqlite stores; a server manages its own
    experiment: str = "governance"
    ui_url: str | None = None
    request_timeout_s: int = 10
    backoff: Backoff = field(default_factory=Backoff)


@contextmanager
def _sqlite_init_lock(tracking_uri: str) -> Iterator[None]:
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    database = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
    with file_lock(database.with_suffix(".init.lock")):
        yield


@contextmanager
def _fluent_uris(uri: str) -> Iterator[None]:
    """MLflow's fluent API reads a process-global URI, and `set_tracking_uri` also exports it as
    `MLFLOW_TRACKING_URI` (for subprocesses): left in place, every later registry of this process
    (another home, the next test, the CLI's one source of settings) would follow it. Restored."""
    import mlflow

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = mlflow.get_tracking_uri() if saved_env["MLFLOW_TRACKING_URI"] else None
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved)  # type: ignore[arg-type]  # None: back to MLflow's default
        mlflow.set_registry_uri(saved)  # type: ignore[arg-type]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def is_transient(exc: BaseException) -> bool:
    """Server down, timeouts, 5xx, sqlite locks, a lost version-number race."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, MlflowException):
        if exc.error_code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"):
            return True
        text = str(exc).lower()
        return any(marker in text for marker in _TRANSIENT_MARKERS)
    text = f"{type(exc).__name__} {exc}".lower()
    return "operationalerror" in text or "integrityerror" in text or "connectionerror" in text


class ModelRegistry:
    def __init__(self, settings: MlflowSettings) -> None:
        self.settings = settings
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._configure_environment()
            from mlflow import MlflowClient

            with _sqlite_init_lock(self.settings.tracking_uri):
                # Opening a new sqlite store creates and migrates it; two processes doing that at
                # once break the migration ("expected to match one row"), so serialise it.
                uri = self.settings.tracking_uri
                client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
            self._client = client
        return self._client

    def _configure_environment(self) -> None:
        # MLflow reads these per request; bounded here so our own backoff is the one that retries.
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(self.settings.request_timeout_s)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    def call(self, what: str, action: Any) -> Any:
        """Run one MLflow operation: transient failures are retried with backoff (then raised as
        TransientError); any other MLflow error is permanent and says which operation failed."""
        from mlflow.exceptions import MlflowException

        described = f"MLflow {what} at {redact_url(self.settings.tracking_uri)}"
        try:
            return with_retries(
                action, what=described, backoff=self.settings.backoff, is_transient=is_transient
            )
        except MlflowException as exc:
            raise PermanentError(f"{described} failed: {exc.message}") from None

    def experiment_id(self) -> str:
        def get_or_create() -> str:
            experiment = self.client.get_experiment_by_name(self.settings.experiment)
            if experiment is not None:
                return str(experiment.experiment_id)
            return str(
                self.client.create_experiment(
                    self.settings.experiment, artifact_location=self.settings.artifact_location
                )
            )

        return str(self.call("experiment lookup", get_or_create))

    @contextmanager
    def active_run(self, run_name: str, tags: Mapping[str, str]) -> Iterator[Run]:
        """A fluent MLflow run (the model flavours log through it) against this registry's store."""
        import mlflow

        experiment_id = self.experiment_id()
        with (
            _fluent_uris(self.settings.tracking_uri),
            mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags)) as run,
        ):
            yield run

    def register(
        self, name: str, model_uri: str, model_id: str | None, run_id: str, tags: Mapping[str, str]
    ) -> ModelVersion:
        """Create a version of `name`; retried on races and outages, never duplicated."""
        from mlflow.exceptions import MlflowException

        registration_id = uuid.uuid4().hex

        def ensure_model() -> None:
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise

        def create() -> ModelVersion:
            existing = self.client.search_model_versions(
                f"name = '{name}' and tag.`{REGISTRATION_TAG}` = '{registration_id}'"
            )
            if existing:  # an earlier attempt got through before its answer was lost
                return existing[0]
            return self.client.create_model_version(
                name,
                source=model_uri,
                run_id=run_id,
                model_id=model_id,
                tags={**tags, REGISTRATION_TAG: registration_id},
                await_creation_for=30,
            )

        self.call("create registered model", ensure_model)
        return self.call(f"register a version of {name}", create)  # type: ignore[no-any-return]

    def version(self, name: str, version: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        def lookup() -> ModelVersion:
            try:
                return self.client.get_model_version(name, version)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    raise PermanentError(f"MLflow has no model version {name}/{version}") from None
                raise

        return self.call(f"read {name}/{version}", lookup)  # type: ignore[no-any-return]

    def versions(self, name: str) -> list[ModelVersion]:
        found = self.call(
            f"list versions of {name}", lambda: self.client.search_model_versions(f"name = '{name}'")
        )
        return sorted(found, key=lambda v: int(v.version), reverse=True)

    def aliases(self, name: str) -> dict[str, str]:
        """alias -> version; `search_model_versions` leaves aliases empty on some stores."""
        from mlflow.exceptions import MlflowException

        def lookup() -> dict[str, str]:
            try:
                model = self.client.get_registered_model(name)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return {}
                raise
            return {str(alias): str(version) for alias, version in model.aliases.items()}

        return self.call(f"read aliases of {name}", lookup)  # type: ignore[no-any-return]

    def version_for_alias(self, name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        def lookup() -> ModelVersion | None:
            try:
                return self.client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise

        return self.call(f"resolve alias {name}@{alias}", lookup)  # type: ignore[no-any-return]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call(
            f"set alias {name}@{alias}",
            lambda: self.client.set_registered_model_alias(name, alias, version),
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self.call(
            f"delete alias {name}@{alias}",
            lambda: self.client.delete_registered_model_alias(name, alias),
        )

    def set_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        def apply() -> None:
            for key, value in tags.items():
                self.client.set_model_version_tag(name, version, key, value)

        self.call(f"tag {name}/{version}", apply)

    def download(self, name: str, version: str, destination: Path) -> Path:
        """The version's model directory (`MLmodel`, `model.pkl`, …), downloaded once per version."""
        marker = destination / ".complete"
        if marker.is_file():
            return destination
        source = self.call(
            f"locate {name}/{version}", lambda: self.client.get_model_version_download_uri(name, version)
        )

        def fetch() -> None:
            import mlflow.artifacts

            partial = destination.with_name(destination.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(partial), tracking_uri=self.settings.tracking_uri
            )
            model_dir = next(partial.rglob("MLmodel")).parent  # nested under the artifact's name
            (model_dir / ".complete").write_text(f"{name}/{version}\n")
            shutil.rmtree(destination, ignore_errors=True)
            model_dir.rename(destination)
            shutil.rmtree(partial, ignore_errors=True)

        self.call(f"download {name}/{version}", fetch)
        return destination

    def digest(self, name: str, version: str) -> str:
        """The version's content digest (governance.models.digest), recorded on the version the
        first time it is asked for: at registration."""
        import tempfile

        from governance.models.digest import DIGEST_TAG, model_digest

        recorded = self.version(name, version).tags.get(DIGEST_TAG)
        if recorded:
            return str(recorded)
        with tempfile.TemporaryDirectory(prefix="model-digest-") as tmp:
            digest = model_digest(self.download(name, version, Path(tmp) / "model"))
        self.set_tags(name, version, {DIGEST_TAG: digest})
        return digest

    def load_model(self, name: str, version: str) -> Any:
        """The version's model object, read through this registry (never MLflow's global URI)."""
        import tempfile

        import mlflow.sklearn

        with tempfile.TemporaryDirectory() as tmp:
            local = self.download(name, version, Path(tmp) / "model")
            return mlflow.sklearn.load_model(str(local))

    def delete_version(self, name: str, version: str) -> None:
        self.call(f"delete {name}/{version}", lambda: self.client.delete_model_version(name, version))

    def run_metrics(self, run_id: str) -> dict[str, float]:
        run = self.call(f"read run {run_id}", lambda: self.client.get_run(run_id))
        return dict(run.data.metrics)

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        base = self.settings.ui_url
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}" if base else None

    def version_url(self, name: str, version: str) -> str | None:
        """The model version's page in the MLflow UI (its aliases, tags, lineage to the run)."""
        base = self.settings.ui_url
        quoted = urllib.parse.quote(name, safe="")
        return f"{base.rstrip('/')}/#/models/{quoted}/versions/{version}" if base else None

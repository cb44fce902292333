"""Where MLflow is: the embedded default under the home, or any tracking server by config."""

from __future__ import annotations

from governance.home import GovernanceHome
from governance.models.registry import MlflowSettings
from governance.retry import Backoff

DEFAULT_UI_URL = "http://127.0.0.1:5000"


def local_tracking_uri(home: GovernanceHome) -> str:
    # A busy timeout: concurrent writers otherwise fail with "database is locked" (mlflow#6490).
    return f"sqlite:///{home.mlflow / 'mlflow.db'}?timeout=30"


def mlflow_settings(
    home: GovernanceHome,
    tracking_uri: str | None = None,
    *,
    ui_url: str | None = DEFAULT_UI_URL,
    request_timeout_s: int = 10,
    attempts: int = 4,
) -> MlflowSettings:
    """`tracking_uri` None means the embedded sqlite store, whose artifacts live under the home too."""
    local = tracking_uri is None
    return MlflowSettings(
        tracking_uri=local_tracking_uri(home) if local else str(tracking_uri),
        artifact_location=(home.mlflow / "artifacts").as_uri() if local else None,
        ui_url=ui_url,
        request_timeout_s=request_timeout_s,
        backoff=Backoff(attempts=attempts),
    )

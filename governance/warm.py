"""The heavy libraries a governed action needs, imported once by a long-lived process (Dagster's
forkserver, the CLI's resident worker) so that each process forked from it starts warm: importing GX,
MLflow, scikit-learn, pandas and DVC costs seconds every time.
"""

import importlib
import os

# By what needs them: a process that serves only some of these imports only their modules.
HEAVY_MODULES: dict[str, tuple[str, ...]] = {
    "datasets": ("dvc.repo", "pandas"),
    "expectations": ("great_expectations", "pandas"),
    "models": (
        "mlflow.sklearn",
        "mlflow.store.model_registry.sqlalchemy_store",
        "mlflow.store.tracking.sqlalchemy_store",
        "pandas",
        "sklearn.linear_model",
    ),
}


def quiet_telemetry() -> None:
    """Telemetry stays off in every process forked from this one, as in the commands themselves;
    set before the libraries are imported, which read it then."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def import_heavy() -> None:
    quiet_telemetry()
    for modules in HEAVY_MODULES.values():
        for module in modules:
            importlib.import_module(module)

"""The heavy libraries a governed action needs, imported once by a long-lived process (Dagster's
forkserver, the CLI's resident worker) so that each process forked from it starts warm: importing GX,
MLflow, scikit-learn, pandas and DVC costs seconds every time.
"""

import importlib
import os

HEAVY_MODULES = (
    "dvc.repo",
    "great_expectations",
    "mlflow.sklearn",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_store",
    "pandas",
    "sklearn.linear_model",
)


def import_heavy() -> None:
    # Telemetry stays off in every process forked from this one, as in the commands themselves.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for module in HEAVY_MODULES:
        importlib.import_module(module)

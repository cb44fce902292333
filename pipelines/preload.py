"""What the multiprocess executor's forkserver imports once per run, so each step process forks
with it loaded instead of importing it again: GX, MLflow, scikit-learn, pandas and DVC cost seconds
per process, and a run of the estate starts more than a dozen step processes.

Never imported by the code location itself (its load stays as fast as `import dagster`).
"""

import importlib
import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Imported by name: this module exists to load them; the code location itself never imports it.
PRELOADED = (
    "dvc.repo",
    "great_expectations",
    "mlflow.sklearn",
    "pandas",
    "sklearn.linear_model",
    "pipelines.definitions",
)
for _module in PRELOADED:
    importlib.import_module(_module)

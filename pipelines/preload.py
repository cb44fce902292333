"""What the multiprocess executor's forkserver imports once per run, so each step process forks
with it loaded instead of importing it again: GX, MLflow, scikit-learn, pandas and DVC cost seconds
per process, and a run of the estate starts more than a dozen step processes.

Never imported by the code location itself (its load stays as fast as `import dagster`).
"""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import dvc.repo  # noqa: F401
import great_expectations  # noqa: F401
import mlflow
import mlflow.sklearn  # noqa: F401
import pandas  # noqa: F401
import sklearn.linear_model  # noqa: F401

import pipelines.definitions  # noqa: F401

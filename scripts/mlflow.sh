#!/usr/bin/env bash
# The MLflow UI over the platform's embedded store (the same sqlite + artifacts the assets write).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOVERNANCE_HOME="${GOVERNANCE_HOME:-$PWD/.governance}"
mkdir -p "$GOVERNANCE_HOME/mlflow/artifacts"
# MLflow 3's server starts a job runner with about ten polling workers (for its GenAI jobs, which
# the platform does not use): a quarter of a core for as long as the UI is up.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
exec uv run --frozen mlflow server \
  --backend-store-uri "sqlite:///$GOVERNANCE_HOME/mlflow/mlflow.db?timeout=30" \
  --default-artifact-root "$GOVERNANCE_HOME/mlflow/artifacts" \
  --host 127.0.0.1 --port "${MLFLOW_PORT:-5000}" --workers 1

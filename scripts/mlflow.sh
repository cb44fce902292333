#!/usr/bin/env bash
# The MLflow server. Embedded default: the UI over the platform's own store (the same sqlite and
# artifacts the assets write). With GOVERNANCE_DATABASE_URL: the tracking server every run reaches
# by URL, its backend store in that database's `mlflow` schema (Dagster's tables share the
# database, and both keep an `alembic_version` table) and its artifacts proxied from the shared
# volume ($GOVERNANCE_SHARED_DIR/mlflow/artifacts; without it, under the home).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOVERNANCE_HOME="${GOVERNANCE_HOME:-$PWD/.governance}"
# MLflow 3's server starts a job runner with about ten polling workers (for its GenAI jobs, which
# the platform does not use): a quarter of a core for as long as the UI is up.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
if [[ -n "${GOVERNANCE_DATABASE_URL:-}" ]]; then
  artifacts="${GOVERNANCE_SHARED_DIR:-$GOVERNANCE_HOME}/mlflow/artifacts"
  mkdir -p "$artifacts"
  MLFLOW_BACKEND_STORE_URI="$(uv run --frozen python -m governance.shared_database mlflow)"
  export MLFLOW_BACKEND_STORE_URI
  exec uv run --frozen mlflow server --serve-artifacts --artifacts-destination "$artifacts" \
    --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" --workers 1
fi
mkdir -p "$GOVERNANCE_HOME/mlflow/artifacts"
exec uv run --frozen mlflow server \
  --backend-store-uri "sqlite:///$GOVERNANCE_HOME/mlflow/mlflow.db?timeout=30" \
  --default-artifact-root "$GOVERNANCE_HOME/mlflow/artifacts" \
  --host 127.0.0.1 --port "${MLFLOW_PORT:-5000}" --workers 1

#!/usr/bin/env bash
# The MLflow UI over the platform's embedded store (the same sqlite + artifacts the assets write).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOVERNANCE_HOME="${GOVERNANCE_HOME:-$PWD/.governance}"
mkdir -p "$GOVERNANCE_HOME/mlflow/artifacts"
exec uv run --frozen mlflow server \
  --backend-store-uri "sqlite:///$GOVERNANCE_HOME/mlflow/mlflow.db?timeout=30" \
  --default-artifact-root "$GOVERNANCE_HOME/mlflow/artifacts" \
  --host 127.0.0.1 --port "${MLFLOW_PORT:-5000}" --workers 1

#!/usr/bin/env bash
# Start the platform: Dagster webserver on 127.0.0.1:3000 and the daemon, with the sample estate,
# and everything its UI links to: the platform's pages (Data Docs, lineage, provenance) on :3070
# and the MLflow UI on :5000.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOVERNANCE_HOME="${GOVERNANCE_HOME:-$PWD/.governance}"
export DAGSTER_HOME="$GOVERNANCE_HOME/dagster"
export GOVERNANCE_SITE_URL="${GOVERNANCE_SITE_URL:-http://127.0.0.1:3070}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
export MLFLOW_PORT GOVERNANCE_MLFLOW_UI_URL="http://127.0.0.1:$MLFLOW_PORT"
scripts/dagster-home.sh "$DAGSTER_HOME"
# With a shared database every run reaches MLflow by URL (the server below, on that database),
# and Dagster's storage reaches the database through psycopg2 (governance/shared_database.py).
if [[ -n "${GOVERNANCE_DATABASE_URL:-}" ]]; then
  export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-$GOVERNANCE_MLFLOW_UI_URL}"
  GOVERNANCE_DAGSTER_STORAGE_URL="$(uv run --frozen python -m governance.shared_database dagster)"
  export GOVERNANCE_DAGSTER_STORAGE_URL
fi

# A home written by an earlier version: its MLflow database and Dagster instance migrated to the
# pinned tools' schemas (a no-op when current), never by hand.
GOVERNANCE_CLI_WORKER=off uv run --frozen governance upgrade

# The loopback OCI registry that image builds push to (storage under the home; it stays up).
GOVERNANCE_CLI_WORKER=off uv run --frozen governance images registry start  # one command: nothing to keep warm

# The site and the MLflow UI over the same stores, stopped with the platform.
GOVERNANCE_CLI_WORKER=off uv run --frozen governance site serve >"$GOVERNANCE_HOME/site.log" 2>&1 &
site=$!
scripts/mlflow.sh >"$GOVERNANCE_HOME/mlflow-ui.log" 2>&1 &
mlflow_ui=$!
trap 'kill "$site" "$mlflow_ui" 2>/dev/null || true' EXIT

uv run --frozen dagster dev -w workspace.yaml -h "${DAGSTER_HOST:-127.0.0.1}" -p "${DAGSTER_PORT:-3000}"

#!/usr/bin/env bash
# Start the platform: Dagster webserver on 127.0.0.1:3000 and the daemon, with the sample estate.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOVERNANCE_HOME="${GOVERNANCE_HOME:-$PWD/.governance}"
export DAGSTER_HOME="$GOVERNANCE_HOME/dagster"
mkdir -p "$DAGSTER_HOME"
[[ -f "$DAGSTER_HOME/dagster.yaml" ]] || cp deploy/local/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# The loopback OCI registry that image builds push to (storage under the home).
GOVERNANCE_CLI_WORKER=off uv run --frozen governance images registry start  # one command: nothing to keep warm

exec uv run --frozen dagster dev -w workspace.yaml -h "${DAGSTER_HOST:-127.0.0.1}" -p "${DAGSTER_PORT:-3000}"

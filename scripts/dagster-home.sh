#!/usr/bin/env bash
# The Dagster instance directory ($1, default $DAGSTER_HOME): the embedded default's dagster.yaml,
# with its storage in Postgres when GOVERNANCE_DATABASE_URL is set. An existing file is kept as it
# is, except that a file without storage gains the Postgres storage once the URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

home="${1:-$DAGSTER_HOME}"
mkdir -p "$home"
[[ -f "$home/dagster.yaml" ]] || cp deploy/local/dagster.yaml "$home/dagster.yaml"
if [[ -n "${GOVERNANCE_DATABASE_URL:-}" ]] && ! grep -q '^storage:' "$home/dagster.yaml"; then
  { echo; cat deploy/local/storage-postgres.yaml; } >>"$home/dagster.yaml"
fi

#!/usr/bin/env bash
# The Compose stack of deploy/docker: the platform for a team, each run in a container of its own.
#
#   scripts/stack.sh up      build (or reuse) and check the platform image, start the engine, bring
#                            the services up in order and wait for each; prints the webserver's URL
#   scripts/stack.sh env     the host's settings for the `governance` CLI on the stack's stores
#   scripts/stack.sh down [--volumes]
#                            stop the services and the run containers (and delete their data)
#
# The engine is podman's Docker API service on the builder's storage (`governance images engine`):
# Compose (podman-compose) and the daemon's DockerRunLauncher both use it. Ports, on loopback:
# GOVERNANCE_STACK_{PG,MLFLOW,GRPC,WEB}_PORT (15432, 15000, 14266, 13000). The database password is
# GOVERNANCE_STACK_DB_PASSWORD, else one generated once and kept in $GOVERNANCE_HOME/stack.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOVERNANCE_HOME="${GOVERNANCE_HOME:-$PWD/.governance}"
export GOVERNANCE_CLI_WORKER=off
export GOVERNANCE_STACK_PG_PORT="${GOVERNANCE_STACK_PG_PORT:-15432}"
export GOVERNANCE_STACK_MLFLOW_PORT="${GOVERNANCE_STACK_MLFLOW_PORT:-15000}"
export GOVERNANCE_STACK_GRPC_PORT="${GOVERNANCE_STACK_GRPC_PORT:-14266}"
export GOVERNANCE_STACK_WEB_PORT="${GOVERNANCE_STACK_WEB_PORT:-13000}"
state="$GOVERNANCE_HOME/stack"
mkdir -p "$state"
if [[ -z "${GOVERNANCE_STACK_DB_PASSWORD:-}" ]]; then
  [[ -s "$state/db-password" ]] || (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$state/db-password")
  GOVERNANCE_STACK_DB_PASSWORD="$(cat "$state/db-password")"
fi
export GOVERNANCE_STACK_DB_PASSWORD

governance() { uv run --frozen governance "$@"; }
compose() { uv run --frozen podman-compose -f deploy/docker/compose.yaml "$@"; }
eval "$(governance images engine env)"
export GOVERNANCE_ENGINE_SOCKET="${DOCKER_HOST#unix://}"
database_url="postgresql://governance:$GOVERNANCE_STACK_DB_PASSWORD@127.0.0.1:$GOVERNANCE_STACK_PG_PORT/governance"

# Until SERVICE listens on PORT; its last lines of log if it does not within SECONDS.
wait_port() {
  local service=$1 port=$2 deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ((SECONDS > deadline)); then
      echo "stack: $service did not listen on 127.0.0.1:$port within $3 s; its last lines:" >&2
      compose logs --tail 30 "$service" >&2 || true
      exit 1
    fi
    sleep 1
  done
}

up() {
  governance images registry start >&2
  echo "stack: the platform image (governance images build platform, then its checks)" >&2
  GOVERNANCE_PLATFORM_IMAGE="$(governance images build platform --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["reference"])')"
  governance images test platform >&2  # policy, smoke test and size budget of exactly that digest
  GOVERNANCE_POSTGRES_IMAGE="$(governance images base postgres)"
  export GOVERNANCE_PLATFORM_IMAGE GOVERNANCE_POSTGRES_IMAGE
  echo "$GOVERNANCE_PLATFORM_IMAGE" >"$state/platform-image"
  governance images engine start >&2

  compose up -d shared-volume postgres >&2
  GOVERNANCE_DATABASE_URL="$database_url" uv run --frozen python -m governance.shared_database ready 120
  compose up -d mlflow code >&2
  wait_port mlflow "$GOVERNANCE_STACK_MLFLOW_PORT" 180
  wait_port code "$GOVERNANCE_STACK_GRPC_PORT" 180
  compose up -d webserver daemon >&2
  wait_port webserver "$GOVERNANCE_STACK_WEB_PORT" 180
  echo "stack: up; runs in containers of $GOVERNANCE_PLATFORM_IMAGE" >&2
  echo "http://127.0.0.1:$GOVERNANCE_STACK_WEB_PORT"
}

# The host's CLI on the stack's stores: the database, the MLflow server, the shared volume.
env_exports() {
  local volume
  volume="$(podman volume inspect governance-shared --format '{{.Mountpoint}}')"
  printf 'export GOVERNANCE_DATABASE_URL=%q\n' "$database_url"
  printf 'export MLFLOW_TRACKING_URI=%q\n' "http://127.0.0.1:$GOVERNANCE_STACK_MLFLOW_PORT"
  printf 'export GOVERNANCE_SHARED_DIR=%q\n' "$volume"
}

down() {
  # Compose interpolates every variable even to stop: the images by what `up` recorded.
  GOVERNANCE_PLATFORM_IMAGE="$(cat "$state/platform-image" 2>/dev/null || echo none)"
  GOVERNANCE_POSTGRES_IMAGE=none
  export GOVERNANCE_PLATFORM_IMAGE GOVERNANCE_POSTGRES_IMAGE
  compose down "$@" >&2
  local runs
  mapfile -t runs < <(podman ps --all --quiet --filter label=dagster/run_id)
  ((${#runs[@]} == 0)) || podman rm --force "${runs[@]}" >/dev/null
  # Compose leaves a volume named outside its project (the run launcher mounts it by name).
  [[ " $* " != *" --volumes "* ]] || podman volume rm --force governance-shared >/dev/null
  governance images engine stop >&2
}

case "${1:-}" in
  up) up ;;
  env) env_exports ;;
  down) shift; down "$@" ;;
  *) echo "usage: scripts/stack.sh up | env | down [--volumes]" >&2; exit 2 ;;
esac

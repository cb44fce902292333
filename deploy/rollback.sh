#!/usr/bin/env bash
# Switch a release's service back to its previous color: deploy/rollback.sh RELEASE [REASON]
set -euo pipefail
cd "$(dirname "$0")/.."
exec uv run --frozen governance release rollback "$1" --reason "${2:-rollback.sh}"

#!/usr/bin/env bash
# One self-heal probe of a release (for cron or a systemd timer): deploy/selfheal-check.sh RELEASE
# Exit 0 when healthy or recovered, 1 when degraded or recovery failed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec uv run --frozen governance release heal "$1"

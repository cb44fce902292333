#!/usr/bin/env bash
# Everything the platform needs on a fresh Debian machine (root, Python 3.11): system packages, uv,
# and the locked Python environment. Idempotent and quick when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
# git/graphviz/postgresql: DVC, lineage graphs, the Postgres audit tests. buildah/podman/runc: image
# builds and runs (daemonless, rootful). docker-registry: the loopback OCI registry. mmdebstrap: base
# images from Debian packages. nginx: the local release target's service. shellcheck: actionlint checks
# the workflow's run: scripts with it. chromium: the browser tests (Playwright drives it).
APT_PACKAGES=(git graphviz postgresql buildah podman runc docker-registry mmdebstrap nginx shellcheck chromium)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)  # the pnpm fetch step

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v uv >/dev/null 2>&1 || [[ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]]; then
  echo "setup: installing uv $UV_VERSION"
  python3 -m pip install -q "uv==$UV_VERSION"
fi

# With bytecode: uv installs none by default, and where PYTHONDONTWRITEBYTECODE is set (this kind of
# machine sets it) none is ever cached, so every process compiled what it imported: importing
# mlflow, Great Expectations, scikit-learn and pandas took 15.7 CPU-s instead of 6.6 s, in each of
# the suite's ~1,000 processes and each run step. Once on a fresh machine (29 s), then unchanged.
uv sync --frozen --quiet --compile-bytecode

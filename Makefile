# The two commands: `make dev` runs the platform, `make test` runs the whole suite.
# Both install what they need first (scripts/setup.sh).
.PHONY: setup dev test lint mlflow tour

setup:
	@scripts/setup.sh

dev: setup
	@scripts/dev.sh

mlflow: setup
	@scripts/mlflow.sh

# mypy's cache lives beside uv's, outside the checkout: a fresh checkout (CI's) checks its own
# modules against the cached third-party ones (51 s with no cache, 10 s with it).
lint: export MYPY_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/governance-platform/mypy
lint: setup
	uv run --frozen ruff check governance pipelines tests examples
	uv run --frozen mypy

# Three workers (pytest-xdist), a module each at a time, sharing one image lab (tests/conftest.py).
# The long modules (marked `runs_for`: builds, servers, runs) start first, longest first, and at most
# one per core runs at a time (tests/lanes.py): a third beside two ran the season past its timeout.
# The short modules come last, on all three: with two workers they left a core idle at the end.
test: setup lint
	uv run --frozen pytest --numprocesses 3 --dist loadscope --no-loadscope-reorder

# The README's tour: the browser test's screenshots, taken again into docs/tour.
tour: setup
	GOVERNANCE_TOUR_DIR=$(CURDIR)/docs/tour uv run --frozen pytest -q tests/e2e/test_dagster_dev.py

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

# Two workers (pytest-xdist), a module each at a time: the suite waits on builds, servers and runs
# for half its time, which the other worker fills. They share one image lab (tests/conftest.py).
# (Three ran 4% faster but starved the longest modules: the season passed its 600 s, and the
# platform image's webserver missed its smoke test's 30 s.)
# Modules marked `runs_for` start first, longest first, then the rest in collection order
# (tests/conftest.py; xdist's default would start the modules with the most tests first).
test: setup lint
	uv run --frozen pytest --numprocesses 2 --dist loadscope --no-loadscope-reorder

# The README's tour: the browser test's screenshots, taken again into docs/tour.
tour: setup
	GOVERNANCE_TOUR_DIR=$(CURDIR)/docs/tour uv run --frozen pytest -q tests/e2e/test_dagster_dev.py

"""The lock holds one consistent Dagster: its core packages at one 1.N.P, every library at the
0.(N+16).P released with it. An unpinned library can resolve to a years-old release that installs
cleanly and fails only when a run launcher or storage is loaded."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO

CORE = {"dagster", "dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared"}
RUN_LAUNCHERS_AND_STORAGE = {"dagster-docker", "dagster-k8s", "dagster-postgres"}


def test_dagster_core_and_libraries_are_locked_in_lockstep() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"] if p["name"].startswith("dagster")}
    major, minor, patch = locked["dagster"].split(".")
    assert major == "1", locked
    library = f"0.{int(minor) + 16}.{patch}"  # 1.13.N with 0.29.N
    assert set(locked) >= CORE | RUN_LAUNCHERS_AND_STORAGE, locked
    wanted = {name: locked["dagster"] if name in CORE else library for name in locked}
    assert locked == wanted

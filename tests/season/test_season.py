"""A short season through the `governance simulate season` command, as a person runs it, on a home
the platform's previous release wrote (tests/season/fixtures), upgraded as `make dev` upgrades it.
Each day's materialization is `dagster asset materialize` (every step in its own process) on that
home's persistent instance, and the season is run twice, the second going on from the state the
first left."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.config import Estate
from governance.home import GovernanceHome
from governance.season.invariants import Expected, check_day
from governance.season.plan import SeasonPlan
from governance.season.simulate import Season
from governance.services import Services
from tests.conftest import repository_estate_data, run_governance, write_estate
from tests.season.fixture import HOME, unpack
from tests.services import free_port

pytestmark = [pytest.mark.usefixtures("image_lab"), pytest.mark.runs_for(205)]
FIRST_TWO_DAYS = ("--heal", "1", "--defect", "2:grams_as_kilograms", "--restart", "2")
LAST_TWO_DAYS = ("--defect", "3:mislabelled", "--rollback", "4")


@pytest.fixture
def upgraded_home(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The previous release's home, upgraded: what its manifest says wrote it and holds."""
    manifest = unpack()
    monkeypatch.setenv("GOVERNANCE_HOME", str(HOME))
    monkeypatch.setenv("DAGSTER_HOME", str(HOME / "dagster"))
    upgraded = run_governance("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    written_by = ", ".join(f"{tool} {version}" for tool, version in manifest["versions"].items())
    assert "written by: (not recorded)" in upgraded.stdout  # the previous release kept no record
    assert (
        "migrated: MLflow database" in upgraded.stdout
        and "migrated: Dagster instance" in upgraded.stdout
    )
    again = run_governance("upgrade")  # as the next `make dev` runs it: nothing left to migrate
    assert again.returncode == 0 and "migrated:" not in again.stdout, again.stdout + again.stderr
    recorded = json.loads((HOME / "versions.json").read_text())["versions"]
    assert recorded["dagster"] == manifest["versions"]["dagster"], written_by  # the same pins
    return manifest


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    data = repository_estate_data()
    data["releases"] = {"penguin_service": data["releases"]["penguin_service"]}
    release = data["releases"]["penguin_service"]
    release["local"] = {name: free_port() for name in ("service_port", "blue_port", "green_port")}
    release["heal"] = {"failures_before_action": 2}
    data["retention"]["images"] = 1000  # the session's builder storage is every test's: keep all
    made = write_estate(data, tmp_path / "estate")
    yield made
    run_governance("--estate", str(made.path), "release", "down", "--all")


def simulate(estate: Estate, days: int, *plan: str) -> tuple[int, str]:
    result = run_governance(
        "--estate", str(estate.path), "simulate", "season", "--days", str(days), *plan,
        timeout_s=1200,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_a_season_on_the_previous_releases_home_keeps_every_invariant(
    estate: Estate, upgraded_home: dict[str, Any], tmp_path: Path
) -> None:
    """Day 1 retrains (version 2, after the fixture's 1), releases and survives a dead container.
    Day 2 the machine restarts, and the feed's masses arrive in kilograms: refused at ingest, the
    service untouched. Day 3's labels are mixed up, which no expectation sees: version 3 is refused
    by its evaluation gate. Day 4 releases version 4, then is rolled back to 2. The command checks
    every day's invariants; its report is read here, and the fixture's own history still holds."""
    code, output = simulate(estate, 2, *FIRST_TWO_DAYS)
    assert code == 0, output
    # a second invocation, two days longer: days 3 and 4, on the state the first left, each with
    # the daily housekeeping job run after it as the schedule runs it (`dagster job execute`)
    code, output = simulate(estate, 4, *FIRST_TWO_DAYS, *LAST_TWO_DAYS, "--gc")
    assert code == 0, output
    assert "day 1:" not in output and "4 of 4 days done, every invariant holds" in output

    reports = [json.loads(line) for line in (HOME / "season/days.jsonl").read_text().splitlines()]
    assert [(r["day"], r["events"], r["outcome"], r["violations"]) for r in reports] == [
        (1, ["heal"], "released", []),
        (2, ["restart", "defect:grams_as_kilograms"], "feed refused", []),
        (3, ["defect:mislabelled"], "model refused by its gate", []),
        (4, ["rollback"], "released", []),
    ]
    day1, day2, day3, day4 = (r["actions"] for r in reports)
    assert {"dataset.published", "model.gated", "release.promoted", "release.restarted"} <= set(day1)
    assert day2 == ["release.restarted", "dataset.rejected"]  # back up, then the feed refused
    refusal = reports[1]["refusals"][0]  # the fault, named with its rule
    assert "'body_mass_g' has" in refusal and "not whole (rule: integer)" in refusal, refusal
    assert day3 == [
        "dataset.published",
        "dataset.checked",
        "model.registered",
        "model.gated",
        "housekeeping.collected",
    ]
    assert any("accuracy" in reason for reason in reports[2]["refusals"]), reports[2]["refusals"]
    assert day4[-3:] == ["release.rolled_back", "alias.champion.promoted", "housekeeping.collected"]
    shown = run_governance("audit", "show", "--json", "--subject", f"home:{HOME}")
    records = json.loads(shown.stdout)  # the upgrade's, then each housekeeping run's
    housekeeping = [r for r in records if r["action"] == "housekeeping.collected"]
    assert [r["actor"].split(":")[0] for r in housekeeping] == ["dagster", "dagster"], records
    assert [line.split(":")[0] for line in housekeeping[-1]["reasons"]] == [
        "Dagster runs",
        "validations",
        "release model copies",
        "image builds",
        "delivered lineage events",
    ]
    expected = reports[-1]["expected"]
    assert (expected["serving"], expected["previous"]) == ("2", "4")
    assert {day: v["model"] for day, v in expected["days"].items()} == {"1": "2", "3": "3", "4": "4"}

    # The previous release's history: its dataset version checks out byte for byte, its model
    # version is still in the registry, and its audit records begin the one chain.
    old = upgraded_home["dataset"]
    copy = tmp_path / "old.csv"
    checkout = run_governance(
        "datasets", "checkout", "penguins", "--version", old["md5"], "--out", str(copy)
    )
    assert checkout.returncode == 0, checkout.stderr
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == old["sha256"]
    models = json.loads(run_governance("models", "list", "--json").stdout)
    versions = {v["version"]: v for v in models[0]["versions"]}
    assert sorted(versions) == ["1", "2", "3", "4"] and versions["1"]["status"] == "READY"

    # The same checks, in process on the state the season left, pass; then they catch a record of
    # the audit log edited behind the platform's back.
    season = Season(
        SeasonPlan(4), estate, "penguin_service", Services(), HOME / "season", HOME / "dagster", print
    )
    state = Expected.from_dict(expected)
    serving = season.serving_now()
    assert serving[2] == "2"

    def check() -> list[str]:
        actions = day4[:-3]
        return check_day(season, 4, [], "released", state, serving, serving, actions, random.Random(4))

    assert check() == []
    with sqlite3.connect(GovernanceHome.resolve().audit_db) as db:
        db.execute("UPDATE audit_log SET decision = 'approved' WHERE action = 'dataset.rejected'")
    assert any(v.startswith("audit verify: the chain breaks") for v in check()), check()

"""The web front end released blue/green, through `dagster asset materialize` (each step in its own
process) on one persistent instance, across days: a developer's source edit becomes green, is rolled
back, heals, and is refused once the page can no longer get a prediction. The model service its page
asks (penguin_service's service URL) is the real model server, run from source on that port: the
whole estate released together is `tests/e2e/test_dagster_dev.py`'s *Materialize all*."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.audit.store import open_audit_log
from governance.config import Estate
from governance.home import GovernanceHome
from governance.images.lifecycle import BuildRecords
from tests.conftest import (
    REPO,
    dagster_materialize,
    repository_estate_data,
    run_governance,
    write_estate,
)
from tests.services import free_port, model_server, podman, release_container

WEB = "penguin_web"
FRONTEND = REPO / "examples/penguins/apps/frontend"
pytestmark = [pytest.mark.usefixtures("image_lab"), pytest.mark.runs_for(130)]


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    """The repository's estate on free ports, its front end a copy a developer can edit."""
    data = repository_estate_data()
    app = tmp_path / "frontend"
    shutil.copytree(FRONTEND, app, ignore=shutil.ignore_patterns("node_modules", ".next"))
    data["images"]["apps"]["frontend"]["context"] = str(app)
    for release in data["releases"].values():
        release["local"] = {name: free_port() for name in ("service_port", "blue_port", "green_port")}
        release["heal"] = {"failures_before_action": 2}
    made = write_estate(data, tmp_path / "estate")
    yield made
    run_governance("--estate", str(made.path), "release", "down", "--all")


def page(estate: Estate, query: str = "") -> str:
    """The page as a person's browser gets it from the web release's service URL."""
    path = query or estate.release(WEB).smoke.path
    url = f"http://127.0.0.1:{estate.release(WEB).local.service_port}{path}"
    with urllib.request.urlopen(url, timeout=15) as response:
        return str(response.read().decode())


def answer(html: str) -> tuple[str, str] | None:
    """(species, model version) shown on the page, if it shows a prediction."""
    found = re.search(
        r'data-testid="species">([^<]+)<.*?data-testid="model-version">([^<]+)<', html, re.S
    )
    return (found.group(1), found.group(2)) if found else None


def version(estate: Estate) -> dict[str, str]:
    url = f"http://127.0.0.1:{estate.release(WEB).local.service_port}/version"
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.load(response))


def governance(estate: Estate, *args: str) -> tuple[int, str]:
    result = run_governance("--estate", str(estate.path), *args)
    return result.returncode, result.stdout + result.stderr


def test_web_release_serves_predictions_rolls_back_heals_and_refuses(
    estate: Estate, home: Path, model_dir: Path, tmp_path: Path
) -> None:
    dagster_home = home / "dagster"
    port = estate.release("penguin_service").local.service_port
    service_url = f"http://127.0.0.1:{port}"
    web = f"frontend,{WEB}_candidate,{WEB}"
    with model_server(model_dir, tmp_path, port=port):
        # Day one: the front end's image, its checks and its release.
        day_one = dagster_materialize(dagster_home, web, estate.path)
        assert day_one.returncode == 0, day_one.stderr[-4000:]
        html = page(estate)
        assert answer(html) == ("Adelie", "penguin-classifier/1"), html[-2000:]
        assert "Which penguin is it?" in html
        # The image holds the static files beside the server: the page's scripts load (a 404 raises).
        scripts = re.findall(r'src="(/_next/static/[^"]+\.js)"', html)
        assert scripts and all(page(estate, script) for script in scripts)
        assert version(estate) | {"image": ""} == {
            "app": "penguins-web",
            "color": "blue",
            "image": "",
            "model_server": service_url,
        }
        invalid = page(estate, "/?island=Atlantis&sex=male")
        assert "island must be one of Biscoe, Dream, Torgersen" in invalid and answer(invalid) is None

        # Day two: a developer edits the page's source; only the source layers rebuild, green serves.
        source = Path(estate.image("frontend").context) / "apps/web/app/page.tsx"
        source.write_text(source.read_text().replace("Which penguin is it?", "Which penguin is this?"))
        day_two = dagster_materialize(dagster_home, web, estate.path)
        assert day_two.returncode == 0, day_two.stderr[-4000:]
        html = page(estate)
        served = version(estate)
        assert "Which penguin is this?" in html and served["color"] == "green"
        assert answer(html) == ("Adelie", "penguin-classifier/1")
        storage = Path(os.environ["GOVERNANCE_IMAGE_STORAGE"])  # shared: other homes build too
        rebuilt = BuildRecords(storage).by_digest("frontend", served["image"].rsplit("@", 1)[1])
        install = next(s for s in rebuilt.steps if "pnpm install --offline" in s.instruction)
        assert install.cached and not rebuilt.dependencies_fetched, rebuilt.steps

        # Rollback from the command line: blue (kept up) serves the first page again.
        code, output = governance(
            estate, "release", "rollback", WEB, "--by", "oncall", "--reason", "copy"
        )
        assert code == 0, output
        html = page(estate)
        assert "Which penguin is it?" in html and answer(html) == ("Adelie", "penguin-classifier/1")

        # Self-heal: the serving container dies; after 2 failed probes it is restarted.
        podman("kill", release_container(WEB, "blue"))
        code, output = governance(estate, "release", "heal", WEB)
        assert code == 1 and output.startswith("degraded"), output
        code, output = governance(estate, "release", "heal", WEB)
        assert code == 0 and output.startswith("restarted"), output
        assert answer(page(estate)) == ("Adelie", "penguin-classifier/1")

    # Day three: the model service is down, so the page cannot get a prediction: day two's page,
    # deployed again, is refused by its smoke test and the service keeps serving blue.
    day_three = dagster_materialize(dagster_home, f"{WEB}_candidate,{WEB}", estate.path)
    assert day_three.returncode != 0
    assert "idle color smoke test" in day_three.stderr and "data-testid" in day_three.stderr
    assert version(estate)["color"] == "blue" and "Which penguin is it?" in page(estate)

    audit = open_audit_log(GovernanceHome.resolve().audit_db)
    records = [r for r in audit.records(f"release:{WEB}") if r.action != "release.candidate"]
    assert [r.action for r in records] == [
        "release.promoted",
        "release.promoted",
        "release.rolled_back",
        "release.restarted",
        "release.refused",
    ]
    promoted = records[0]
    assert set(promoted.versions) == {"color", "release", "image"}  # no model: an app release
    gates = " ".join(promoted.reasons)
    for check in ("passes_dockerfile_policy", "answers_health_check", "within_size_budget"):
        assert f"frontend.{check}: passed" in gates
    assert "idle color smoke test: /readyz answered 200" in gates
    code, output = governance(estate, "audit", "verify")
    assert code == 0, output

    # What serves, and where it came from: an app release's chain ends at its image and evidence.
    explained = run_governance("--estate", str(estate.path), "release", "explain", WEB, "--json")
    assert explained.returncode == 0, explained.stderr
    links = json.loads(explained.stdout)
    assert [link["kind"] for link in links][:3] == ["service", "color", "image"]
    assert "model version" not in {link["kind"] for link in links}
    assert {"lineage run", "audit record"} <= {link["kind"] for link in links}

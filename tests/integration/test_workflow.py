"""The delivery pipeline (.github/workflows/cicd.yml) passes actionlint (with shellcheck on its run:
scripts) and GitHub's workflow schema, and its job graph is the one the team relies on: nothing
deploys without the tests, the build and the cluster check, production waits for its reviewers and
records their approval, and Slack hears about every outcome."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "cicd.yml"
BIN = Path(sys.executable).parent


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", str(path)], capture_output=True, text=True, timeout=120
    )


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def test_actionlint_passes_and_checks_run_scripts_with_shellcheck() -> None:
    assert shutil.which("shellcheck"), "scripts/setup.sh installs shellcheck"
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("breakage", "finding"),
    [
        (("needs: test\n", "needs: tset\n"), "tset"),  # a job that does not exist
        ((' >> "$GITHUB_OUTPUT"', " >> $GITHUB_OUTPUT"), "SC2086"),  # shellcheck: unquoted
    ],
)
def test_actionlint_finds_what_breaks_the_workflow(
    tmp_path: Path, breakage: tuple[str, str], finding: str
) -> None:
    broken = tmp_path / ".github" / "workflows" / "cicd.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text()
    assert breakage[0] in text
    broken.write_text(text.replace(breakage[0], breakage[1], 1))
    result = actionlint(broken)
    assert result.returncode == 1 and finding in result.stdout, result.stdout


def test_the_github_workflow_schema_accepts_it() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_job_graph_gates_every_deployment() -> None:
    flow = workflow()
    on = flow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert on["push"]["branches"] == ["main"] and "pull_request" in on and "workflow_dispatch" in on
    assert "github.ref" in flow["concurrency"]["group"]
    assert flow["permissions"] == {"contents": "read"}
    jobs = flow["jobs"]
    needs = {name: set(_list(job.get("needs", []))) for name, job in jobs.items()}
    assert needs == {
        "test": set(),
        "build": {"test"},
        "k8s": {"build"},
        "deploy-staging": {"build", "k8s"},
        "deploy-prod": {"build", "deploy-staging"},
        "notify": {"test", "build", "k8s", "deploy-staging", "deploy-prod"},
    }
    for deploy in ("deploy-staging", "deploy-prod"):
        assert "github.ref == 'refs/heads/main'" in jobs[deploy]["if"]
        assert "github.event_name != 'pull_request'" in jobs[deploy]["if"]
        runs = [step.get("run", "") for step in jobs[deploy]["steps"]]
        assert any("governance release launch penguin_service" in run for run in runs)
        assert not any("kubectl apply" in run or "release promote" in run for run in runs)
    assert jobs["deploy-prod"]["environment"]["name"] == "production"
    prod_runs = [step.get("run", "") for step in jobs["deploy-prod"]["steps"]]
    launches = [i for i, run in enumerate(prod_runs) if "governance release launch" in run]
    approve = next(i for i, run in enumerate(prod_runs) if "governance release approve" in run)
    propose, launch = launches
    assert "--candidate-only" in prod_runs[propose] and "--candidate-only" not in prod_runs[launch]
    # the reviewers' approval is of the proposed candidate, and recorded before the gates look for it
    assert propose < approve < launch
    assert all('--by "github:${{ github.actor }}"' in prod_runs[i] for i in launches)
    assert jobs["notify"]["if"] == "always()"
    assert "secrets.SLACK_WEBHOOK_URL" in str(jobs["notify"])
    assert "make test" in str(jobs["test"]["steps"])
    for name, job in jobs.items():
        granted = job.get("permissions", {})
        assert set(granted) <= {"contents", "packages", "actions"}, name
        assert all(level in ("read", "write") for level in granted.values()), name
        assert job.get("timeout-minutes"), f"{name} has no timeout"


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)

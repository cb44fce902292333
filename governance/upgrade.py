"""A home written by an earlier version of the platform, brought to the schemas of the pinned tools.

The pinned tools own their stores' schemas: MLflow's database migrates with `mlflow db upgrade`
(Alembic), the Dagster instance with `dagster instance migrate`. `make dev` runs this before it
starts, so nobody migrates by hand; a home last written by the same versions is left as it is.
The versions that last wrote the home are kept in `versions.json`, where a later upgrade starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from governance.audit.store import AuditTrail
from governance.errors import PermanentError
from governance.home import GovernanceHome
from governance.models.registry import MlflowSettings

TOOLS = ("governance-platform", "dagster", "mlflow", "dvc", "great-expectations")


@dataclass(frozen=True)
class Upgraded:
    before: dict[str, str]  # the versions that last wrote the home ({} when never recorded)
    after: dict[str, str]
    steps: list[str]

    def changed(self) -> list[str]:
        return [
            f"{tool} {self.before[tool]} -> {version}"
            for tool, version in self.after.items()
            if self.before.get(tool, version) != version
        ]


def tool_versions() -> dict[str, str]:
    return {tool: metadata.version(tool) for tool in TOOLS}


def upgrade_home(
    home: GovernanceHome, mlflow: MlflowSettings, dagster_home: Path | None, trail: AuditTrail
) -> Upgraded:
    record = home.root / "versions.json"
    before = json.loads(record.read_text())["versions"] if record.is_file() else {}
    if before == tool_versions():  # nothing to migrate: `make dev` skips 14 s of no-op migrations
        return Upgraded(before, before, [])
    steps = []
    if mlflow.tracking_uri.startswith("sqlite:") and (home.mlflow / "mlflow.db").is_file():
        uri = mlflow.tracking_uri.split("?", 1)[0]
        _run([sys.executable, "-m", "mlflow", "db", "upgrade", uri], "mlflow db upgrade")
        steps.append(f"MLflow database: `mlflow db upgrade` ({uri})")
    if dagster_home is not None and (dagster_home / "dagster.yaml").is_file():
        dagster = str(Path(sys.executable).parent / "dagster")
        _run([dagster, "instance", "migrate"], "dagster instance migrate", dagster_home)
        steps.append(f"Dagster instance: `dagster instance migrate` ({dagster_home})")
    after = tool_versions()
    trail.record("home.upgraded", f"home:{home.root}", after, "upgraded", steps)
    partial = record.with_suffix(".partial")
    partial.write_text(json.dumps({"versions": after, "at": time.time()}, indent=2))
    partial.replace(record)
    return Upgraded(before, after, steps)


def _run(command: list[str], what: str, dagster_home: Path | None = None) -> None:
    env = {**os.environ, **({"DAGSTER_HOME": str(dagster_home)} if dagster_home else {})}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PermanentError(f"{what} failed (exit {done.returncode}): {last[0]}")

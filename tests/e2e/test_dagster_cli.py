"""`dagster asset materialize`, as an operator or a cron job runs it, with the estate's selection."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from governance.home import GovernanceHome
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from tests.conftest import REPO


def test_materialize_model_and_its_upstream_from_the_command_line(home: Path) -> None:
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", dagster_home)
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [
            dagster,
            "asset",
            "materialize",
            "-m",
            "pipelines.definitions",
            "-a",
            "defs",
            "--select",
            "+key:penguin_classifier",
        ],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RUN_SUCCESS" in result.stderr
    assert "Asset check 'meets_promotion_policy' on 'penguin_classifier' passed" in result.stderr
    registry = ModelRegistry(mlflow_settings(GovernanceHome.resolve()))
    assert registry.aliases("penguin-classifier") == {"challenger": "1"}

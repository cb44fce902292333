"""A home written by an earlier version of the platform, kept with the versions that wrote it.

Made by that version itself: its commit checked out in a git worktree, its own locked environment
(`uv sync --frozen`), one day of the sample estate through its `dagster asset materialize` (datasets,
model, image, release), then its release taken down (containers are the machine's state, not the
home's) and the home packed. MLflow keeps absolute artifact paths, so the home is written and
unpacked at one fixed path.

Make one: uv run python -m tests.season.fixture COMMIT
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

from governance.upgrade import TOOLS
from tests.conftest import REPO, repository_estate_data
from tests.services import free_port

FIXTURES = Path(__file__).parent / "fixtures"
HOME = Path("/tmp/governance-upgrade-fixture/home")  # where the fixture was written, and is unpacked
WRITTEN_BY = "296d0d2"  # the commit of the platform's previous release, which wrote the fixture
DAY = "penguins_raw,penguins,penguin_classifier,model_server,penguin_service_candidate,penguin_service"


def unpack(commit: str = WRITTEN_BY) -> dict[str, Any]:
    """The fixture's home at HOME (replacing what is there); returns what its manifest says."""
    if HOME.parent.exists():  # the fixture's own directory: whatever an earlier run left goes
        shutil.rmtree(HOME.parent)
    HOME.parent.mkdir(parents=True)
    with tarfile.open(FIXTURES / f"home-{commit}.tar.gz") as archive:
        archive.extractall(HOME.parent, filter="data")
    manifest: dict[str, Any] = json.loads((FIXTURES / f"home-{commit}.json").read_text())
    return manifest


def make(commit: str) -> None:
    from governance.images.registry import start_registry, stop_registry

    with tempfile.TemporaryDirectory(prefix="upgrade-fixture-") as tmp:
        root = Path(tmp)
        tree = root / "tree"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True
        )
        try:
            subprocess.run(["uv", "sync", "--frozen"], cwd=tree, check=True)
            if HOME.exists():
                shutil.rmtree(HOME)
            (HOME / "dagster").mkdir(parents=True)
            shutil.copy(tree / "deploy/local/dagster.yaml", HOME / "dagster")
            data = repository_estate_data(tree)
            for release in data["releases"].values():
                ports = ("service_port", "blue_port", "green_port")
                release["local"] = {name: free_port() for name in ports}
            estate = root / "governance.yaml"
            estate.write_text(yaml.safe_dump(data, sort_keys=False))
            registry = f"127.0.0.1:{free_port()}"
            env = {
                **os.environ,
                "GOVERNANCE_HOME": str(HOME),
                "DAGSTER_HOME": str(HOME / "dagster"),
                "GOVERNANCE_ESTATE": str(estate),
                "GOVERNANCE_IMAGE_REGISTRY": registry,
                "GOVERNANCE_IMAGE_STORAGE": str(root / "storage"),
                "GOVERNANCE_CLI_WORKER": "off",
            }
            start_registry(registry, root / "registry")
            bin_dir = tree / ".venv" / "bin"
            try:
                day = [str(bin_dir / "dagster"), "asset", "materialize", "-m", "pipelines.definitions"]
                subprocess.run([*day, "-a", "defs", "--select", DAY], cwd=tree, env=env, check=True)
            finally:
                governance = [str(bin_dir / "python"), "-m", "governance", "--estate", str(estate)]
                subprocess.run([*governance, "release", "down", "--all"], cwd=tree, env=env, check=True)
                stop_registry(root / "registry")
            _pack(commit, tree)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True
            )


def _pack(commit: str, tree: Path) -> None:
    python = str(tree / ".venv" / "bin" / "python")
    script = f"import json; from importlib import metadata as m; print(json.dumps({{t: m.version(t) for t in {TOOLS!r}}}))"
    versions = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True)
    store = HOME / "datasets" / "data" / "penguins.csv"
    dvc = yaml.safe_load((store.parent / "penguins.csv.dvc").read_text())["outs"][0]
    manifest = {
        "commit": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", commit], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "versions": json.loads(versions.stdout),
        "dataset": {"md5": dvc["md5"], "sha256": hashlib.sha256(store.read_bytes()).hexdigest()},
        "model_versions": ["1"],
        "written_at": HOME.stat().st_mtime,
    }
    FIXTURES.mkdir(exist_ok=True)
    (FIXTURES / f"home-{commit}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with tarfile.open(FIXTURES / f"home-{commit}.tar.gz", "w:gz") as archive:
        archive.add(HOME, arcname=HOME.name)


if __name__ == "__main__":
    make(sys.argv[1] if len(sys.argv) > 1 else WRITTEN_BY)

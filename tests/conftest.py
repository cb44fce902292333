"""Shared fixtures: every test runs in its own temporary GOVERNANCE_HOME."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
import yaml

from governance.config import DatasetSpec, Estate, load_estate

REPO = Path(__file__).resolve().parent.parent
ESTATE_FILE = REPO / "governance.yaml"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("GOVERNANCE_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def penguins_csv() -> Path:
    """The real raw source: the penguins.csv that the palmerpenguins package ships (344 rows)."""
    return Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv")))


@pytest.fixture
def estate_with_source(tmp_path: Path) -> Callable[[Path], Estate]:
    """The repository's estate, with the penguins source pointed at another file."""

    def make(source: Path) -> Estate:
        data = yaml.safe_load(ESTATE_FILE.read_text())
        data["datasets"]["penguins"]["source"] = {"path": str(source)}
        for key in ("cleaner", "suite"):
            value = data["datasets"]["penguins"][key]
            data["datasets"]["penguins"][key] = str(REPO / value)
        path = tmp_path / "estate" / "governance.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return load_estate(path)

    return make


@pytest.fixture
def penguins_spec() -> DatasetSpec:
    return load_estate(ESTATE_FILE).dataset("penguins")


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Path, str], Path]:
    def make(source: Path, name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(source, target)
        return target

    return make

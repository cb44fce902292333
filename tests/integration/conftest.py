from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import mlflow_server, postgres_server


@pytest.fixture(scope="session")
def mlflow_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def clean_csv(tmp_path: Path, penguins_csv: Path) -> Path:
    """The published shape of the sample: complete rows only, which passes the suite."""
    lines = penguins_csv.read_text().splitlines()
    kept = [lines[0], *(line for line in lines[1:] if "NA" not in line.split(","))]
    path = tmp_path / "clean.csv"
    path.write_text("\n".join(kept) + "\n")
    return path

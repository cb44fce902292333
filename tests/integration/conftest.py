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


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow scikit-learn model directory of the sample classifier."""
    from importlib import resources

    import mlflow.sklearn
    import pandas as pd

    from governance.plugins import load_callable
    from tests.conftest import repository_estate_data, write_estate

    raw = pd.read_csv(Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv"))))
    estate = write_estate(repository_estate_data(), tmp_path_factory.mktemp("estate"))
    frame = load_callable(estate.dataset("penguins").cleaner)(raw)
    train = load_callable(estate.model("penguin_classifier").trainer)
    model = train(frame.drop(columns=["species"]), frame["species"], params={"max_iter": 1000}, seed=42)
    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.sklearn.save_model(model, str(path))
    return path


@pytest.fixture
def clean_csv(tmp_path: Path, penguins_csv: Path) -> Path:
    """The published shape of the sample: complete rows only, which passes the suite."""
    lines = penguins_csv.read_text().splitlines()
    kept = [lines[0], *(line for line in lines[1:] if "NA" not in line.split(","))]
    path = tmp_path / "clean.csv"
    path.write_text("\n".join(kept) + "\n")
    return path

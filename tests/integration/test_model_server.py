"""The sample model server as its clients and operators meet it, run from source against real
models: MLflow's scoring protocol (through MLflow's own scoring client), Prometheus metrics, and a
model version fetched from a real `mlflow server` and served only when its digest matches."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from governance.home import GovernanceHome
from governance.models.digest import DIGEST_TAG, model_digest
from governance.models.registry import ModelRegistry
from governance.models.settings import mlflow_settings
from tests.conftest import repository_estate_data, write_estate
from tests.services import model_server

ROWS = [
    {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7,
     "flipper_length_mm": 181, "body_mass_g": 3750, "sex": "male"},
    {"island": "Biscoe", "bill_length_mm": 46.5, "bill_depth_mm": 13.5,
     "flipper_length_mm": 210, "body_mass_g": 4550, "sex": "female"},
]  # fmt: skip


def call(url: str, body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with model_server(model_dir, tmp_path_factory.mktemp("logs")) as url:
        yield url


def test_the_services_own_url_says_what_serves_and_how_to_ask(server: str) -> None:
    status, index = call(server + "/")
    assert status == 200 and index["model_version"] and "/predict" in index["endpoints"]


def test_clients_written_for_mlflow_models_serve_work_unchanged(server: str) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    expected = call(server + "/predict", {"instances": ROWS})[1]["predictions"]
    address = urlsplit(server)
    client = ScoringServerClient(address.hostname, address.port)
    client.ping()
    answer = client.invoke(pd.DataFrame(ROWS))  # MLflow's own encoding of a DataFrame
    assert list(answer.get_predictions(predictions_format="ndarray")) == expected
    frame = pd.DataFrame(ROWS)
    for body in (
        {"dataframe_split": frame.to_dict(orient="split")},
        {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"inputs": ROWS},
        {"instances": frame.to_dict(orient="list")},
    ):
        status, answer = call(server + "/invocations", body)
        assert status == 200, answer
        assert answer["predictions"] == expected
        assert answer["model_version"] == "penguin-classifier/1"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ({"instances": ROWS}, "text/csv", 415),
        ({"instances": ROWS, "dataframe_records": ROWS}, "application/json", 400),
        ({"rows": ROWS}, "application/json", 400),
        ({"dataframe_split": {"columns": ["island"]}}, "application/json", 400),
        ({"instances": [{"island": "Biscoe"}]}, "application/json", 400),
        ({"instances": []}, "application/json", 400),
        ({"instances": [dict(ROWS[0], bill_length_mm="long")]}, "application/json", 400),
        (b"{not json", "application/json", 400),
    ],
)
def test_bad_scoring_requests_are_answered_as_mlflow_answers_them(
    server: str, body: Any, content_type: str, status: int
) -> None:
    answered, error = call(server + "/invocations", body, content_type)
    assert answered == status
    assert error["error_code"] == "BAD_REQUEST" and error["message"]


def test_metrics_count_requests_errors_and_latency_by_model_version(server: str) -> None:
    for _ in range(3):
        call(server + "/invocations", {"dataframe_records": ROWS})
    call(server + "/invocations", {"rows": ROWS})
    call(server + "/no/such/path")
    status, text = call(server + "/metrics")
    assert status == 200
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}  # fmt: skip
    version = 'model_version="penguin-classifier/1"'
    ok = f'model_server_requests_total{{endpoint="/invocations",{version},status="200"}}'
    bad = f'model_server_errors_total{{endpoint="/invocations",{version},status="400"}}'
    latency = f'model_server_request_duration_seconds_count{{endpoint="/invocations",{version}}}'
    assert samples[ok] >= 3 and samples[bad] >= 1 and samples[latency] >= 4
    unmatched = f'model_server_requests_total{{endpoint="unmatched",{version},status="404"}}'
    assert samples[unmatched] >= 1  # a bounded label, never the raw path
    assert samples[f'model_server_model_info{{app_version="1.0.0",{version}}}'] == 1


@pytest.fixture(scope="module")
def registered(
    mlflow_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelRegistry, str, str]:
    """A version of the classifier trained and registered on a real `mlflow server` (proxied
    artifacts), as the platform registers every version: (registry, name, version)."""
    from governance.models.training import train_and_register
    from governance.plugins import load_callable

    estate = write_estate(repository_estate_data(), tmp_path_factory.mktemp("estate"))
    spec = estate.model("penguin_classifier")
    raw = pd.read_csv(Path(str(resources.files("palmerpenguins").joinpath("data/penguins.csv"))))
    frame = load_callable(estate.dataset("penguins").cleaner)(raw)
    registry = ModelRegistry(mlflow_settings(GovernanceHome.resolve(), mlflow_server_url))
    trained = train_and_register(
        spec, frame, dataset_md5="md5", dataset_source="x", code_version="c", registry=registry, tags={}
    )
    return registry, spec.registered_name, trained.version


def test_a_version_is_registered_with_its_content_digest(
    registered: tuple[ModelRegistry, str, str], tmp_path: Path
) -> None:
    registry, name, version = registered
    recorded = registry.version(name, version).tags[DIGEST_TAG]
    assert recorded == model_digest(registry.download(name, version, tmp_path / "model"))


@pytest.mark.parametrize("digest", ["registered", "other", "unset"])
def test_a_fetched_version_is_served_only_when_its_digest_matches(
    digest: str,
    registered: tuple[ModelRegistry, str, str],
    mlflow_server_url: str,
    model_dir: Path,
    tmp_path: Path,
) -> None:
    registry, name, version = registered
    pinned = {
        "registered": registry.version(name, version).tags[DIGEST_TAG],
        "other": "sha256:" + "0" * 64,
        "unset": "",
    }[digest]
    fetched = tmp_path / "fetched"
    with model_server(
        model_dir,  # not used: MODEL_URI wins
        tmp_path,
        ready=False,
        MODEL_URI=f"models:/{name}/{version}",
        MODEL_DIGEST=pinned,
        MLFLOW_TRACKING_URI=mlflow_server_url,
        MODEL_DIR=str(fetched),
    ) as url:
        status, answer = _settled(url)
        if digest == "registered":
            assert status == 200, answer
            assert answer["model_version"] == f"{name}/{version}"
            assert call(url + "/ping")[0] == 200
            scored = call(url + "/invocations", {"dataframe_records": ROWS})[1]
            assert scored["model_version"] == f"{name}/{version}" and len(scored["predictions"]) == 2
            assert model_digest(fetched) == pinned
        else:
            assert status == 503
            assert ("is not MODEL_DIGEST" if digest == "other" else "MODEL_DIGEST is not set") in str(
                answer
            )
            assert call(url + "/ping")[0] == 404
            assert call(url + "/invocations", {"dataframe_records": ROWS})[0] == 503
            assert not fetched.exists() and not fetched.with_name("fetched.partial").exists()


def _settled(url: str, timeout_s: float = 60.0) -> tuple[int, Any]:
    """/readyz once the background fetch has finished, one way or the other."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        status, answer = call(url + "/readyz")
        if status == 200 or ("retrying" not in str(answer) and "not loaded" not in str(answer)):
            return status, answer
        if time.monotonic() > deadline:
            return status, answer
        time.sleep(0.3)

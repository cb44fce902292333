"""Serves the MLflow model version it is started with.

The model (an MLflow scikit-learn model: `MLmodel` + `model.skops`, or `model.pkl` from older MLflow)
is either fetched from the MLflow server and verified ($MODEL_URI, $MODEL_DIGEST: app/registry.py)
or mounted at $MODEL_DIR and named by $MODEL_VERSION (`name/version`). Without a model
the server is healthy but not ready, so an image can be smoke-tested on its own and a release waits
for readiness.

Beside its own `/predict`, it speaks MLflow's scoring protocol (`GET /ping`, `POST /invocations` with
`dataframe_split`, `dataframe_records`, `instances` or `inputs`), so a client written for
`mlflow models serve` works unchanged, and exposes Prometheus metrics at `/metrics`, labelled with
the model version that answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel

APP_VERSION = "1.0.0"
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


class PredictRequest(BaseModel):
    instances: list[dict[str, Any]]


class Served:
    model: Any = None
    version: str = ""
    error: str = ""


served = Served()

LABELS = ["endpoint", "model_version"]
REQUESTS = Counter("model_server_requests", "Requests answered", [*LABELS, "status"])
ERRORS = Counter(
    "model_server_errors", "Requests answered with a 4xx or 5xx status", [*LABELS, "status"]
)
LATENCY = Histogram("model_server_request_duration_seconds", "Time to answer a request", LABELS)
MODEL = Gauge(
    "model_server_model_info",
    "The model version loaded (1) and its application",
    ["model_version", "app_version"],
)


# skops refuses to build types it is not told to trust; a model may only use these libraries.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


def load(model_dir: Path, version: str) -> None:
    skops_file, pickled = model_dir / "model.skops", model_dir / "model.pkl"
    if skops_file.is_file():
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=skops_file)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            served.error = f"model uses types outside the trusted libraries: {', '.join(refused)}"
            return
        served.model = skops.io.load(skops_file, trusted=untrusted)
    elif pickled.is_file():
        with pickled.open("rb") as handle:
            served.model = cloudpickle.load(handle)
    else:
        served.error = f"no model.skops or model.pkl in {model_dir}"
        return
    served.version = version
    MODEL.labels(model_version=version, app_version=APP_VERSION).set(1)


def fetch_and_load(model_uri: str) -> None:
    """Download and verify the version from the MLflow server, then load it; a network failure
    is retried with backoff (the pod stays alive and not ready meanwhile), a wrong digest is not."""
    from app.registry import FetchError, fetch, parse

    delay = 1.0
    while True:
        try:
            directory = fetch(
                os.environ.get("MLFLOW_TRACKING_URI", ""),
                model_uri,
                os.environ.get("MODEL_DIGEST", ""),
                Path(os.environ.get("MODEL_DIR", "/tmp/model")),
            )
        except FetchError as exc:
            served.error = str(exc)
            return
        except (OSError, ValueError) as exc:
            served.error = f"fetching {model_uri}: {exc}; retrying in {delay:.0f} s"
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        name, version = parse(model_uri)
        load(directory, f"{name}/{version}")
        return


@asynccontextmanager
async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
    model_uri = os.environ.get("MODEL_URI")
    if model_uri:  # in the background: /healthz answers while the model downloads
        threading.Thread(target=fetch_and_load, args=(model_uri,), daemon=True).start()
    else:
        load(Path(os.environ.get("MODEL_DIR", "/model")), os.environ.get("MODEL_VERSION", ""))
    yield


app = FastAPI(title="penguins model server", version=APP_VERSION, lifespan=lifespan)


@app.middleware("http")
async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    endpoint = getattr(route, "path", "unmatched")  # a bounded label: never the raw URL
    labels = {"endpoint": endpoint, "model_version": served.version}
    LATENCY.labels(**labels).observe(time.perf_counter() - started)
    REQUESTS.labels(**labels, status=str(response.status_code)).inc()
    if response.status_code >= 400:
        ERRORS.labels(**labels, status=str(response.status_code)).inc()
    return response


@app.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/")
def index() -> dict[str, Any]:
    """What a person opening the service's URL sees: what serves, and where to ask it."""
    return {
        "service": "penguin species classifier",
        "model_version": served.version,
        "predict": 'POST /predict {"instances": [{...measurements...}]}',
        "endpoints": ["/predict", "/invocations", "/version", "/healthz", "/readyz", "/metrics"],
    }


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
def readyz() -> dict[str, str]:
    if served.model is None:
        raise HTTPException(503, served.error or "model not loaded")
    return {"status": "ready", "model_version": served.version}


@app.get("/version")
def version() -> dict[str, str]:
    return {
        "app_version": APP_VERSION,
        "model_version": served.version,
        "image": os.environ.get("IMAGE_REF", ""),
        "color": os.environ.get("COLOR", ""),
    }


@app.post("/predict")
def predict(request: PredictRequest) -> dict[str, Any]:
    if served.model is None:
        raise HTTPException(503, served.error or "model not loaded")
    if not request.instances:
        raise HTTPException(422, "instances is empty")
    frame = pd.DataFrame(request.instances)
    missing = [f for f in FEATURES if f not in frame.columns]
    if missing:
        raise HTTPException(422, f"missing features: {', '.join(missing)}")
    labels = served.model.predict(frame[FEATURES])
    return {"predictions": [str(label) for label in labels], "model_version": served.version}


@app.get("/ping")
def ping() -> Response:
    """MLflow's health check: 200 once the model is loaded."""
    return Response(
        "\n", status_code=200 if served.model is not None else 404, media_type="application/json"
    )


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    """MLflow's scoring endpoint: one of its JSON input formats in, `{"predictions": [...]}` out;
    errors as MLflow reports them (`error_code` and `message`)."""
    if served.model is None:
        return _mlflow_error(503, "SERVICE_UNAVAILABLE", served.error or "model not loaded")
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        return _mlflow_error(
            415, "BAD_REQUEST", f"send application/json, not {content_type or 'nothing'!r}"
        )
    try:
        frame = _frame(json.loads(await request.body()))
    except (ValueError, TypeError) as exc:
        return _mlflow_error(400, "BAD_REQUEST", str(exc))
    missing = [f for f in FEATURES if f not in frame.columns]
    if missing:
        return _mlflow_error(400, "BAD_REQUEST", f"missing features: {', '.join(missing)}")
    try:  # off the event loop, as MLflow's own server does
        labels = await asyncio.to_thread(served.model.predict, frame[FEATURES])
    except Exception as exc:  # the model refuses these values: the request's fault, as in MLflow
        return _mlflow_error(400, "BAD_REQUEST", f"the model cannot score this input: {exc}")
    return JSONResponse(
        {"predictions": [str(label) for label in labels], "model_version": served.version}
    )


def _frame(payload: Any) -> pd.DataFrame:
    formats = ("dataframe_split", "dataframe_records", "instances", "inputs")
    given = [key for key in formats if isinstance(payload, dict) and key in payload]
    if len(given) != 1:
        raise ValueError(f"send exactly one of {', '.join(formats)}")
    data = payload[given[0]]
    if given[0] == "dataframe_split":
        if not isinstance(data, dict) or not {"columns", "data"} <= set(data):
            raise ValueError("dataframe_split needs `columns` and `data`")
        return pd.DataFrame(data["data"], columns=data["columns"], index=data.get("index"))
    if isinstance(data, dict):  # instances/inputs as columns: {"island": [...], ...}
        return pd.DataFrame(data)
    if not isinstance(data, list) or not data or not all(isinstance(row, dict) for row in data):
        raise ValueError(f"{given[0]} must be a non-empty list of records")
    return pd.DataFrame(data)


def _mlflow_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)

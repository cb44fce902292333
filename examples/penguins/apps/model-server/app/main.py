"""Serves the MLflow model version it is started with.

The model directory (an MLflow scikit-learn model: `MLmodel` + `model.skops`, or `model.pkl` from
older MLflow) is mounted at $MODEL_DIR and named by $MODEL_VERSION (`name/version`). Without a model
the server is healthy but not ready, so an image can be smoke-tested on its own and a release waits
for readiness.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
from fastapi import FastAPI, HTTPException
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


@asynccontextmanager
async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
    load(Path(os.environ.get("MODEL_DIR", "/model")), os.environ.get("MODEL_VERSION", ""))
    yield


app = FastAPI(title="penguins model server", version=APP_VERSION, lifespan=lifespan)


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

"""The one `Definitions` of the code location, assembled from `governance.yaml`.

Cross-cutting policy (retries for transient failures) is applied here, once. Only light modules are
imported at load: Dagster reloads definitions at the start of every run.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from governance.config import Estate, load_estate
from pipelines.datasets import dataset_definitions
from pipelines.executor import governed_multiprocess_executor
from pipelines.housekeeping import housekeeping
from pipelines.images import image_definitions
from pipelines.models import model_definitions, retrain_job
from pipelines.ops import alert_sensors, dataset_quality, lineage_outbox_sensor
from pipelines.releases import blocking_checks, release_definitions
from pipelines.resources import (
    AlertsResource,
    AuditResource,
    DatasetStoreResource,
    ExpectationsResource,
    ImagesResource,
    LineageResource,
    MlflowResource,
)

# The repository's estate, or another one named the way the `governance` CLI takes it.
ESTATE_FILE = Path(
    os.environ.get("GOVERNANCE_ESTATE") or Path(__file__).resolve().parent.parent / "governance.yaml"
)

# Transient failures (locks, a service briefly down) retry with backoff; permanent ones raise
# dg.Failure(allow_retries=False) and fail at once.
TRANSIENT_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def build_definitions(estate: Estate) -> dg.Definitions:
    datasets = [
        d for spec in estate.datasets.values() for d in dataset_definitions(spec, TRANSIENT_RETRY)
    ]
    models = [
        d
        for spec in estate.models.values()
        for d in model_definitions(spec, estate.dataset(spec.dataset), TRANSIENT_RETRY)
    ]
    images = [
        d
        for spec in estate.images.apps.values()
        for d in image_definitions(spec, estate.images, estate.alerts, TRANSIENT_RETRY)
    ]
    blocking = blocking_checks([*datasets, *models, *images])
    releases = [
        release_definitions(spec, estate, blocking, TRANSIENT_RETRY) for spec in estate.releases.values()
    ]
    quality_job, quality_schedule = dataset_quality([dg.AssetKey(name) for name in estate.datasets])
    assets = [*datasets, *models, *images, *[a for r in releases for a in r.assets]]
    checks = [check.key for a in assets for check in a.check_specs]
    housekeeping_job, housekeeping_schedule = housekeeping(estate, checks)
    return dg.Definitions(
        assets=assets,
        jobs=[
            quality_job,
            housekeeping_job,
            *[retrain_job(spec) for spec in estate.models.values()],
            *[job for r in releases for job in r.jobs],
        ],
        schedules=[quality_schedule, housekeeping_schedule],
        sensors=[
            lineage_outbox_sensor(estate.alerts),
            *alert_sensors(estate.alerts),
            *[r.sensor for r in releases],
        ],
        executor=governed_multiprocess_executor,
        resources={
            "datasets": DatasetStoreResource(),
            "expectations": ExpectationsResource(),
            "mlflow": MlflowResource(),
            "lineage": LineageResource(),
            "audit": AuditResource(),
            "images": ImagesResource(),
            "alerting": AlertsResource(),
        },
    )


defs = build_definitions(load_estate(ESTATE_FILE))

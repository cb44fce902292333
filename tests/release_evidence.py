"""A release candidate of the penguin service and gate evidence that passes it, for the tests that
drive the release controller directly against a cluster (the API server double or a real one)."""

from __future__ import annotations

import time
from typing import Any

from governance.releases.candidate import Candidate, ServedModel
from governance.releases.gates import CheckEvidence, Evidence, required_checks

RELEASE = "penguin_service"
CHECKS = {"penguins": ["suite"], "penguin_classifier": ["gate"], "model_server": ["smoke"]}


def candidate(image: str, model_version: str) -> Candidate:
    """The candidate serving `image` (by digest) and penguin-classifier/`model_version`."""
    model = ServedModel(
        "penguin_classifier", "penguin-classifier", model_version, "penguins", "md5-" + model_version
    )
    return Candidate(RELEASE, "model_server", image, image.rpartition("@")[2], "sha256:manifests", model)


def required(c: Candidate) -> Any:
    return required_checks(c, CHECKS)


def passing(c: Candidate) -> Evidence:
    checks = [CheckEvidence(r.asset, r.check, r.version, True, time.time()) for r in required(c)]
    return Evidence(checks, ["challenger"], smoke_ok=None)

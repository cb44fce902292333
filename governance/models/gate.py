"""Apply the promotion policy to a registered version: its metrics, and the champion's on the same
held-out rows. Moving the `challenger` alias on the outcome is the caller's governed action.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from governance.config import ModelSpec
from governance.models.metrics import classification_metrics
from governance.models.policy import GateDecision, evaluate_gate
from governance.models.registry import ModelRegistry
from governance.models.training import DATASET_MD5_TAG, held_out

if TYPE_CHECKING:
    import pandas as pd

CHALLENGER = "challenger"
CHAMPION = "champion"
GATE_STATUS_TAG = "governance.gate.status"
GATE_REASONS_TAG = "governance.gate.reasons"


@dataclass(frozen=True)
class GateOutcome:
    version: str
    dataset_md5: str
    decision: GateDecision
    candidate_metrics: dict[str, float]
    champion_version: str | None
    champion_metrics: dict[str, float] | None


def gate_version(
    spec: ModelSpec, registry: ModelRegistry, version: str, frame: pd.DataFrame
) -> GateOutcome:
    """Judge `version` on the held-out rows of its own dataset version (`frame`). A gate that could
    not decide says so on the version (`error` and why), never leaves it looking ungated."""
    name = spec.registered_name
    try:
        candidate = registry.version(name, version)
        candidate_metrics = registry.run_metrics(str(candidate.run_id))
        champion = registry.version_for_alias(name, CHAMPION)
        champion_metrics = None
        if champion is not None and str(champion.version) != version:
            features, labels = held_out(frame, spec)
            # Loaded through this registry's own client: a `models:/` URI would resolve against
            # MLflow's process-global registry URI, unset in a step process that did not train.
            model = registry.load_model(name, str(champion.version))
            champion_metrics = classification_metrics(list(labels), list(model.predict(features)))
        decision = evaluate_gate(
            candidate_metrics, spec.thresholds, champion_metrics, spec.max_regression
        )
    except Exception as exc:
        _record_error(registry, name, version, exc)
        raise
    status = "passed" if decision.passed else "failed"
    registry.set_tags(
        name, version, {GATE_STATUS_TAG: status, GATE_REASONS_TAG: "; ".join(decision.reasons)}
    )
    return GateOutcome(
        version=version,
        dataset_md5=str(candidate.tags.get(DATASET_MD5_TAG, "")),
        decision=decision,
        candidate_metrics=candidate_metrics,
        champion_version=str(champion.version) if champion is not None else None,
        champion_metrics=champion_metrics,
    )


def _record_error(registry: ModelRegistry, name: str, version: str, exc: Exception) -> None:
    """Best effort: the registry may be what failed, and the gate's own error is what to raise."""
    from governance.redaction import redact

    lines = str(exc).strip().splitlines()
    reason = redact(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)
    with contextlib.suppress(Exception):
        registry.set_tags(name, version, {GATE_STATUS_TAG: "error", GATE_REASONS_TAG: reason})

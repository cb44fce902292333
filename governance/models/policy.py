"""The promotion policy for a model version: a pure function, shared by the asset check, the CLI
and the tests, so the thresholds exist in exactly one place (`governance.yaml`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    metric: str
    kind: str  # "threshold" or "regression"
    observed: float
    required: float
    passed: bool

    def describe(self) -> str:
        if self.kind == "threshold":
            relation = ">=" if self.passed else "<"
            return f"{self.metric} {self.observed:.4f} {relation} minimum {self.required:.4f}"
        return (
            f"{self.metric} {self.observed:.4f} {'>=' if self.passed else '<'} champion minus allowed "
            f"regression {self.required:.4f}"
        )


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    criteria: tuple[Criterion, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(c.describe() for c in self.criteria if not c.passed)


def evaluate_gate(
    candidate: Mapping[str, float],
    thresholds: Mapping[str, float],
    champion: Mapping[str, float] | None = None,
    max_regression: Mapping[str, float] | None = None,
) -> GateDecision:
    """Pass only if every threshold is met and no metric falls further below the champion's (on
    the same held-out data) than allowed. A missing metric fails its criterion, never passes it."""
    criteria = [
        Criterion(
            metric,
            "threshold",
            candidate.get(metric, float("nan")),
            minimum,
            _at_least(candidate.get(metric), minimum),
        )
        for metric, minimum in sorted(thresholds.items())
    ]
    if champion is not None:
        for metric, allowed in sorted((max_regression or {}).items()):
            floor = champion.get(metric, float("nan")) - allowed
            observed = candidate.get(metric, float("nan"))
            criteria.append(
                Criterion(metric, "regression", observed, floor, _at_least(candidate.get(metric), floor))
            )
    return GateDecision(all(c.passed for c in criteria), tuple(criteria))


def _at_least(value: float | None, minimum: float) -> bool:
    # NaN compares False both ways, so a missing or NaN metric can never pass.
    return value is not None and value >= minimum

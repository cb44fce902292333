from __future__ import annotations

import math

import pytest

from governance.models.policy import evaluate_gate

THRESHOLDS = {"accuracy": 0.9, "f1_macro": 0.9}
ALLOWED = {"accuracy": 0.02}


@pytest.mark.parametrize(
    ("candidate", "champion", "passed", "failing"),
    [
        ({"accuracy": 0.95, "f1_macro": 0.94}, None, True, []),
        ({"accuracy": 0.90, "f1_macro": 0.90}, None, True, []),  # boundaries pass
        ({"accuracy": 0.89, "f1_macro": 0.95}, None, False, [("accuracy", "threshold")]),
        ({"accuracy": 0.95}, None, False, [("f1_macro", "threshold")]),  # missing metric fails
        ({"accuracy": math.nan, "f1_macro": 0.95}, None, False, [("accuracy", "threshold")]),
        ({"accuracy": 0.95, "f1_macro": 0.95}, {"accuracy": 0.96}, True, []),  # within allowed drop
        ({"accuracy": 0.93, "f1_macro": 0.95}, {"accuracy": 0.96}, False, [("accuracy", "regression")]),
        ({"accuracy": 0.99, "f1_macro": 0.95}, {"accuracy": 0.96}, True, []),  # better than champion
        (
            {"accuracy": 0.85, "f1_macro": 0.95},
            {"accuracy": 0.96},
            False,
            [("accuracy", "threshold"), ("accuracy", "regression")],
        ),
    ],
)
def test_gate(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    passed: bool,
    failing: list[tuple[str, str]],
) -> None:
    decision = evaluate_gate(candidate, THRESHOLDS, champion, ALLOWED)
    assert decision.passed is passed
    assert [(c.metric, c.kind) for c in decision.criteria if not c.passed] == failing
    assert len(decision.reasons) == len(failing)


def test_regression_criteria_only_with_a_champion() -> None:
    decision = evaluate_gate({"accuracy": 0.95, "f1_macro": 0.95}, THRESHOLDS, None, ALLOWED)
    assert {c.kind for c in decision.criteria} == {"threshold"}


def test_reasons_say_what_failed_and_by_how_much() -> None:
    decision = evaluate_gate(
        {"accuracy": 0.93, "f1_macro": 0.95}, THRESHOLDS, {"accuracy": 0.96}, ALLOWED
    )
    assert decision.reasons == ("accuracy 0.9300 < champion minus allowed regression 0.9400",)

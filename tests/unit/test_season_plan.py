"""A season's plan: the weekly rhythm, and days that cannot happen refused before any day runs."""

from __future__ import annotations

import pytest

from governance.errors import PermanentError
from governance.season.data import DEFECTS
from governance.season.plan import SeasonPlan


def test_every_week_brings_each_event_and_the_defects_take_turns() -> None:
    plan = SeasonPlan.weekly(30)
    kinds = [*DEFECTS, *DEFECTS]
    assert plan.defects == dict(zip((3, 10, 11, 17, 24, 25), kinds, strict=False))
    assert set(plan.defects.values()) == set(DEFECTS)  # a month brings every kind
    assert (plan.rollbacks, plan.heals, plan.restarts) == (
        {5, 12, 19, 26},
        {6, 13, 20, 27},
        {7, 14, 21, 28},
    )
    assert plan.events(1) == [] and plan.events(7) == ["restart"]
    assert SeasonPlan(3, defects={2: "truncated"}, restarts=frozenset({2})).events(2) == [
        "restart",
        "defect:truncated",
    ]


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        (SeasonPlan(0), "at least one day"),
        (SeasonPlan(3, defects={4: "truncated"}), "defect on day 4: the season has days 1 to 3"),
        (SeasonPlan(3, defects={2: "typo"}), "defect 'typo' on day 2: one of grams_as_kilograms"),
        (SeasonPlan(3, defects={1: "truncated"}), "day 1 cannot have a defect"),
        (SeasonPlan(3, rollbacks=frozenset({1})), "rollback on day 1: two releases must come before"),
        (
            SeasonPlan(3, defects={2: "truncated"}, rollbacks=frozenset({2})),
            "rollback on day 2: two releases",
        ),
        (SeasonPlan(3, heals=frozenset({0})), "heal on day 0"),
    ],
)
def test_a_day_that_cannot_happen_is_refused_with_its_reason(plan: SeasonPlan, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        plan.checked()

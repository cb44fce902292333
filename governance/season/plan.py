"""What happens on which day of a season: the feed's defects and the operators' and machine's events."""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.errors import PermanentError
from governance.season.data import DEFECTS

ROLLBACK, HEAL, RESTART = "rollback", "heal", "restart"


@dataclass(frozen=True)
class SeasonPlan:
    days: int
    seed: int = 42
    defects: dict[int, str] = field(default_factory=dict)  # day -> defect kind (data.DEFECTS)
    rollbacks: frozenset[int] = frozenset()
    heals: frozenset[int] = frozenset()  # the serving container dies after the day's run
    restarts: frozenset[int] = frozenset()  # the machine restarts before the day's run

    @classmethod
    def weekly(cls, days: int, seed: int = 42) -> SeasonPlan:
        """Every week: a defective feed on its third day (and every second week on its fourth too,
        each kind in turn), a rollback on its fifth, a dying container on its sixth and a restart
        of the machine on its seventh."""
        kinds = list(DEFECTS)
        on = sorted([*range(3, days + 1, 7), *range(11, days + 1, 14)])
        defects = {day: kinds[i % len(kinds)] for i, day in enumerate(on)}

        def weekday(n: int) -> frozenset[int]:
            return frozenset(range(n, days + 1, 7))

        return cls(days, seed, defects, weekday(5), weekday(6), weekday(7)).checked()

    def checked(self) -> SeasonPlan:
        """The plan, once every day it names can happen: a refusal is a plan error, not a day's."""
        if self.days < 1:
            raise PermanentError(f"a season has at least one day, not {self.days}")
        named = {**{d: "defect" for d in self.defects}, **{d: ROLLBACK for d in self.rollbacks}}
        named |= {d: HEAL for d in self.heals} | {d: RESTART for d in self.restarts}
        for day, what in sorted(named.items()):
            if not 1 <= day <= self.days:
                raise PermanentError(f"{what} on day {day}: the season has days 1 to {self.days}")
        for day, kind in sorted(self.defects.items()):
            if kind not in DEFECTS:
                raise PermanentError(f"defect {kind!r} on day {day}: one of {', '.join(DEFECTS)}")
        if 1 in self.defects:
            raise PermanentError("day 1 cannot have a defect: nothing would be released to keep")
        for day in sorted(self.rollbacks):
            if len([d for d in range(1, day + 1) if d not in self.defects]) < 2:
                raise PermanentError(f"rollback on day {day}: two releases must come before it")
        return self

    def events(self, day: int) -> list[str]:
        """The day's events, in the order they happen."""
        return [
            *([RESTART] if day in self.restarts else []),
            *([f"defect:{self.defects[day]}"] if day in self.defects else []),
            *([HEAL] if day in self.heals else []),
            *([ROLLBACK] if day in self.rollbacks else []),
        ]

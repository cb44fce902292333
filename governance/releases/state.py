"""What the platform remembers about a release between runs: the candidate, which versions each
color got, the previous color, pending scale-downs, consecutive probe failures, the last decision.

Which color *serves* is never taken from here: the target is asked (the service's own
configuration), so a promotion killed half-way is reconciled from what is observed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from governance.errors import PermanentError
from governance.releases.candidate import Candidate

COLORS = ("blue", "green")


def other(color: str | None) -> str:
    return "green" if color == "blue" else "blue"


@dataclass
class Decision:
    action: str  # promoted, refused, rolled back, restarted, unchanged, failed
    candidate: str  # release version
    reasons: list[str]
    at: float = field(default_factory=time.time)
    active_color: str | None = None


@dataclass
class ReleaseState:
    candidate: dict[str, str] | None = None
    colors: dict[str, dict[str, str]] = field(default_factory=dict)  # color -> candidate dict
    previous: str | None = None
    scale_down_at: dict[str, float] = field(default_factory=dict)
    failures: int = 0
    last_decision: dict[str, Any] | None = None  # every decision is in the audit log

    def on(self, color: str) -> Candidate | None:
        data = self.colors.get(color)
        return Candidate.from_dict(data) if data else None

    def held(self) -> list[Candidate]:
        """What the colors hold: each can serve again by a switch, so none of it is collected."""
        return [candidate for color in COLORS if (candidate := self.on(color))]

    def decide(self, decision: Decision) -> None:
        self.last_decision = asdict(decision)


class StateStore:
    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / "state.json"

    def load(self) -> ReleaseState:
        """The saved state; a corrupt or hand-edited file is refused with what to do about it."""
        from pydantic import TypeAdapter, ValidationError

        if not self.path.is_file():
            return ReleaseState()
        try:
            state = TypeAdapter(ReleaseState).validate_json(self.path.read_bytes(), strict=True)
            for color in state.colors:
                if color not in COLORS:
                    raise ValueError(f"unknown color {color!r}")
                state.on(color)
        except (OSError, ValueError, TypeError, ValidationError) as exc:
            reason = " ".join(str(exc).split())[:300]
            raise PermanentError(
                f"{self.path}: not a release state file ({reason}); restore it from a backup, or "
                "remove it to start afresh (every decision is in the audit log)"
            ) from None
        return state

    def save(self, state: ReleaseState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(state), indent=2))
        partial.replace(self.path)  # atomic: a killed writer leaves the old state, never half a file

    def save_candidate(self, candidate: Candidate) -> None:
        state = self.load()
        state.candidate = candidate.to_dict()
        self.save(state)

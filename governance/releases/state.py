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
from governance.home import GovernanceHome
from governance.releases.candidate import Candidate
from governance.shared_database import classified, connect

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
    """Where a release's state is kept (see `release_state`)."""

    def load(self) -> ReleaseState:
        raise NotImplementedError

    def save(self, state: ReleaseState) -> None:
        raise NotImplementedError

    def save_candidate(self, candidate: Candidate) -> None:
        state = self.load()
        state.candidate = candidate.to_dict()
        self.save(state)


class FileStateStore(StateStore):
    """The state in `directory/state.json`, on one machine."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / "state.json"

    def load(self) -> ReleaseState:
        """The saved state; a corrupt or hand-edited file is refused with what to do about it."""
        if not self.path.is_file():
            return ReleaseState()
        fix = "restore it from a backup, or remove it"
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise _unreadable(str(self.path), exc, fix) from None
        return _parsed(raw, str(self.path), fix)

    def save(self, state: ReleaseState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(state), indent=2))
        partial.replace(self.path)  # atomic: a killed writer leaves the old state, never half a file


class PostgresStateStore(StateStore):
    """The state as one row per release in the shared database, for runs on different machines."""

    _SCHEMA = """CREATE TABLE IF NOT EXISTS governance_release_state (
        release TEXT PRIMARY KEY, state TEXT NOT NULL, saved_at DOUBLE PRECISION NOT NULL)"""

    def __init__(self, url: str, release: str) -> None:
        self.url = url
        self.release = release

    def load(self) -> ReleaseState:
        with self._connect() as conn, classified(self._what):
            row = conn.execute(
                "SELECT state FROM governance_release_state WHERE release = %s", (self.release,)
            ).fetchone()
        where = f"the release state of {self.release} in the database"
        fix = f"restore it, or delete its row (release = '{self.release}')"
        return ReleaseState() if row is None else _parsed(row[0].encode(), where, fix)

    def save(self, state: ReleaseState) -> None:
        with self._connect() as conn, classified(self._what):
            conn.execute(
                "INSERT INTO governance_release_state (release, state, saved_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (release) "
                "DO UPDATE SET state = EXCLUDED.state, saved_at = EXCLUDED.saved_at",
                (self.release, json.dumps(asdict(state)), time.time()),
            )

    @property
    def _what(self) -> str:
        return f"release state of {self.release}"

    def _connect(self) -> Any:
        return connect(self.url, self._what, self._SCHEMA)


def _parsed(raw: bytes, where: str, fix: str) -> ReleaseState:
    from pydantic import TypeAdapter, ValidationError

    try:
        state = TypeAdapter(ReleaseState).validate_json(raw, strict=True)
        for color in state.colors:
            if color not in COLORS:
                raise ValueError(f"unknown color {color!r}")
            state.on(color)
    except (ValueError, TypeError, ValidationError) as exc:
        raise _unreadable(where, exc, fix) from None
    return state


def _unreadable(where: str, exc: Exception, fix: str) -> PermanentError:
    reason = " ".join(str(exc).split())[:300]
    return PermanentError(
        f"{where}: not a release state file ({reason}); {fix} to start afresh (every decision is "
        "in the audit log)"
    )


def release_state(home: GovernanceHome, release: str) -> StateStore:
    """Where `release`'s state is kept: the shared database when the home has one."""
    if home.database_url:
        return PostgresStateStore(home.database_url, release)
    return FileStateStore(home.dir("releases") / release)

"""The protocol every deploy target implements; the controller needs nothing else."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from governance.probes import Probe
from governance.releases.candidate import Candidate


class Target(Protocol):
    service_url: str

    def lock(self, timeout_s: float | None = None) -> AbstractContextManager[None]:
        """One promotion, rollback or heal at a time per release, across processes; with
        `timeout_s`, a TransientError once it is held that long by another."""
        ...

    def active_color(self) -> str | None:
        """The color the service routes to now, as observed; None before the first promotion."""
        ...

    def render(self, candidate: Candidate) -> str:
        """What would be applied for `candidate` (its digest is part of the release version)."""
        ...

    def deploy(self, color: str, candidate: Candidate) -> None: ...

    def wait_ready(self, color: str, timeout_s: float) -> Probe: ...

    def switch(self, color: str) -> None: ...

    def probe(self, color: str | None, path: str, body: Any = None, timeout_s: float = 5.0) -> Probe:
        """GET (or POST `body` to) `path` on one color directly, or through the service (None)."""
        ...

    def restart(self, color: str) -> None: ...

    def scale_down(self, color: str) -> None: ...

    def running(self, color: str) -> bool: ...

    def down(self) -> None:
        """Stop everything this target started for the release."""
        ...

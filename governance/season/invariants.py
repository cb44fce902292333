"""What must hold after every day of a season, whatever the day brought. Each check returns the
violations it found, as sentences a person can act on; none of them raises."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.audit.chain import verify
from governance.lineage.transport import FileTransport
from governance.season.plan import HEAL, RESTART, ROLLBACK

if TYPE_CHECKING:
    from governance.season.simulate import Season

# a day's outcome -> the audit actions it must have, and those it must not
RELEASED, REFUSED_FEED, REFUSED_MODEL = "released", "feed refused", "model refused by its gate"
RECORDS = {
    RELEASED: ("dataset.published", "model.registered", "model.gated", "release.promoted"),
    REFUSED_FEED: ("dataset.rejected",),
    REFUSED_MODEL: ("dataset.published", "model.registered", "model.gated"),
}
NEVER = {
    RELEASED: (),
    REFUSED_FEED: ("dataset.published", "model.registered", "release.promoted"),
    REFUSED_MODEL: ("release.promoted", "release.candidate"),
}
EVENT_RECORDS = {
    ROLLBACK: "release.rolled_back",
    HEAL: "release.restarted",
    RESTART: "release.restarted",
}


@dataclass
class Expected:
    """What should serve, what a rollback returns to, and every accepted day's versions."""

    serving: str | None = None  # model version
    previous: str | None = None
    days: dict[str, dict[str, str]] = field(default_factory=dict)  # day -> md5, sha256, model

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Expected:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def copy(self) -> Expected:
        return Expected(self.serving, self.previous, dict(self.days))

    def accepted(self, day: int, published: tuple[str, str], model: str, released: bool) -> Expected:
        """The day's dataset and model versions; the model serves if it was released."""
        md5, sha256 = published
        days = {**self.days, str(day): {"md5": md5, "sha256": sha256, "model": model}}
        if not released:
            return Expected(self.serving, self.previous, days)
        return Expected(model, self.serving, days)

    def rolled_back(self) -> Expected:
        return Expected(self.previous, self.serving, dict(self.days))


def check_day(
    season: Season,
    day: int,
    events: list[str],
    outcome: str,
    expected: Expected,
    serving_before_run: tuple[str | None, str | None, str | None],
    serving_after_run: tuple[str | None, str | None, str | None],
    actions: list[str],
    rng: random.Random,
) -> list[str]:
    moved = outcome != RELEASED and serving_after_run != serving_before_run
    refused = f"the day ({outcome}) moved the service: {serving_before_run} -> {serving_after_run}"
    return [
        *_audit(season, day, events, outcome, actions),
        *_serving(season, expected),
        *([refused] if moved else []),
        *_lineage(season, expected),
        *_checkouts(season, expected, rng),
    ]


def _audit(season: Season, day: int, events: list[str], outcome: str, actions: list[str]) -> list[str]:
    found = []
    broken = verify(season.services.audit_log().records())
    if broken is not None:
        found.append(f"audit verify: the chain breaks at record {broken.seq}: {broken.reason}")
    wanted = [*RECORDS[outcome], *(EVENT_RECORDS[e] for e in events if e in EVENT_RECORDS)]
    wanted += ["housekeeping.collected"] if season.housekeeping else []
    missing = [a for a in wanted if actions.count(a) < wanted.count(a)]
    if missing:
        found.append(f"day {day} has no audit record of: {', '.join(sorted(set(missing)))}")
    leaked = sorted({a for a in actions if a in NEVER[outcome]})
    if leaked:
        found.append(f"day {day} ({outcome}) recorded: {', '.join(leaked)}")
    return found


def _serving(season: Season, expected: Expected) -> list[str]:
    if expected.serving is None:
        return []
    found = []
    color, _, model = season.serving_now()
    if model != expected.serving:
        found.append(f"{color} serves model version {model}; expected {expected.serving}")
    registered = season.model.registered_name
    champion = season.services.registry().aliases(registered).get("champion")
    if champion != expected.serving:
        found.append(f"champion is version {champion}; expected {expected.serving}, which serves")
    url = f"{season.target().service_url}/version"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answered = json.load(response).get("model_version")
    except (OSError, ValueError) as exc:
        return [*found, f"the service at {url} does not answer: {exc}"]
    if answered != f"{registered}/{expected.serving}":
        found.append(f"the service answers as {answered}; expected {registered}/{expected.serving}")
    return found


def _lineage(season: Season, expected: Expected) -> list[str]:
    versions: set[tuple[str, str]] = set()
    for event in _lineage_events(season):
        for output in event.get("outputs", []):
            version = output.get("facets", {}).get("version", {}).get("datasetVersion")
            if version:
                versions.add((output["name"], str(version)))
    dataset, model = season.dataset.name, f"models/{season.model.registered_name}"
    found = []
    for day, versions_of_day in sorted(expected.days.items(), key=lambda kv: int(kv[0])):
        if (dataset, versions_of_day["md5"]) not in versions:
            found.append(f"lineage has no event of day {day}'s {dataset} {versions_of_day['md5']}")
        if (model, versions_of_day["model"]) not in versions:
            found.append(f"lineage has no event of day {day}'s {model} {versions_of_day['model']}")
    return found


def _lineage_events(season: Season) -> Iterator[dict[str, Any]]:
    """Every event a reviewer can find: the outbox's (what waits, and the delivered ones its
    retention keeps), and every one delivered to the embedded default's backend, its file."""
    yield from season.services.outbox().events()
    transport = season.services.lineage_transport()
    if isinstance(transport, FileTransport) and transport.path.is_file():
        with transport.path.open() as lines:
            yield from (json.loads(line) for line in lines)


def _checkouts(season: Season, expected: Expected, rng: random.Random) -> list[str]:
    """The first accepted day, the last, and one drawn at random come back byte for byte."""
    days = sorted(expected.days, key=int)
    if not days:
        return []
    chosen = sorted({days[0], days[-1], rng.choice(days)}, key=int)
    store = season.services.dataset_store()
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for day in chosen:
            wanted = expected.days[day]
            copy = Path(tmp) / f"day-{day}.csv"
            store.export(season.dataset.name, wanted["md5"], copy)
            if hashlib.sha256(copy.read_bytes()).hexdigest() != wanted["sha256"]:
                name = season.dataset.name
                found.append(f"checkout of day {day}'s {name} differs from what it published")
    return found

"""A season of days on one home, run the way its users run it: each day a new feed, then the day's
materialization through `dagster asset materialize` (each step in its own process, on a persistent
Dagster instance), then the operators' and the machine's events, then every invariant checked.

A day's report is appended to `days.jsonl` as soon as the day ends, so a long season shows its
progress and an interrupted one resumes at the first day it has no report of.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from governance.actors import operator
from governance.audit.chain import AuditRecord
from governance.config import Estate, load_estate
from governance.errors import GovernanceError, PermanentError
from governance.home import disk_usage
from governance.models.lifecycle import GATED
from governance.redaction import redact
from governance.releases.controller import Controller
from governance.releases.lifecycle import serving
from governance.releases.local import LocalTarget
from governance.releases.state import COLORS
from governance.releases.target import Target
from governance.season.data import CAUGHT_BY_THE_GATE, write_day
from governance.season.invariants import REFUSED_FEED, REFUSED_MODEL, RELEASED, Expected, check_day
from governance.season.plan import HEAL, RESTART, ROLLBACK, SeasonPlan
from governance.services import Services

DAY_TIMEOUT_S = 900.0
_T = TypeVar("_T")


@dataclass
class DayReport:
    day: int
    events: list[str]
    run_ok: bool
    seconds: float
    expected: dict[str, Any]  # what should serve after the day, and every accepted day's versions
    home_bytes: int
    outcome: str  # released, feed refused, model refused by its gate
    phases: dict[str, float] = field(default_factory=dict)  # seconds of each of the day's parts
    stores: dict[str, int] = field(default_factory=dict)  # bytes of each store of the home
    actions: list[str] = field(default_factory=list)  # the day's audit actions, in order
    refusals: list[str] = field(default_factory=list)  # why the feed or the model was refused
    violations: list[str] = field(default_factory=list)


class Season:
    def __init__(
        self,
        plan: SeasonPlan,
        estate: Estate,
        release: str,
        services: Services,
        directory: Path,
        dagster_home: Path,
        say: Callable[[str], None],
        housekeeping: bool = False,
    ) -> None:
        self.plan = plan
        self.spec = estate.release(release)
        served = estate.served_model(self.spec)
        if served is None:
            raise PermanentError(f"release {release} serves no model: a season retrains one")
        if self.spec.target != "local" and (plan.restarts or plan.heals):
            raise PermanentError("restarts and dying containers are simulated on a local target only")
        self.model, self.dataset = served
        self.services = services
        self.directory = directory
        self.dagster_home = dagster_home
        self.say = say
        self.housekeeping = housekeeping  # run the daily `housekeeping` job after each day
        self.phases: dict[str, float] = {}  # the current day's
        self.feed = directory / "feed" / f"{self.dataset.name}.csv"
        self.sample = self.dataset.source.resolve()
        self.estate = load_estate(_season_estate(estate, self.dataset.name, self.feed, directory))
        self.reports = directory / "days.jsonl"
        if not (dagster_home / "dagster.yaml").is_file():
            raise PermanentError(
                f"no Dagster instance at {dagster_home}: create it as `make dev` does "
                f"(mkdir -p {dagster_home} && cp deploy/local/dagster.yaml {dagster_home}/)"
            )

    def run(self) -> list[DayReport]:
        """Every day of the plan not yet reported; stops after the first day with a violation."""
        done = self.done()
        expected = Expected.from_dict(done[-1].expected) if done else Expected()
        reports = []
        for day in range(len(done) + 1, self.plan.days + 1):
            report = self.run_day(day, expected)
            reports.append(report)
            with self.reports.open("a") as out:
                out.write(json.dumps(asdict(report)) + "\n")
            verdict = "; ".join(report.violations) or "every invariant holds"
            self.say(f"day {day}: {report.seconds:.1f} s, {_mib(report.home_bytes)}: {verdict}")
            if report.violations:
                break
            expected = Expected.from_dict(report.expected)
        return reports

    def done(self) -> list[DayReport]:
        if not self.reports.is_file():
            return []
        return [DayReport(**json.loads(line)) for line in self.reports.read_text().splitlines()]

    def run_day(self, day: int, before: Expected) -> DayReport:
        """One day: the restart (if any), the feed, the day's run, its other events, its checks."""
        events = self.plan.events(day)
        started = time.monotonic()
        first_seq = _last_seq(self.services)
        expected = before.copy()
        violations: list[str] = []
        self.phases = {}
        if RESTART in events:
            violations += self._act(day, "the machine restarts", self._restart_machine)
        defect = self.plan.defects.get(day)
        write_day(self.sample, day, self.plan.seed, defect, self.feed)
        self.say(f"day {day}: feed written ({defect or 'clean'}); materializing")
        serving_before = self.serving_now()
        run = self._timed("materialize", lambda: self._materialize(first_day=day == 1))
        serving_after = self.serving_now()
        run_ok = run.returncode == 0
        outcome = self._outcome(run_ok, first_seq)
        meant = _meant(defect)
        if outcome not in meant or (outcome == RELEASED) != run_ok:
            tail = redact(run.stderr[-3000:])
            violations.append(f"the day's run {'succeeded' if run_ok else 'failed'}: {tail}")
        elif outcome != REFUSED_FEED:  # the day's data was accepted
            published, model = self._published(), self._latest_model()
            expected = expected.accepted(day, published, model, released=outcome == RELEASED)
        if HEAL in events:
            violations += self._act(day, "the serving container dies", self._kill_and_heal)
        if ROLLBACK in events:
            violations += self._act(day, "the operator rolls back", lambda: self._rollback(day))
            expected = expected.rolled_back()
        if self.housekeeping:
            violations += self._act(day, "the daily housekeeping job", self._housekeeping)
        records = self._records_since(first_seq)
        actions = [r.action for r in records]
        refusals = [reason for r in records if _refusal(r) for reason in r.reasons]
        violations += self._timed(
            "checks",
            lambda: check_day(
                self,
                day,
                events,
                outcome,
                expected,
                serving_before,
                serving_after,
                actions,
                random.Random(day),
            ),
        )
        return DayReport(
            day,
            events,
            run_ok,
            round(time.monotonic() - started, 1),
            expected.to_dict(),
            disk_usage(self.services.home.root),
            outcome,
            {phase: round(seconds, 1) for phase, seconds in self.phases.items()},
            _stores(self.services.home.root),
            actions,
            refusals,
            violations,
        )

    def _records_since(self, seq: int) -> list[AuditRecord]:
        return [r for r in self.services.audit_log().records() if r.seq > seq]

    def _outcome(self, run_ok: bool, first_seq: int) -> str:
        """What the day's run did, from its audit records: a feed refused, a retrained model that
        failed its gate (the platform doing its job, not a failed day), or a release."""
        records = self._records_since(first_seq)
        if any(r.action == "dataset.rejected" for r in records):
            return REFUSED_FEED
        if not run_ok and any(_refusal(r) for r in records):
            return REFUSED_MODEL
        return RELEASED

    def _act(self, day: int, what: str, action: Callable[[], list[str]]) -> list[str]:
        """One of the day's events: its violations, or the error that stopped it as one."""
        self.say(f"day {day}: {what}")
        try:
            return self._timed(what, action)
        except GovernanceError as exc:
            return [f"{what}: {redact(str(exc))}"]

    def _timed(self, phase: str, work: Callable[[], _T]) -> _T:
        """`work`, its seconds added to the day's `phase`: where a day's time goes, for the
        benchmark to show which part grows over a season."""
        started = time.monotonic()
        try:
            return work()
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - started

    def _rollback(self, day: int) -> list[str]:
        outcome = self._controller(operator("oncall")).rollback(f"season day {day}")
        if outcome.decision.action != "rolled back":
            return [f"rollback: {outcome.decision.action}: {'; '.join(outcome.decision.reasons)}"]
        return []

    def _housekeeping(self) -> list[str]:
        job = self._dagster(["job", "execute"], "--job", "housekeeping")
        return (
            [] if job.returncode == 0 else [f"the housekeeping run failed: {redact(job.stderr[-2000:])}"]
        )

    def target(self) -> Target:
        return self.services.release_target(self.spec, self.estate)

    def serving_now(self) -> tuple[str | None, str | None, str | None]:
        """(color, release version, model version) the target reports serving."""
        view = serving(self.spec, self.services.home, self.target())
        candidate = view.candidate
        model = candidate.model.version if candidate and candidate.model else None
        return view.color, candidate.version if candidate else None, model

    def _local_target(self) -> LocalTarget:
        target = self.target()
        assert isinstance(target, LocalTarget)  # the constructor refused other targets' events
        return target

    def _controller(self, actor: str) -> Controller:
        return self.services.release_controller(self.spec, self.estate, actor)

    def _materialize(self, first_day: bool) -> subprocess.CompletedProcess[str]:
        """The day's run: the feed ingested, published and checked, the model retrained and gated,
        and the release promoted (the first day also builds the image it serves)."""
        spec, dataset = self.spec, self.dataset
        assets = [dataset.raw_name, dataset.name, self.model.name]
        assets += [spec.image] if first_day else []
        assets += [f"{spec.name}_candidate", spec.name]
        return self._dagster(["asset", "materialize"], "--select", ",".join(assets))

    def _dagster(self, command: list[str], *options: str) -> subprocess.CompletedProcess[str]:
        """A `dagster` command (`asset materialize`, `job execute`) of the code location, on the
        season's instance, estate and home."""
        env = {
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            "GOVERNANCE_HOME": str(self.services.home.root),
            "GOVERNANCE_ESTATE": str(self.estate.path),
        }
        dagster = str(Path(sys.executable).parent / "dagster")
        return subprocess.run(
            [dagster, *command, "-m", "pipelines.definitions", "-a", "defs", *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=DAY_TIMEOUT_S,
        )

    def _published(self) -> tuple[str, str]:
        """The dataset's current version: its md5, and the sha256 of its bytes."""
        store = self.services.dataset_store()
        current = store.current(self.dataset.name)
        if current is None:
            raise PermanentError(f"{self.dataset.name}: no version after a successful day")
        data = store.workspace_file(self.dataset.name).read_bytes()
        return current.md5, hashlib.sha256(data).hexdigest()

    def _latest_model(self) -> str:
        versions = self.services.registry().versions(self.model.registered_name)
        return str(max(int(v.version) for v in versions))

    def _kill_and_heal(self) -> list[str]:
        target = self._local_target()
        color = target.active_color()
        if color is None:
            return ["heal: nothing serves to kill"]
        target.storage.run(["podman", "kill", target.container_name(color)], what="podman kill")
        return self._heal_until_restarted("the dead container")

    def _restart_machine(self) -> list[str]:
        """Everything the platform started stops, as when the machine restarts: the release's
        containers and its nginx. Then the heal sensor's ticks must bring the service back."""
        target = self._local_target()
        for color in COLORS:
            name = target.container_name(color)
            target.storage.run(["podman", "stop", "--ignore", "--time", "2", name], what="podman stop")
        pid_file = target.nginx_dir / "nginx.pid"
        if pid_file.is_file():
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        return self._heal_until_restarted("the restarted machine")

    def _heal_until_restarted(self, after: str) -> list[str]:
        """The heal sensor's ticks, until it acts: each tick is one probe."""
        actions = []
        for _ in range(self.spec.heal.failures_before_action):
            outcome = self._controller("cli:selfheal").heal()
            actions.append(outcome.decision.action)
        if actions[-1] != "restarted":
            return [f"self-heal after {after}: {', '.join(actions)}, never restarted"]
        return []


def _meant(defect: str | None) -> tuple[str, ...]:
    """The outcomes a day may have: a clean feed's retrain may fail its gate on its own merits."""
    if defect is None:
        return (RELEASED, REFUSED_MODEL)
    return (REFUSED_MODEL,) if defect in CAUGHT_BY_THE_GATE else (REFUSED_FEED,)


def _refusal(record: AuditRecord) -> bool:
    """A record of the platform refusing the day's feed, or its retrained model."""
    gate_failed = record.action == GATED and record.decision == "failed"
    return record.action == "dataset.rejected" or gate_failed


def _season_estate(estate: Estate, dataset: str, feed: Path, directory: Path) -> Path:
    """The estate as the team wrote it, its paths still theirs, with the dataset's source the
    season's feed (a file that changes daily, where the sample ships one that never does)."""
    from governance.yamlsafe import load_yaml

    data = load_yaml(estate.path, "governance estate")
    base = (estate.path.parent / str(data.get("base_dir", "."))).resolve()
    data["base_dir"] = str(base)
    data["datasets"][dataset]["source"] = {"path": str(feed)}
    path = directory / "estate.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))  # JSON is YAML
    return path


def _stores(home: Path) -> dict[str, int]:
    """The home's bytes by store: each top-level directory, and each database with its journal
    files (`audit.db`, `audit.db-wal`: `audit`), a lock file with what it locks."""
    stores: dict[str, int] = {}
    for entry in home.iterdir():
        name = entry.name.lstrip(".").split(".")[0]
        size = disk_usage(entry) if entry.is_dir() else entry.stat().st_size
        stores[name] = stores.get(name, 0) + size
    return dict(sorted(stores.items()))


def _last_seq(services: Services) -> int:
    return max((r.seq for r in services.audit_log().records()), default=0)


def _mib(size: int) -> str:
    return f"home {size / 2**20:.1f} MiB"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True

"""The blue/green controller: target-agnostic promotion, rollback and self-heal.

promote: gates on the exact versions first (nothing is deployed for a candidate whose inputs failed),
then deploy to the idle color, wait ready, smoke-test, gate again with the smoke result, switch,
verify through the service and switch back at once if verification fails. The previous color stays
up for `scale_down_delay_s` so a rollback is a switch, not a redeploy. Every decision is recorded
(audit, state) and alerted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from governance.audit.store import AuditTrail
from governance.config import ReleaseSpec, SmokeSpec
from governance.errors import AuditUnavailable, PermanentError
from governance.notify.alerts import Alert, Alerts
from governance.probes import Probe
from governance.releases.candidate import Candidate, served_versions
from governance.releases.gates import SMOKE_GATE, Evidence, GateDecision, RequiredCheck, evaluate
from governance.releases.state import COLORS, Decision, ReleaseState, StateStore, other
from governance.releases.target import Target

GatherEvidence = Callable[[Candidate], Evidence]
VERIFY_TIMEOUT_S = 10.0
# What `observe` says when `tend` has work: a color to scale down, or one to restart or roll back.
NEEDS_ACTION = "needs action"


@dataclass
class Outcome:
    decision: Decision
    gates: GateDecision | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.decision.action in ("promoted", "unchanged")


@dataclass
class Controller:
    spec: ReleaseSpec
    target: Target
    states: StateStore
    trail: AuditTrail
    alerts: Alerts
    on_serving: Callable[[Candidate], None]  # keeps a served model's `champion` alias on what serves

    def promote(
        self, candidate: Candidate, required: list[RequiredCheck], gather: GatherEvidence
    ) -> Outcome:
        timings: dict[str, float] = {}
        with self.target.lock():
            state = self.states.load()
            state.candidate = candidate.to_dict()
            active = self.target.active_color()
            self._scale_down_expired(state, active)
            serving = state.on(active) if active else None
            if serving is not None and serving.version == candidate.version and self._healthy(active):
                return self._finish(
                    state,
                    Outcome(
                        Decision(
                            "unchanged", candidate.version, ["already serving"], active_color=active
                        )
                    ),
                )

            evidence = gather(candidate)
            pre = evaluate(candidate, required, evidence, requires_approval=self.spec.requires_approval)
            blocking = [g for g in pre.gates if not g.passed and g.name != SMOKE_GATE]
            if blocking:  # refused before anything is deployed; the smoke test was never reached
                untested = GateDecision([g for g in pre.gates if g.name != SMOKE_GATE])
                return self._refuse(state, candidate, untested, active, timings)

            idle = other(active)
            started = time.monotonic()
            self.target.deploy(idle, candidate)
            state.colors[idle] = candidate.to_dict()
            state.scale_down_at.pop(idle, None)
            self.states.save(state)
            timings["deploy_s"] = time.monotonic() - started
            started = time.monotonic()
            ready = self.target.wait_ready(idle, self.spec.ready_timeout_s)
            timings["ready_s"] = time.monotonic() - started
            smoke = self._smoke(idle) if ready.ok else ready
            evidence = Evidence(
                evidence.checks, evidence.model_aliases, smoke.ok, smoke.detail, evidence.approval
            )
            gates = evaluate(
                candidate, required, evidence, requires_approval=self.spec.requires_approval
            )
            if not gates.passed:
                self.target.scale_down(idle)
                state.colors.pop(idle, None)
                return self._refuse(state, candidate, gates, active, timings)

            started = time.monotonic()
            self.target.switch(idle)
            verified = self._verify(idle)
            timings["switch_s"] = time.monotonic() - started
            if not verified.ok:
                if active is not None:
                    self.target.switch(active)
                self.target.scale_down(idle)
                state.colors.pop(idle, None)
                decision = Decision(
                    "rolled back",
                    candidate.version,
                    [f"verification through the service failed: {verified.detail}"],
                    active_color=active,
                )
                self._record(decision, candidate, alert_ok=False)
                return self._finish(state, Outcome(decision, gates, timings))

            decision = Decision(
                "promoted", candidate.version, [f"every gate passed; {idle} serves"], active_color=idle
            )
            self._record_or_switch_back(decision, candidate, active, gates=gates)
            if active is not None:
                state.previous = active
                state.scale_down_at[active] = time.time() + self.spec.scale_down_delay_s
            state.failures = 0
            self.on_serving(candidate)
            return self._finish(state, Outcome(decision, gates, timings))

    def rollback(self, reason: str) -> Outcome:
        """Switch the service back to the previous color (redeploying it if it was scaled down)."""
        with self.target.lock():
            state = self.states.load()
            return self._rollback(state, reason)

    def heal(self) -> Outcome:
        """Probe the serving color; after N consecutive failures restart it, or roll back."""
        observed = self.observe()
        return self.tend() if observed.decision.action == NEEDS_ACTION else observed

    def observe(self, lock_timeout_s: float | None = None) -> Outcome:
        """One probe of the serving color, counted towards `heal.failures_before_action`. Changes
        nothing on the target, so a sensor tick can afford it: `NEEDS_ACTION` says that `tend` has
        work (the count is reached, or a previous color is due to scale down). `lock_timeout_s`: how
        long to wait for a promotion or recovery that holds the release (then a TransientError)."""
        with self.target.lock(lock_timeout_s):
            state = self.states.load()
            active = self.target.active_color()
            due = [f"{color} is due to scale down" for color in self._expired(state, active)]
            serving = state.on(active) if active else None
            if active is None or serving is None:
                action = NEEDS_ACTION if due else "unchanged"
                return Outcome(Decision(action, "", ["nothing is serving", *due], active_color=active))
            probe = self._probe_serving(active)
            state.failures = 0 if probe.ok else state.failures + 1
            self.states.save(state)
            limit = self.spec.heal.failures_before_action
            detail = probe.detail if probe.ok else f"{probe.detail} ({state.failures}/{limit})"
            action = "healthy" if probe.ok else "degraded"
            if state.failures >= limit or due:
                action = NEEDS_ACTION
            return Outcome(Decision(action, serving.version, [detail, *due], active_color=active))

    def tend(self) -> Outcome:
        """Scale down the previous color once due; restart the serving color (redeploy it if it is
        gone) once it failed `heal.failures_before_action` probes in a row, or roll back if it stays
        unhealthy. Probes again first: the color may have come back since it was observed."""
        with self.target.lock():
            state = self.states.load()
            active = self.target.active_color()
            self._scale_down_expired(state, active)
            serving = state.on(active) if active else None
            if active is None or serving is None:
                self.states.save(state)
                return Outcome(Decision("unchanged", "", ["nothing is serving"], active_color=active))
            color = self.target.probe(active, "/healthz", timeout_s=self.spec.heal.probe_timeout_s)
            probe = self._probe_serving(active, color)
            failed, limit = state.failures, self.spec.heal.failures_before_action
            if probe.ok:
                state.failures = 0
            if probe.ok or failed < limit:  # came back by itself, or not yet failing long enough
                self.states.save(state)
                detail = probe.detail if probe.ok else f"{probe.detail} ({failed}/{limit})"
                action = "healthy" if probe.ok else "degraded"
                return Outcome(Decision(action, serving.version, [detail], active_color=active))
            started = time.monotonic()
            if not color.ok and self.target.running(active):
                self.target.restart(active)
            elif not color.ok:
                self.target.deploy(active, serving)
            ready = self.target.wait_ready(active, self.spec.ready_timeout_s)
            if ready.ok:
                self.target.switch(active)  # the service routes to it again, started if it was down
                state.failures = 0
                decision = Decision(
                    "restarted",
                    serving.version,
                    [
                        f"{active} failed {failed} probes ({probe.detail}); "
                        f"restarted in {time.monotonic() - started:.1f} s"
                    ],
                    active_color=active,
                )
                self._record(decision, serving, alert_ok=True, by_self_heal=True)
                return self._finish(
                    state, Outcome(decision, timings={"recover_s": time.monotonic() - started})
                )
            return self._rollback(
                state, f"{active} stayed unhealthy after a restart: {ready.detail}", by_self_heal=True
            )

    def _probe_serving(self, active: str, color: Probe | None = None) -> Probe:
        """The serving color's health, then the service's in front of it (which fails alone after a
        restart of the machine)."""
        timeout_s = self.spec.heal.probe_timeout_s
        color = color or self.target.probe(active, "/healthz", timeout_s=timeout_s)
        return self.target.probe(None, "/healthz", timeout_s=timeout_s) if color.ok else color

    def _rollback(self, state: ReleaseState, reason: str, *, by_self_heal: bool = False) -> Outcome:
        """Back to the previous color. Its versions may be unrecorded (it served before the platform
        managed the release): then it can only be switched to while it still runs, not redeployed."""
        active = self.target.active_color()
        previous = state.previous if state.previous != active else None
        if previous is None:
            raise PermanentError(f"release {self.spec.name}: no previous color to roll back to")
        restore = state.on(previous)
        started = time.monotonic()
        if not self._healthy(previous):
            if restore is None:
                raise PermanentError(
                    f"release {self.spec.name}: {previous} is down and its versions were never recorded"
                )
            self.target.deploy(previous, restore)
            ready = self.target.wait_ready(previous, self.spec.ready_timeout_s)
            if not ready.ok:
                reasons = [f"rollback to {previous} failed: {ready.detail}"]
                decision = Decision("failed", restore.version, reasons, active_color=active)
                self._record(decision, restore, alert_ok=False, by_self_heal=by_self_heal)
                return self._finish(state, Outcome(decision))
        self.target.switch(previous)
        verified = self._verify(previous)
        traffic_back_s = time.monotonic() - started
        decision = Decision(
            "rolled back",
            restore.version if restore else "",
            [reason, f"{previous} serves again ({verified.detail})"],
            active_color=previous,
        )
        self._record_or_switch_back(
            decision, restore, active, alert_ok=verified.ok, by_self_heal=by_self_heal
        )
        state.scale_down_at.pop(previous, None)
        if active is not None:
            state.previous = active
            state.scale_down_at[active] = time.time() + self.spec.scale_down_delay_s
        state.failures = 0
        if restore is not None:
            self.on_serving(restore)
        timings = {"traffic_back_s": traffic_back_s, "rollback_s": time.monotonic() - started}
        return self._finish(state, Outcome(decision, timings=timings))

    def _refuse(
        self,
        state: ReleaseState,
        candidate: Candidate,
        gates: GateDecision,
        active: str | None,
        timings: dict[str, float],
    ) -> Outcome:
        decision = Decision("refused", candidate.version, gates.reasons, active_color=active)
        self._record(decision, candidate, alert_ok=False, gates=gates)
        return self._finish(state, Outcome(decision, gates, timings))

    def _smoke(self, color: str) -> Probe:
        ready = self.target.probe(color, "/readyz")
        if not ready.ok:
            return ready
        answered = smoke_request(self.target, self.spec.smoke, color)
        if not answered.ok:
            return answered
        return Probe(True, 200, f"/readyz answered 200; {answered.detail}")

    def _verify(self, color: str) -> Probe:
        """Through the service: the new color answers /version, and the smoke request."""
        deadline = time.monotonic() + VERIFY_TIMEOUT_S
        while True:
            version = self.target.probe(None, "/version", timeout_s=2)
            if version.ok and isinstance(version.body, dict) and version.body.get("color") == color:
                answered = smoke_request(self.target, self.spec.smoke, None)
                return Probe(
                    answered.ok, answered.status, f"service routes to {color}; {answered.detail}"
                )
            if time.monotonic() > deadline:
                return Probe(
                    False, version.status, f"service does not route to {color}: {version.detail}"
                )
            time.sleep(0.05)

    def _healthy(self, color: str | None) -> bool:
        return color is not None and self.target.probe(color, "/readyz", timeout_s=2).ok

    def _expired(self, state: ReleaseState, active: str | None) -> list[str]:
        """The previous colors whose `scale_down_delay_s` has passed."""
        now = time.time()
        return [
            color
            for color in COLORS
            if color != active and (due := state.scale_down_at.get(color)) is not None and due <= now
        ]

    def _scale_down_expired(self, state: ReleaseState, active: str | None) -> None:
        for color in self._expired(state, active):
            self.target.scale_down(color)
            state.scale_down_at.pop(color)

    def _record(
        self,
        decision: Decision,
        candidate: Candidate | None,
        *,
        alert_ok: bool,
        gates: GateDecision | None = None,
        by_self_heal: bool = False,
    ) -> None:
        """The decision's audit record, then its message: a self-heal action is an alert (once
        per cause and window), any other decision a notification."""
        versions = {"color": decision.active_color} if decision.active_color else {}
        summary = "versions not recorded"
        if candidate is not None:
            versions |= served_versions(candidate)
            summary = f"{candidate.version}: image {candidate.image_digest[:19]}…" + (
                f", model {candidate.model_ref}" if candidate.model else ""
            )
        passed = [f"{g.name}: {g.evidence}" for g in gates.gates] if gates and gates.passed else []
        action = "release." + decision.action.replace(" ", "_")
        subject = f"release:{self.spec.name}"
        self.trail.record(action, subject, versions, decision.action, [*decision.reasons, *passed])
        if by_self_heal:
            reason = f"{decision.action}: {'; '.join(decision.reasons)}"
            self.alerts.alert(
                Alert("self_heal", f"release {self.spec.name}", reason, ok=alert_ok, details=(summary,))
            )
        else:
            self.alerts.notify(
                f"release {self.spec.name}: {decision.action}", [summary, *decision.reasons], ok=alert_ok
            )

    def _record_or_switch_back(
        self,
        decision: Decision,
        candidate: Candidate | None,
        before: str | None,
        *,
        alert_ok: bool = True,
        gates: GateDecision | None = None,
        by_self_heal: bool = False,
    ) -> None:
        """A switch and its audit record succeed together: the service goes back to `before`
        when the record cannot be written."""
        try:
            self._record(decision, candidate, alert_ok=alert_ok, gates=gates, by_self_heal=by_self_heal)
        except AuditUnavailable as exc:
            if before is not None:
                self.target.switch(before)
            raise AuditUnavailable(
                f"release {self.spec.name}: switched back to {before or 'nothing'}, because "
                f"'{decision.action}' could not be recorded: {exc}"
            ) from None

    def _finish(self, state: ReleaseState, outcome: Outcome) -> Outcome:
        state.decide(outcome.decision)
        self.states.save(state)
        return outcome


def smoke_request(target: Target, smoke: SmokeSpec, color: str | None) -> Probe:
    """The release's smoke request on one color, or through the service (None)."""
    answer = target.probe(color, smoke.path, body=smoke.body, timeout_s=smoke.timeout_s)
    if not answer.ok:
        return answer
    text = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
    if smoke.expect is not None and smoke.expect not in text:
        return Probe(
            False, answer.status, f"{smoke.path} answered without {smoke.expect!r}: {_shown(text)}"
        )
    shown = answer.body.get("predictions") if isinstance(answer.body, dict) else None
    return Probe(True, 200, f"{smoke.path} answered 200" + (f" ({shown})" if shown else ""))


def _shown(text: str, limit: int = 240) -> str:
    """What a person would read of an answer: a page's visible text, its end (where an answer or
    an error is shown) when long."""
    visible = " ".join(re.sub(r"<script\b.*?</script>|<[^>]+>", " ", text, flags=re.S).split())
    return visible if len(visible) <= limit else "…" + visible[-limit:]

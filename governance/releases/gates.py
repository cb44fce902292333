"""The promotion gates: a pure function of the evidence about one candidate's exact versions.

Every gate must pass. A check counts only if it was evaluated against the candidate's own version
(dataset md5, model version, image digest); a check that never ran on that version fails its gate,
so a deploy materialized later, on its own, still refuses inputs that were never checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from governance.errors import ConfigError
from governance.releases.candidate import Candidate

PROMOTABLE_ALIASES = ("challenger", "champion")
SMOKE_GATE = "idle color smoke test"


@dataclass(frozen=True)
class CheckEvidence:
    """One evaluation of a blocking check, as recorded by the orchestrator."""

    asset: str
    check: str
    subject_version: str  # the version the check evaluated
    passed: bool
    at: float  # unix time
    run_id: str = ""


@dataclass(frozen=True)
class RequiredCheck:
    asset: str
    check: str
    version: str  # the candidate's version of that asset


@dataclass(frozen=True)
class Approval:
    """The verdict on a candidate's approval (see `approvals`)."""

    granted: bool
    detail: str


@dataclass(frozen=True)
class Evidence:
    checks: Sequence[CheckEvidence]
    model_aliases: Sequence[str]  # aliases the candidate's model version holds (if any)
    smoke_ok: bool | None  # None: the idle color was not tested (yet)
    smoke_detail: str = ""
    approval: Approval | None = None  # None: the release requires none


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    evidence: str


@dataclass(frozen=True)
class GateDecision:
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def reasons(self) -> list[str]:
        return [f"{g.name}: {g.evidence}" for g in self.gates if not g.passed]


def gating_checks(
    release: str, inputs: Iterable[str], blocking: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The checks that gate a release: every blocking check (`blocking`, by asset) of each of its
    input assets. An input with none is refused, since the release would promote versions of it
    that nothing ever checked."""
    gating = {asset: list(blocking.get(asset, ())) for asset in inputs}
    unchecked = [asset for asset, names in gating.items() if not names]
    if unchecked:
        raise ConfigError(f"release {release}: {', '.join(unchecked)} has no blocking check to gate it")
    return gating


def required_checks(candidate: Candidate, checks: Mapping[str, Sequence[str]]) -> list[RequiredCheck]:
    """Every blocking check of the candidate's inputs (asset -> check names), at its exact version."""
    versions = candidate.versions()
    return [
        RequiredCheck(asset, check, versions[asset])
        for asset, names in checks.items()
        for check in names
    ]


def evaluate(
    candidate: Candidate,
    required: Sequence[RequiredCheck],
    evidence: Evidence,
    *,
    requires_approval: bool,
) -> GateDecision:
    gates = [_check_gate(r, evidence.checks) for r in required]
    if candidate.model is not None:
        holds = [a for a in evidence.model_aliases if a in PROMOTABLE_ALIASES]
        gates.append(
            Gate(
                f"model {candidate.model_ref} alias",
                bool(holds),
                f"holds {', '.join(holds)}" if holds else "holds neither challenger nor champion",
            )
        )
    if evidence.smoke_ok is None:
        gates.append(Gate(SMOKE_GATE, False, "not run"))
    else:
        gates.append(Gate(SMOKE_GATE, evidence.smoke_ok, evidence.smoke_detail))
    if requires_approval:
        verdict = evidence.approval or Approval(False, f"no approval for {candidate.version}")
        gates.append(Gate("approval", verdict.granted, verdict.detail))
    return GateDecision(gates)


def _check_gate(required: RequiredCheck, checks: Sequence[CheckEvidence]) -> Gate:
    name = f"{required.asset}.{required.check}"
    matching = [
        c
        for c in checks
        if c.check == required.check
        and c.asset == required.asset
        and c.subject_version == required.version
    ]
    if not matching:
        return Gate(name, False, f"never evaluated on {required.version}")
    latest = max(matching, key=lambda c: c.at)
    verdict = "passed" if latest.passed else "failed"
    run = f" in run {latest.run_id}" if latest.run_id else ""
    return Gate(name, latest.passed, f"{verdict} on {required.version}{run}")

"""Who may let a candidate through a release's approval gate, and who may not.

A release that requires approval names its approvers in `governance.yaml` (one that does not may
still record a decision, from a CI environment's reviewers for instance; only listed approvers count
where a list is given). Each candidate is an audit record with who launched the run that made it;
that person may not decide on it (four eyes), and a candidate whose launcher is unknown cannot be
decided on at all, since the rule could not be checked. Approvals and rejections are audit records
of the candidate's exact release version; the latest one decides, and the gate checks it again
against the estate as it is at promotion (an approver since removed no longer counts).
Turning approval on for a release whose candidates were made without a launcher works: launching the
candidate again with a name makes it decidable.
"""

from __future__ import annotations

from collections.abc import Iterable

from governance.actors import person, person_of, reason
from governance.audit.chain import AuditRecord
from governance.audit.store import AuditLog, AuditTrail
from governance.config import ReleaseSpec
from governance.errors import PermanentError
from governance.releases.candidate import Candidate
from governance.releases.gates import Approval

CANDIDATE = "release.candidate"
APPROVED = "release.approved"
REJECTED = "release.rejected"
LAUNCHED_BY_TAG = "governance/launched_by"  # the Dagster run tag that names who launched a run


def record_candidate(
    trail: AuditTrail, spec: ReleaseSpec, candidate: Candidate, launched_by: str | None
) -> None:
    """The candidate and who launched it; a release that requires approval must know who did."""
    if spec.requires_approval and not (launched_by or "").strip():
        raise PermanentError(
            f"release {spec.name} requires approval, so its candidate must say who launched it: "
            f"launch the run with the tag {LAUNCHED_BY_TAG}=<your name> (Launchpad → Tags)"
        )
    launcher = person(launched_by, LAUNCHED_BY_TAG) if launched_by else ""
    versions = {"release": candidate.version, **({"launched_by": launcher} if launcher else {})}
    trail.record(CANDIDATE, f"release:{spec.name}", versions, "proposed")


def decide(spec: ReleaseSpec, audit: AuditLog, actor: str, approve: bool, why: str) -> str:
    """Approve or reject the release's latest candidate (exactly its versions, as the audit log
    holds it, so any process sharing the log can decide); returns its release version. `actor` is
    who decides (`cli:alice`, `ui:alice`): refused unless they are one of the release's approvers
    and did not launch the candidate."""
    who, text = person_of(actor), reason(why)
    records = list(audit.records(f"release:{spec.name}"))
    proposed = [r for r in records if r.action == CANDIDATE]
    if not proposed:
        raise PermanentError(
            f"release {spec.name} has no candidate yet: materialize {spec.name}_candidate"
        )
    version = proposed[-1].versions["release"]
    refusal = _refusal(spec, who, _launchers(records, version))
    if refusal:
        raise PermanentError(f"{who} may not decide on release {spec.name}: {refusal}")
    AuditTrail(audit, actor).record(
        APPROVED if approve else REJECTED,
        f"release:{spec.name}",
        {"release": version},
        "approved" if approve else "rejected",
        [text],
    )
    return version


def approval(audit: AuditLog, spec: ReleaseSpec, candidate: Candidate) -> Approval:
    """The approval gate's verdict on `candidate`: its latest decision, checked again."""
    records = list(audit.records(f"release:{spec.name}"))
    decisions = [
        r
        for r in records
        if r.action in (APPROVED, REJECTED) and r.versions.get("release") == candidate.version
    ]
    if not decisions:
        return Approval(False, f"no approval for {candidate.version}")
    latest = decisions[-1]
    who = person_of(latest.actor)
    if latest.action == REJECTED:
        return Approval(False, f"rejected by {who}: {'; '.join(latest.reasons)}")
    refusal = _refusal(spec, who, _launchers(records, candidate.version))
    if refusal:
        return Approval(False, f"the approval by {who} does not count: {refusal}")
    return Approval(True, f"approved by {who}")


def _launchers(records: Iterable[AuditRecord], version: str) -> set[str] | None:
    """Everyone known to have launched a run that made this candidate; None when the latest such
    run's launcher is unknown. An earlier run without one (made before the release required
    approval, say) is passed over once the candidate is launched again by someone who says who they
    are, and everyone who ever said so stays barred from deciding on it."""
    launchers: set[str] = set()
    latest = None
    for r in records:
        if r.action == CANDIDATE and r.versions.get("release") == version:
            latest = r.versions.get("launched_by")
            if latest:
                launchers.add(latest)
    return launchers if latest else None


def _refusal(spec: ReleaseSpec, who: str, launchers: set[str] | None) -> str:
    if spec.approvers and who not in spec.approvers:
        return f"not one of its approvers ({', '.join(spec.approvers)})"
    if not launchers:
        return (
            "who launched its candidate is unknown, so four eyes cannot be checked: materialize "
            f"{spec.name}_candidate again with the tag {LAUNCHED_BY_TAG}=<name>"
        )
    if who in launchers:
        return "they launched its candidate, and may not approve their own"
    return ""

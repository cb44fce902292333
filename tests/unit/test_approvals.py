"""Four eyes on a release: who may decide on a candidate, on a real (sqlite) audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from governance.actors import dagster_run
from governance.audit.store import AuditLog, AuditTrail, open_audit_log
from governance.config import ReleaseSpec
from governance.errors import ConfigError, PermanentError
from governance.releases.approvals import approval, decide, record_candidate
from governance.releases.candidate import Candidate
from tests.conftest import repository_estate_data, write_estate

RELEASE = "penguin_service"


def spec(tmp_path: Path, **changes: Any) -> ReleaseSpec:
    data = repository_estate_data()
    data["releases"][RELEASE] |= {"requires_approval": True, "approvers": ["alice", "bob"]} | changes
    return write_estate(data, tmp_path / "estate").release(RELEASE)


def candidate(digest: str = "sha256:aa") -> Candidate:
    return Candidate(RELEASE, "model_server", f"reg/app@{digest}", digest, "sha256:m")


def propose(log: AuditLog, release: ReleaseSpec, c: Candidate, by: str | None) -> None:
    record_candidate(AuditTrail(log, dagster_run("run-1")), release, c, by)


def refused(release: ReleaseSpec, log: AuditLog, actor: str, match: str) -> None:
    """`actor`'s approval is refused with a message matching `match`."""
    with pytest.raises(PermanentError, match=match):
        decide(release, log, actor, True, "ok")


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return open_audit_log(tmp_path / "audit.db")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"approvers": []}, "requires_approval needs `approvers`"),
        ({"approvers": ["alice", " alice "]}, "listed twice"),
        ({"approvers": ["  "]}, "approvers must not be blank"),
        ({"approvers": ["eve\nmallory"]}, "one line of printable text"),
    ],
)
def test_an_approval_nobody_or_anybody_could_give_is_refused_in_the_estate(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        spec(tmp_path, **changes)


def test_the_launcher_and_strangers_may_not_decide(tmp_path: Path, log: AuditLog) -> None:
    release = spec(tmp_path)
    refused(release, log, "cli:alice", "no candidate yet")
    propose(log, release, candidate(), "alice")
    refused(release, log, "cli:alice", "launched its candidate")
    refused(release, log, "ui:mallory", r"not one of its approvers \(alice, bob\)")
    assert decide(release, log, "ui:bob", True, "reviewed") == candidate().version
    assert approval(log, release, candidate()).detail == "approved by bob"


def test_a_candidate_without_a_launcher_is_refused_or_cannot_be_approved(
    tmp_path: Path, log: AuditLog
) -> None:
    with pytest.raises(PermanentError, match="must say who launched it"):
        propose(log, spec(tmp_path), candidate(), None)
    open_release = spec(tmp_path, requires_approval=False, approvers=[])
    propose(log, open_release, candidate(), None)  # a release without approval: no one needed
    refused(open_release, log, "cli:bob", "who launched its candidate is unknown")
    assert list(log.records(f"release:{RELEASE}"))[-1].action == "release.candidate"


def test_approval_turned_on_later_needs_the_candidate_launched_again_by_name(
    tmp_path: Path, log: AuditLog
) -> None:
    """The same versions made from the UI before the release required approval (no launcher
    recorded), then proposed by bob: bob may not decide, alice may; carol proposing it again later
    does not clear bob."""
    propose(log, spec(tmp_path, requires_approval=False, approvers=[]), candidate(), None)
    release = spec(tmp_path)
    refused(
        release, log, "ui:alice", "unknown.*materialize penguin_service_candidate again with the tag"
    )
    propose(log, release, candidate(), "bob")
    refused(release, log, "ui:bob", "bob may not decide .*: they launched its candidate")
    propose(log, release, candidate(), "carol")
    refused(release, log, "ui:bob", "they launched its candidate")
    assert decide(release, log, "ui:alice", True, "reviewed") == candidate().version
    assert approval(log, release, candidate()).granted


def test_the_latest_decision_on_the_exact_candidate_counts_against_the_estate_as_it_is(
    tmp_path: Path, log: AuditLog
) -> None:
    release, first, second = spec(tmp_path), candidate("sha256:aa"), candidate("sha256:bb")
    propose(log, release, first, "carol")
    assert not approval(log, release, first).granted
    decide(release, log, "cli:alice", True, "looks right")
    assert approval(log, release, first).granted
    decide(release, log, "ui:bob", False, "accuracy dropped")
    assert approval(log, release, first).detail == "rejected by bob: accuracy dropped"
    decide(release, log, "cli:alice", True, "re-checked")
    assert approval(log, release, first).granted

    propose(log, release, second, "carol")  # a new candidate needs its own approval
    assert approval(log, release, second).detail == f"no approval for {second.version}"
    assert approval(log, release, first).granted

    without_alice = spec(tmp_path, approvers=["bob"])
    verdict = approval(log, without_alice, first)
    assert not verdict.granted and "approval by alice does not count" in verdict.detail
    propose(log, release, first, "bob")  # bob launched it again: his own approval cannot count now
    refused(release, log, "cli:bob", "launched its candidate")

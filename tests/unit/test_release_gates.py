"""The promotion gates: a pure function of the evidence about one candidate's exact versions."""

from __future__ import annotations

from governance.releases.candidate import Candidate
from governance.releases.gates import SMOKE_GATE, CheckEvidence, Evidence, evaluate, required_checks

CHECKS = {"penguins": ["suite"], "classifier": ["gate"], "server": ["policy", "smoke"]}


def candidate(model_version: str = "3", digest: str = "sha256:aa", md5: str = "md5-a") -> Candidate:
    return Candidate(
        "svc",
        "server",
        f"reg/app@{digest}",
        digest,
        "classifier",
        "clf",
        model_version,
        "penguins",
        md5,
        "sha256:m",
    )


def all_passing(c: Candidate, at: float = 100.0) -> list[CheckEvidence]:
    return [
        CheckEvidence(r.asset, r.check, r.version, True, at, "run-1") for r in required_checks(c, CHECKS)
    ]


def decide(
    c: Candidate,
    checks: list[CheckEvidence],
    aliases: tuple[str, ...] = ("challenger",),
    smoke: bool | None = True,
    approved: str | None = None,
    approval: bool = False,
):  # type: ignore[no-untyped-def]
    return evaluate(
        c,
        required_checks(c, CHECKS),
        Evidence(checks, aliases, smoke, "ok", approved),
        requires_approval=approval,
    )


def test_every_gate_passing_promotes() -> None:
    c = candidate()
    decision = decide(c, all_passing(c))
    assert decision.passed and decision.reasons == []
    assert [g.name for g in decision.gates] == [
        "penguins.suite", "classifier.gate", "server.policy", "server.smoke", "model clf/3 alias", SMOKE_GATE,
    ]  # fmt: skip


def test_checks_of_other_versions_do_not_count() -> None:
    c = candidate()
    other = candidate(model_version="2", digest="sha256:bb", md5="md5-b")
    decision = decide(c, all_passing(other))
    assert not decision.passed
    assert "penguins.suite: never evaluated on md5-a" in decision.reasons
    assert "server.smoke: never evaluated on sha256:aa" in decision.reasons


def test_the_latest_evaluation_of_the_exact_version_decides() -> None:
    c = candidate()
    checks = all_passing(c, at=100.0)
    checks.append(CheckEvidence("server", "smoke", "sha256:aa", False, 200.0, "run-2"))
    assert decide(c, checks).reasons == ["server.smoke: failed on sha256:aa in run run-2"]
    checks.append(CheckEvidence("server", "smoke", "sha256:aa", True, 300.0, "run-3"))
    assert decide(c, checks).passed


def test_alias_smoke_and_approval_gates() -> None:
    c = candidate()
    assert decide(c, all_passing(c), aliases=("champion",)).passed
    assert "holds neither challenger nor champion" in decide(c, all_passing(c), aliases=()).reasons[0]
    assert decide(c, all_passing(c), smoke=None).reasons == [f"{SMOKE_GATE}: not run"]
    assert decide(c, all_passing(c), smoke=False).reasons == [f"{SMOKE_GATE}: ok"]
    refused = decide(c, all_passing(c), approval=True)
    assert refused.reasons == [f"approval: no approval for {c.version}"]
    assert decide(c, all_passing(c), approval=True, approved="alice").passed


def test_release_version_names_exactly_what_would_serve() -> None:
    assert candidate().version == candidate().version
    assert candidate().version != candidate(model_version="4").version
    assert candidate().version != candidate(digest="sha256:cc").version
    assert Candidate.from_dict(candidate().to_dict()) == candidate()

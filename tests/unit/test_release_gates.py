"""The promotion gates: a pure function of the evidence about one candidate's exact versions."""

from __future__ import annotations

import pytest

from governance.errors import ConfigError
from governance.releases.candidate import Candidate, ServedModel
from governance.releases.gates import (
    SMOKE_GATE,
    Approval,
    CheckEvidence,
    Evidence,
    evaluate,
    gating_checks,
    required_checks,
)

CHECKS = {"penguins": ["suite"], "classifier": ["gate"], "server": ["policy", "smoke"]}


def candidate(model_version: str = "3", digest: str = "sha256:aa", md5: str = "md5-a") -> Candidate:
    model = ServedModel("classifier", "clf", model_version, "penguins", md5)
    return Candidate("svc", "server", f"reg/app@{digest}", digest, "sha256:m", model)


def all_passing(c: Candidate, at: float = 100.0) -> list[CheckEvidence]:
    return [
        CheckEvidence(r.asset, r.check, r.version, True, at, "run-1") for r in required_checks(c, CHECKS)
    ]


def decide(
    c: Candidate,
    checks: list[CheckEvidence],
    aliases: tuple[str, ...] = ("challenger",),
    smoke: bool | None = True,
    approved: Approval | None = None,
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
    granted = Approval(True, "approved by alice")
    assert decide(c, all_passing(c), approval=True, approved=granted).passed
    refused = decide(c, all_passing(c), approval=True, approved=Approval(False, "rejected by bob: no"))
    assert refused.reasons == ["approval: rejected by bob: no"]


def test_release_version_names_exactly_what_would_serve() -> None:
    assert candidate().version == candidate().version
    assert candidate().version != candidate(model_version="4").version
    assert candidate().version != candidate(digest="sha256:cc").version
    assert Candidate.from_dict(candidate().to_dict()) == candidate()


def test_an_app_release_is_gated_on_its_image_checks_and_smoke_test_only() -> None:
    web = Candidate("web", "frontend", "reg/web@sha256:ff", "sha256:ff", "sha256:m")
    checks = {"frontend": ["policy", "smoke"]}
    passing = [
        CheckEvidence(r.asset, r.check, r.version, True, 1.0) for r in required_checks(web, checks)
    ]
    decision = evaluate(
        web, required_checks(web, checks), Evidence(passing, [], True, "ok"), requires_approval=False
    )
    assert decision.passed
    assert [g.name for g in decision.gates] == ["frontend.policy", "frontend.smoke", SMOKE_GATE]
    assert web.versions() == {"frontend": "sha256:ff"}
    assert Candidate.from_dict(web.to_dict()) == web
    assert "model" not in web.to_dict()


def test_a_model_release_keeps_the_version_its_state_was_recorded_with() -> None:
    """Release state written before app releases existed names the same version after the upgrade."""
    stored = {
        "release": "svc", "image_asset": "server", "image": "reg/app@sha256:aa", "image_digest": "sha256:aa",
        "model_asset": "classifier", "model": "clf", "model_version": "3", "dataset": "penguins",
        "dataset_md5": "md5-a", "manifests_digest": "sha256:m", "version": "release-3a75bdefbe5c8b64",
    }  # fmt: skip
    assert Candidate.from_dict(stored) == candidate()
    assert candidate().to_dict() == stored


def test_a_release_is_gated_on_every_blocking_check_of_its_inputs_and_refused_without_one() -> None:
    blocking = {"penguins": ["suite", "fresh"], "server": ["policy"], "elsewhere": ["x"]}
    assert gating_checks("svc", ["server", "penguins"], blocking) == {
        "server": ["policy"],
        "penguins": ["suite", "fresh"],
    }
    with pytest.raises(ConfigError, match="release svc: classifier has no blocking check"):
        gating_checks("svc", ["server", "classifier"], blocking)

"""`governance gc` on a real Great Expectations context: what goes, what stays, and its record."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from governance.audit.store import AuditTrail, open_audit_log
from governance.config import DatasetSpec
from governance.datasets.validation import validate_frame
from governance.home import GovernanceHome
from governance.housekeeping import collect_release_models, collect_validations
from governance.releases.state import ReleaseState, StateStore
from tests.conftest import repository_estate_data, run_governance, write_estate
from tests.integration.test_validation import clean_penguins
from tests.release_evidence import RELEASE, candidate

STORES = ("uncommitted/validations", "uncommitted/data_docs/local_site/validations")


def runs(gx: Path) -> list[set[str]]:
    """Each store's validation runs (their run times)."""
    return [{p.name for p in (gx / "gx" / store).glob("penguins/*/*")} for store in STORES]


def test_validations_beyond_retention_go_results_and_pages_together_unless_named(
    penguins_csv: Path, penguins_spec: DatasetSpec, home: Path, tmp_path: Path
) -> None:
    gx = GovernanceHome.resolve().gx
    frame = clean_penguins(penguins_spec, penguins_csv)
    urls = [
        validate_frame(frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=gx).docs_url
        for _ in range(5)
    ]
    times = sorted(runs(gx)[0])
    assert len(times) == 5 and runs(gx) == [set(times)] * 2
    audit = open_audit_log(GovernanceHome.resolve().audit_db)
    AuditTrail(audit, "cli:alice").record(
        "dataset.checked", "dataset:penguins", {}, "passed", [str(urls[0])]
    )

    planned = collect_validations(gx, 2, audit.records(), dry_run=True)
    assert runs(gx) == [set(times)] * 2  # a dry run removes nothing
    done = collect_validations(gx, 2, audit.records())
    assert (done.removed, done.kept) == (planned.removed, planned.kept) == (2, 3)
    assert done.freed_bytes == planned.freed_bytes > 0
    # the newest two stay, and the oldest, which an audit record names; page and result alike
    assert runs(gx) == [{times[0], *times[3:]}] * 2

    # The command applies the estate's retention (at least the 30 the Data Docs index lists).
    data = repository_estate_data()
    estate = write_estate(data, tmp_path / "estate")
    result = run_governance("--estate", str(estate.path), "gc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("validations: removed 0, kept 3, freed 0.0 MiB"), result.stdout
    records = json.loads(run_governance("audit", "show", "--json").stdout)
    assert records[-1]["action"] == "housekeeping.collected" and records[-1]["actor"].startswith("cli:")

    data["retention"] = {"validations": 5}
    refused = tmp_path / "estate" / "refused.yaml"
    refused.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_governance("--estate", str(refused), "gc")
    assert result.returncode == 2
    assert "retention.validations" in result.stderr and "30" in result.stderr, result.stderr


def test_model_copies_neither_color_holds_go_and_a_colors_own_stays(tmp_path: Path) -> None:
    """Day after day each promotion downloads its model beside the release; only the two colors'
    are ever mounted (a rollback switches to the other color's)."""
    directory = tmp_path / "releases" / RELEASE
    image = "127.0.0.1:5000/penguins/model-server@sha256:" + "ab" * 32
    state = ReleaseState(
        colors={"blue": candidate(image, "3").to_dict(), "green": candidate(image, "2").to_dict()}
    )
    StateStore(directory).save(state)
    for version in ("1", "2", "3"):
        (directory / "models" / version).mkdir(parents=True)
        (directory / "models" / version / "model.skops").write_bytes(b"m" * 1000)

    assert collect_release_models(tmp_path / "releases", dry_run=True).removed == 1
    assert sorted(p.name for p in (directory / "models").iterdir()) == ["1", "2", "3"]
    done = collect_release_models(tmp_path / "releases")
    assert (done.removed, done.kept, done.freed_bytes) == (1, 2, 1000)
    assert sorted(p.name for p in (directory / "models").iterdir()) == ["2", "3"]

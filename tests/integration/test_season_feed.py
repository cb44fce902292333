"""The season's feed: drawn from the real sample, the same bytes for the same seed, accepted on a
clean day, and every kind of defect refused by the real ingest or suite, on the audit record."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from governance.audit.store import AuditTrail, open_audit_log
from governance.config import DatasetSpec, SourceSpec
from governance.datasets.lifecycle import ingest, publish
from governance.errors import DatasetReadError, ValidationFailed
from governance.home import GovernanceHome
from governance.season.data import CAUGHT_BY_THE_GATE, DEFECTS, write_day
from governance.services import Services


def test_a_day_is_the_same_bytes_for_its_seed_and_drifts_from_the_sample(
    penguins_csv: Path, tmp_path: Path
) -> None:
    first, again, other = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv"))
    write_day(penguins_csv, 5, 42, None, first)
    write_day(penguins_csv, 5, 42, None, again)
    write_day(penguins_csv, 5, 7, None, other)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, again, other)]
    assert digest[0] == digest[1] != digest[2]
    assert first.read_text().splitlines()[0] == penguins_csv.read_text().splitlines()[0]


@pytest.mark.parametrize("defect", [None, *(d for d in DEFECTS if d not in CAUGHT_BY_THE_GATE)])
def test_a_clean_day_is_published_and_each_defect_refused_on_the_record(
    defect: str | None, penguins_csv: Path, penguins_spec: DatasetSpec, home: Path, tmp_path: Path
) -> None:
    feed = write_day(penguins_csv, 3, 42, defect, tmp_path / "feed.csv")
    spec = penguins_spec.model_copy(update={"source": SourceSpec.model_validate({"path": str(feed)})})
    services = Services()
    trail = AuditTrail(services.audit_log(), "cli:season")
    gx = GovernanceHome.resolve().gx
    if defect is None:
        landed = ingest(spec, services.home.landing, trail)
        published = publish(spec, landed.path, services.dataset_store(), gx, trail)
        assert published.rows > 300
        return
    with pytest.raises((DatasetReadError, ValidationFailed)):
        landed = ingest(spec, services.home.landing, trail)
        publish(spec, landed.path, services.dataset_store(), gx, trail)
    records = list(open_audit_log(GovernanceHome.resolve().audit_db).records())
    assert [r.action for r in records] == ["dataset.rejected"] and records[0].reasons

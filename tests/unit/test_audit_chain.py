from __future__ import annotations

import dataclasses

import pytest

from governance.audit.chain import GENESIS, AuditRecord, Entry, seal, verify


def chain(n: int = 5) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for seq in range(1, n + 1):
        prev = records[-1].hash if records else GENESIS
        entry = Entry(
            "dagster:run", "dataset.published", "dataset:penguins", {"md5": f"{seq:032x}"}, "published"
        )
        records.append(seal(seq, f"2026-11-26T00:00:0{seq}+00:00", entry, prev))
    return records


def test_an_intact_chain_verifies() -> None:
    assert verify(chain()) is None
    assert verify([]) is None


def renumber(records: list[AuditRecord]) -> list[AuditRecord]:
    return [dataclasses.replace(r, seq=i) for i, r in enumerate(records, start=1)]


@pytest.mark.parametrize(
    ("tamper", "seq", "says"),
    [
        (lambda r: [*r[:2], dataclasses.replace(r[2], decision="rejected"), *r[3:]], 3, "edited"),
        (lambda r: [*r[:2], dataclasses.replace(r[2], versions={"md5": "f" * 32}), *r[3:]], 3, "edited"),
        (
            lambda r: [*r[:2], dataclasses.replace(r[2], at="2020-01-01T00:00:00+00:00"), *r[3:]],
            3,
            "edited",
        ),
        (lambda r: [*r[:2], *r[3:]], 4, "deleted or inserted"),  # a gap in the sequence
        (lambda r: renumber([*r[:2], *r[3:]]), 3, "does not follow"),  # deleted, then renumbered
        (lambda r: renumber([*r[:2], r[0], *r[2:]]), 3, "does not follow"),  # a copy inserted
        (lambda r: renumber([r[0], r[2], r[1], *r[3:]]), 2, "does not follow"),  # reordered
        (lambda r: [dataclasses.replace(r[0], prev_hash="1" * 64), *r[1:]], 1, "does not follow"),
    ],
)
def test_every_kind_of_tampering_names_the_first_broken_record(tamper, seq: int, says: str) -> None:  # type: ignore[no-untyped-def]
    broken = verify(tamper(chain()))
    assert broken is not None and broken.seq == seq and says in broken.reason, broken


def test_rehashing_an_edit_still_breaks_the_next_link() -> None:
    records = chain()
    forged = seal(
        3,
        records[2].at,
        Entry("mallory", "dataset.published", "dataset:penguins", {}, "published"),
        records[1].hash,
    )
    broken = verify([*records[:2], forged, *records[3:]])
    assert broken is not None and broken.seq == 4

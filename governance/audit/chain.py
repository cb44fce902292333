"""The record format and the chain rule, with no storage attached.

Each record's hash covers its own canonical content and the previous record's hash, so an edit, a
deletion, an insertion or a reordering anywhere breaks the chain at (or right after) that place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """What a caller records; the log adds sequence, time and the chain."""

    actor: str
    action: str
    subject: str
    versions: Mapping[str, str]
    decision: str = ""
    reasons: Sequence[str] = ()


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    versions: dict[str, str]
    decision: str
    reasons: tuple[str, ...]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


def record_hash(seq: int, at: str, entry: Entry, prev_hash: str) -> str:
    canonical = json.dumps(
        {
            "seq": seq,
            "at": at,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "versions": dict(entry.versions),
            "decision": entry.decision,
            "reasons": list(entry.reasons),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def seal(seq: int, at: str, entry: Entry, prev_hash: str) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        at=at,
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        versions=dict(entry.versions),
        decision=entry.decision,
        reasons=tuple(entry.reasons),
        prev_hash=prev_hash,
        hash=record_hash(seq, at, entry, prev_hash),
    )


def verify(records: Iterable[AuditRecord]) -> ChainBreak | None:
    """The first place the chain breaks, in sequence order, or None when it holds."""
    expected_seq, expected_prev = 1, GENESIS
    for record in records:
        if record.seq != expected_seq:
            return ChainBreak(
                record.seq, f"expected record {expected_seq} here: a record was deleted or inserted"
            )
        if record.prev_hash != expected_prev:
            return ChainBreak(
                record.seq, "does not follow the record before it: inserted, deleted or reordered"
            )
        entry = Entry(
            record.actor, record.action, record.subject, record.versions, record.decision, record.reasons
        )
        if record_hash(record.seq, record.at, entry, record.prev_hash) != record.hash:
            return ChainBreak(record.seq, "its content no longer matches its hash: edited")
        expected_seq, expected_prev = expected_seq + 1, record.hash
    return None

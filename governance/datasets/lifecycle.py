"""The life of a dataset version: ingest the raw file, clean it, validate it, then publish it.

Write-audit-publish: a version reaches DVC (and so becomes current) only after its suite passed, so a
bad raw file can fail a run but never replace the last good version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from governance.audit.store import AuditTrail
from governance.config import DatasetSpec
from governance.datasets.reading import read_table
from governance.datasets.validation import ValidationReport, validate_frame
from governance.datasets.versioning import DatasetStore, DatasetVersion
from governance.errors import DatasetReadError, PermanentError, ValidationFailed
from governance.locks import Locks
from governance.plugins import load_callable
from governance.provenance import fingerprint

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LandedFile:
    source: Path
    path: Path
    sha256: str
    rows: int


@dataclass(frozen=True)
class PublishedVersion:
    version: DatasetVersion
    previous: DatasetVersion | None
    report: ValidationReport
    rows: int
    null_counts: dict[str, int]
    landed_sha256: str  # the raw file it was made from, as its lineage input names it


def code_version(spec: DatasetSpec) -> str:
    """Cleaner, suite and schema: change any and the dataset is stale in the UI."""
    return fingerprint(spec.cleaner.file, spec.cleaner.function, spec.suite, json.dumps(spec.columns))


def read_version(spec: DatasetSpec, store: DatasetStore, md5: str) -> pd.DataFrame:
    """Exactly version `md5` of the dataset, from DVC, whatever is current now."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{spec.name}.csv"
        store.export(spec.name, md5, path)
        return read_table(path, spec.columns)


def landed_path(spec: DatasetSpec, landing: Path) -> Path:
    return landing / f"{spec.raw_name}.csv"


def ingest(spec: DatasetSpec, landing: Path, trail: AuditTrail) -> LandedFile:
    """Copy the raw file into the landing area once it reads as the dataset's schema. A file that
    does not is refused on the record, as a failed validation is: a feed's bad day is an event."""
    source = spec.source.resolve()
    try:
        frame = read_table(source, spec.columns)
    except DatasetReadError as exc:
        trail.record("dataset.rejected", f"dataset:{spec.name}", {}, "rejected", [str(exc)])
        raise
    target = landed_path(spec, landing)
    fd, tmp = tempfile.mkstemp(dir=landing, prefix=f".{spec.raw_name}.")
    os.close(fd)
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    digest = _sha256(target)
    return LandedFile(source=source, path=target, sha256=digest, rows=len(frame))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish(
    spec: DatasetSpec, landed: Path, store: DatasetStore, gx_dir: Path, trail: AuditTrail
) -> PublishedVersion:
    """Clean the landed file, validate the result, and only then commit it as the new version."""
    landed_sha256 = _sha256(landed)  # the ingest's digest of it: landing replaces, never edits
    cleaned = load_callable(spec.cleaner)(read_table(landed, spec.columns))
    report = validate_frame(
        cleaned, dataset=spec.name, suite_path=spec.suite, gx_dir=gx_dir, locks=store.locks
    )
    previous = store.current(spec.name)
    if not report.success:
        reasons = [outcome.describe_failure() for outcome in report.failures]
        current = {"current_md5": previous.md5} if previous else {}
        trail.record("dataset.rejected", f"dataset:{spec.name}", current, "rejected", reasons)
        raise ValidationFailed(f"{spec.name} from {spec.source.resolve()}: {report.summary()}", report)

    def record(version: DatasetVersion) -> None:
        versions = {"md5": version.md5, **({"previous_md5": previous.md5} if previous else {})}
        summary = [report.summary()]
        trail.record("dataset.published", f"dataset:{spec.name}", versions, "published", summary)

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / f"{spec.name}.csv"
        cleaned.to_csv(staged, index=False)
        version = store.commit(spec.name, staged, record)
    nulls = {str(col): int(n) for col, n in cleaned.isna().sum().items()}
    return PublishedVersion(version, previous, report, len(cleaned), nulls, landed_sha256)


def validate_current(
    spec: DatasetSpec, store: DatasetStore, gx_dir: Path, trail: AuditTrail
) -> tuple[DatasetVersion, ValidationReport]:
    """Re-validate the version DVC holds as current: what the daily quality run checks."""
    version = store.current(spec.name)
    if version is None:
        raise PermanentError(f"{spec.name}: no version has been published yet; materialize it first")
    frame = read_table(store.checked_out(spec.name), spec.columns)
    report = validate_frame(
        frame, dataset=spec.name, suite_path=spec.suite, gx_dir=gx_dir, locks=store.locks
    )
    decision = "passed" if report.success else "failed"
    reasons = [outcome.describe_failure() for outcome in report.failures]
    trail.record("dataset.checked", f"dataset:{spec.name}", {"md5": version.md5}, decision, reasons)
    return version, report


def validate_file(spec: DatasetSpec, path: Path, gx_dir: Path, locks: Locks) -> ValidationReport:
    """Run the dataset's suite on any file, as it is (no cleaning)."""
    frame = read_table(path, spec.columns)
    return validate_frame(frame, dataset=spec.name, suite_path=spec.suite, gx_dir=gx_dir, locks=locks)

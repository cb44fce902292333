"""A validation report as a person reads it in a terminal."""

from __future__ import annotations

from pathlib import Path

from governance.datasets.validation import ExpectationOutcome, ValidationReport


def render(report: ValidationReport, path: Path) -> str:
    verdict = "PASSED" if report.success else "FAILED"
    failed = len(report.failures)
    lines = [
        f"{report.dataset}: {path}: {verdict} "
        f"({len(report.outcomes) - failed}/{len(report.outcomes)} expectations passed, "
        f"{report.row_count} rows, suite {report.suite.name})",
    ]
    width = max((len(o.column or "(table)") for o in report.outcomes), default=7)
    ordered = sorted(report.outcomes, key=lambda o: o.success)
    lines += [_row(outcome, width) for outcome in ordered]
    if report.sample_rows:
        lines.append("offending rows (sample):")
        lines += [
            "  " + ", ".join(f"{key}={value}" for key, value in row.items())
            for row in report.sample_rows
        ]
    if report.docs_url:
        lines.append(f"data docs: {report.docs_url}")
    return "\n".join(lines)


def _row(outcome: ExpectationOutcome, width: int) -> str:
    mark = "ok  " if outcome.success else "FAIL"
    column = (outcome.column or "(table)").ljust(width)
    detail = ""
    if not outcome.success:
        detail = (
            f"  {outcome.unexpected_count} unexpected: {outcome.observed}"
            if outcome.unexpected_count
            else f"  observed: {outcome.observed}"
        )
    return f"  {mark}  {column}  {outcome.rule}{detail}"

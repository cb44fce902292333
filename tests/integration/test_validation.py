"""Real Great Expectations validations of the real penguins data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.config import DatasetSpec
from governance.datasets.reading import read_table
from governance.datasets.validation import load_suite, validate_frame
from governance.errors import ConfigError
from governance.plugins import load_callable


def clean_penguins(spec: DatasetSpec, path: Path):  # type: ignore[no-untyped-def]
    return load_callable(spec.cleaner)(read_table(path, spec.columns))


def test_clean_penguins_pass_the_suite(
    penguins_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path
) -> None:
    frame = clean_penguins(penguins_spec, penguins_csv)
    report = validate_frame(
        frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=tmp_path / "gx"
    )
    assert report.success, report.summary()
    assert report.row_count == 333
    assert len(report.outcomes) == len(json.loads(penguins_spec.suite.read_text())["expectations"])
    assert report.docs_url and Path(report.docs_url.removeprefix("file://")).is_file()
    assert report.sample_rows == ()


def test_the_data_docs_index_lists_the_latest_validations_only(
    penguins_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GX rebuilds the index on each validation from every stored result: bounded, each validation
    costs the same however long the history; every page stays reachable by its own link."""
    import re

    from governance.datasets import validation

    monkeypatch.setattr(validation, "DOCS_INDEX_LIMIT", 3)
    frame = clean_penguins(penguins_spec, penguins_csv)
    urls = [
        validate_frame(
            frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=tmp_path / "gx"
        ).docs_url
        for _ in range(5)
    ]
    pages = [Path(str(url).removeprefix("file://")) for url in urls]
    assert all(page.is_file() for page in pages)
    site, _, _ = str(pages[0]).partition("local_site/")
    index = Path(site) / "local_site" / "index.html"
    listed = set(re.findall(r'validations/[^"\']+?\.html', index.read_text()))
    assert len(listed) == 3
    assert {str(p).split("local_site/")[1] for p in pages[2:]} == listed


def test_raw_penguins_fail_on_missing_values(
    penguins_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path
) -> None:
    frame = read_table(penguins_csv, penguins_spec.columns)
    report = validate_frame(
        frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=tmp_path / "gx"
    )
    assert not report.success
    by_rule = {(o.column, o.expectation): o for o in report.failures}
    sex_nulls = by_rule[("sex", "expect_column_values_to_not_be_null")]
    assert sex_nulls.unexpected_count == 11
    # The offending rows point at their lines in the raw file (line 5 is the first NA row).
    assert report.sample_rows[0]["line"] == 5
    assert report.sample_rows[0]["species"] == "Adelie"


def test_out_of_range_value_is_named_with_its_rule(
    penguins_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path
) -> None:
    frame = clean_penguins(penguins_spec, penguins_csv)
    frame.loc[frame.index[0], "body_mass_g"] = 99_000
    report = validate_frame(
        frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=tmp_path / "gx"
    )
    assert [(o.column, o.expectation) for o in report.failures] == [
        ("body_mass_g", "expect_column_values_to_be_between")
    ]
    failure = report.failures[0]
    assert failure.unexpected_count == 1 and failure.observed == "99000"
    assert "column 'body_mass_g' breaks expect_column_values_to_be_between(" in report.summary()
    assert report.sample_rows == (
        {"line": 2, **{k: v for k, v in report.sample_rows[0].items() if k != "line"}},
    )
    assert report.sample_rows[0]["body_mass_g"] == 99_000


def test_result_format_stays_bounded(
    penguins_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Every row wrong still yields a small result: a few examples, not the frame (GX #10327)."""
    frame = clean_penguins(penguins_spec, penguins_csv)
    frame["island"] = "Atlantis"
    report = validate_frame(
        frame, dataset="penguins", suite_path=penguins_spec.suite, gx_dir=tmp_path / "gx"
    )
    island = next(o for o in report.failures if o.column == "island")
    assert island.unexpected_count == 333
    assert len(island.unexpected_rows) <= 5 and len(report.sample_rows) <= 5


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not a readable expectation suite"),
        ('{"expectations": []}', "non-empty `expectations`"),
        ('{"expectations": [{"kwargs": {}}]}', r"expectations\[0\]: needs a `type`"),
    ],
)
def test_malformed_suite_is_a_config_error(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "suite.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        load_suite(path)

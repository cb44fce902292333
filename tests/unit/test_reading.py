from __future__ import annotations

from pathlib import Path

import pytest

from governance.config import DatasetSpec
from governance.datasets.reading import read_table
from governance.errors import DatasetReadError
from tests.badfiles import BAD_FILES, BadFile


def test_real_file_reads_typed(penguins_csv: Path, penguins_spec: DatasetSpec) -> None:
    frame = read_table(penguins_csv, penguins_spec.columns)
    assert len(frame) == 344
    assert list(frame.columns) == list(penguins_spec.columns)
    assert str(frame["bill_length_mm"].dtype) == "float64"
    # year has no gaps, so it is a plain integer; body mass has two, so it stays float.
    assert str(frame["year"].dtype) == "int64"
    assert str(frame["body_mass_g"].dtype) == "float64"
    assert int(frame["sex"].isna().sum()) == 11


@pytest.mark.parametrize(
    "bad", [b for b in BAD_FILES if b.rejected_by == "penguins_raw"], ids=lambda b: b.name
)
def test_unreadable_files_name_file_column_and_rule(
    bad: BadFile, penguins_csv: Path, penguins_spec: DatasetSpec, tmp_path: Path
) -> None:
    path = bad.write(penguins_csv, tmp_path)
    with pytest.raises(DatasetReadError) as info:
        read_table(path, penguins_spec.columns)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for phrase in bad.says:
        assert phrase in message, message
    assert "\n" not in message


def test_fractional_value_in_integer_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("n\n1\n2.5\n")
    with pytest.raises(
        DatasetReadError,
        match=r"column 'n' has 1 value\(s\) that are not whole \(rule: integer\); line 3: '2.5'",
    ):
        read_table(path, {"n": "integer"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetReadError, match="file not found"):
        read_table(tmp_path / "absent.csv", {"n": "integer"})

"""Read a CSV file as a dataset with a declared column schema.

Each failure names the file, the column and the rule it breaks, because the person fixing it has the
raw file open, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from governance.config import ColumnType
from governance.errors import DatasetReadError

if TYPE_CHECKING:
    import pandas as pd

MISSING_MARKERS = ["", "NA", "NaN", "nan", "null", "NULL"]
_EXAMPLES = 3


def read_table(path: Path, columns: Mapping[str, ColumnType]) -> pd.DataFrame:
    """The file as it is: every column in the file's order (the suite judges extra or reordered
    ones), the declared ones typed; missing values stay missing."""
    frame = _read_text_csv(path)
    _require_columns(path, frame.columns, columns)
    for name, kind in columns.items():
        if kind != "string":
            frame[name] = _coerce_numeric(path, frame[name], name, kind)
    return frame


def _read_text_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise DatasetReadError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DatasetReadError(f"{path}: file is empty (rule: non-empty)")
    with open(path, "rb") as handle:
        if b"\x00" in handle.read(8192):
            raise DatasetReadError(f"{path}: binary data, not a text file (rule: csv)")
    _refuse_ragged_rows(path)
    try:
        # index_col=False: a trailing delimiter on every row must not turn the first column into
        # the index (pandas' default for rows one field longer than the header).
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=MISSING_MARKERS,
            encoding="utf-8",
            index_col=False,
        )
    except UnicodeDecodeError:
        raise DatasetReadError(f"{path}: not a UTF-8 text file (rule: csv)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise DatasetReadError(f"{path}: not a readable CSV file: {reason} (rule: csv)") from None


def _refuse_ragged_rows(path: Path) -> None:
    """Every line has as many fields as the header. pandas would drop a trailing extra field (or
    make the first column the index) and fill a short row with missing values; and it renames a
    repeated header (`sex`, `sex.1`), so the suite would judge a column the file does not have."""
    import csv
    from collections import Counter

    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, [])
            repeated = [name for name, count in Counter(header).items() if count > 1]
            if repeated:
                raise DatasetReadError(
                    f"{path}: column(s) {', '.join(map(repr, repeated))} appear more than once in "
                    "the header (rule: unique-columns)"
                )
            for row in rows:
                if row and len(row) != len(header):
                    raise DatasetReadError(
                        f"{path}: line {rows.line_num} has {len(row)} fields, the header has "
                        f"{len(header)} (rule: csv)"
                    )
    except (UnicodeDecodeError, csv.Error):
        return  # the CSV reader names these


def _require_columns(path: Path, found: pd.Index, declared: Mapping[str, ColumnType]) -> None:
    missing = [name for name in declared if name not in found]
    if missing:
        unexpected = [str(name) for name in found if name not in declared]
        hint = f"; unexpected columns: {', '.join(unexpected)}" if unexpected else ""
        raise DatasetReadError(
            f"{path}: missing column(s) {', '.join(missing)} (rule: required-columns){hint}"
        )


def _coerce_numeric(path: Path, values: pd.Series, column: str, kind: ColumnType) -> pd.Series:
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        _fail_values(path, values, bad, column, "numeric", "value(s) that are not numbers")
    if kind == "integer":
        fractional = numbers.notna() & (numbers % 1 != 0)
        if fractional.any():
            _fail_values(path, values, fractional, column, "integer", "value(s) that are not whole")
        # int64 needs every value; with gaps the column stays float64, which the suite reports.
        return numbers.astype("int64") if numbers.notna().all() else numbers.astype("float64")
    return numbers.astype("float64")


def _fail_values(
    path: Path, values: pd.Series, bad: pd.Series, column: str, rule: str, what: str
) -> None:
    # +2: one for the header line, one because CSV lines count from 1.
    examples = ", ".join(f"line {idx + 2}: {values[idx]!r}" for idx in values[bad].index[:_EXAMPLES])
    raise DatasetReadError(
        f"{path}: column {column!r} has {int(bad.sum())} {what} (rule: {rule}); {examples}"
    )

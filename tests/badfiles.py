"""Bad raw files made from the real penguins.csv, with what their error must say.

Each case: (name, how to make it from the real file's text, the phrases the error must contain,
the asset that must reject it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BadFile:
    name: str
    make: Callable[[str], bytes]
    says: tuple[str, ...]
    rejected_by: str  # "penguins_raw" (cannot be read as the dataset) or "penguins" (breaks the suite)

    def write(self, real: Path, target_dir: Path) -> Path:
        path = target_dir / f"{self.name}.csv"
        path.write_bytes(self.make(real.read_text()))
        return path


def _edit(text: str, row: int, column: str, value: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(text)))
    rows[row][column] = value
    return _dump(rows, list(rows[0]))


def _rename(text: str, old: str, new: str | None) -> bytes:
    rows = list(csv.DictReader(io.StringIO(text)))
    fields = [f for f in rows[0] if f != old] + ([new] if new else [])
    if new:
        for r in rows:
            r[new] = r.pop(old)
    else:
        for r in rows:
            r.pop(old)
    return _dump(rows, fields)


def _dump(rows: list[dict[str, str]], fields: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


BAD_FILES = [
    BadFile(
        "garbage_binary",
        lambda _: bytes(range(256)) * 8,
        ("binary data, not a text file", "rule: csv"),
        "penguins_raw",
    ),
    BadFile(
        "latin1_text",
        lambda t: t.replace("Adelie", "Ad\u00e9lie", 1).encode("latin-1"),
        ("not a UTF-8 text file", "rule: csv"),
        "penguins_raw",
    ),
    BadFile(
        "garbage_text",
        lambda _: b"<html><body>502 Bad Gateway</body></html>\n",
        ("missing column(s) species", "rule: required-columns"),
        "penguins_raw",
    ),
    BadFile("empty", lambda _: b"", ("file is empty", "rule: non-empty"), "penguins_raw"),
    BadFile(
        "missing_column",
        lambda t: _rename(t, "sex", None),
        ("missing column(s) sex", "rule: required-columns"),
        "penguins_raw",
    ),
    BadFile(
        "renamed_column",
        lambda t: _rename(t, "body_mass_g", "mass_g"),
        ("missing column(s) body_mass_g", "unexpected columns: mass_g"),
        "penguins_raw",
    ),
    BadFile(
        "text_in_numeric",
        lambda t: _edit(t, 0, "bill_length_mm", "thirty-nine"),
        ("column 'bill_length_mm'", "rule: numeric", "line 2: 'thirty-nine'"),
        "penguins_raw",
    ),
    BadFile(
        "out_of_range",
        lambda t: _edit(t, 0, "flipper_length_mm", "1810"),
        ("column 'flipper_length_mm'", "expect_column_values_to_be_between", "1810"),
        "penguins",
    ),
    BadFile(
        "unknown_species",
        lambda t: _edit(t, 1, "species", "Emperor"),
        ("column 'species'", "expect_column_values_to_be_in_set", "Emperor"),
        "penguins",
    ),
]

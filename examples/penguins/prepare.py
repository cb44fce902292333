"""Cleaning for the Palmer penguins sample: the governed dataset has only complete observations."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Drop incomplete rows; with no missing values left, counts and years become plain integers.

    The index is kept, so a row that later fails validation can be traced to its raw line.
    """
    complete = raw.dropna(how="any")
    return complete.astype({"body_mass_g": "int64", "flipper_length_mm": "int64", "year": "int64"})

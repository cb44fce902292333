"""Each simulated day's source file, drawn from the real sample with a seed: the same season is the
same bytes on every machine, so a day that fails can be replayed alone.

A day resamples the sample's rows, drifts the measurements a little further each day (as a
population, or an instrument, slowly does), and on a defect day carries one of the faults real feeds
deliver. The dataset's suite exists to refuse each of them but one: mixed-up labels are valid values,
which only the retrained model's evaluation gate can catch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# fault -> what a person would see in the feed
DEFECTS = {
    "grams_as_kilograms": "a batch of body masses arrives in kilograms",
    "unknown_island": "a new site is sent under a name the dataset does not know",
    "truncated": "the export stops after a fifth of its rows",
    "wrong_year": "a batch is stamped with a year the study never ran",
    "mislabelled": "a batch's species labels are mixed up: every value is valid, the data is wrong",
}
# the defects no expectation can see: the retrained model's evaluation gate refuses them instead
CAUGHT_BY_THE_GATE = frozenset({"mislabelled"})
# measurement -> drift per day (in its unit), small enough that a month stays in the suite's ranges
DRIFT_PER_DAY = {"bill_length_mm": 0.02, "bill_depth_mm": -0.005, "body_mass_g": 2.0}


def day_frame(sample: pd.DataFrame, day: int, seed: int, defect: str | None) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng([seed, day])
    frame = sample.sample(n=len(sample), replace=True, random_state=rng).reset_index(drop=True)
    for column, per_day in DRIFT_PER_DAY.items():
        noise = rng.normal(0.0, abs(per_day) * 2, len(frame))
        drifted = frame[column] + per_day * day + noise
        frame[column] = drifted.round(0 if column == "body_mass_g" else 1)
    for column in ("flipper_length_mm", "body_mass_g"):
        frame[column] = frame[column].astype("Int64")
    if defect is not None:
        frame = _with_defect(frame, defect, rng)
    return frame


def _with_defect(frame: pd.DataFrame, defect: str, rng: np.random.Generator) -> pd.DataFrame:
    batch = rng.choice(len(frame), size=len(frame) // 10, replace=False)
    if defect == "grams_as_kilograms":
        frame["body_mass_g"] = frame["body_mass_g"].astype("Float64")
        frame.loc[batch, "body_mass_g"] = (frame.loc[batch, "body_mass_g"] / 1000).round(2)
    elif defect == "unknown_island":
        frame.loc[batch, "island"] = "Atlantis"
    elif defect == "truncated":
        frame = frame.head(len(frame) // 5)
    elif defect == "wrong_year":
        frame.loc[batch, "year"] = 2031
    elif defect == "mislabelled":
        mixed = rng.choice(len(frame), size=len(frame) // 4, replace=False)
        frame.loc[mixed, "species"] = rng.permutation(frame.loc[mixed, "species"].to_numpy())
    else:
        raise ValueError(f"unknown defect {defect!r}: one of {', '.join(DEFECTS)}")
    return frame


def write_day(sample: Path, day: int, seed: int, defect: str | None, destination: Path) -> Path:
    """Day `day`'s source, written beside `destination` and renamed onto it, as a feed drops a file:
    a reader never sees half of it."""
    import pandas as pd

    frame = day_frame(pd.read_csv(sample), day, seed, defect)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    frame.to_csv(partial, index=False, na_rep="NA")
    partial.replace(destination)
    return destination

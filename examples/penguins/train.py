"""Trainer for the penguin species classifier (scikit-learn).

The platform owns the split, evaluation, tracking and registration; a trainer only fits a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


def train(features: pd.DataFrame, labels: pd.Series, *, params: dict[str, Any], seed: int) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = LogisticRegression(
        C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 1000)), random_state=seed
    )
    return Pipeline([("preprocess", preprocess), ("classify", model)]).fit(
        features[NUMERIC + CATEGORICAL], labels
    )

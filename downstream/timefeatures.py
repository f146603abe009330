"""Calendar covariates of a timestamp index, as TS2Vec's forecasting loader builds them."""
from __future__ import annotations

import numpy as np
import pandas as pd

TIME_FEATURE_NAMES = ("minute", "hour", "dayofweek", "day", "dayofyear", "month", "weekofyear")


def time_features(index: pd.DatetimeIndex) -> np.ndarray:
    """Seven integer calendar features per step -> (T, 7) float32, columns TIME_FEATURE_NAMES.

    Source: TS2Vec ``datautils._get_time_features`` (Yue et al., AAAI 2022); the caller
    standardises them with training-split statistics.

    Raises:
        ValueError: ``index`` is not a DatetimeIndex.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"index: got {type(index).__name__}; allowed: a pandas DatetimeIndex")
    cols = [index.minute, index.hour, index.day_of_week, index.day, index.day_of_year, index.month,
            index.isocalendar().week.to_numpy()]
    return np.stack([np.asarray(c, dtype=np.float32) for c in cols], axis=1)

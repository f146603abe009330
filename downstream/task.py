"""A forecasting task: encoder input, scaled targets and splits, built leak-free from raw data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import StandardScaler

from .datasets import SeriesData, check_finite
from .splits import split_bounds
from .timefeatures import time_features


@dataclass
class ForecastTask:
    """Inputs and targets of one forecasting task, standardised with training rows only.

    Attributes:
        name: dataset name.
        x: (T, C) float32 encoder input: standardised calendar covariates (TS2Vec's 7, when the
            series has dates) followed by the standardised input variables; NaN = missing.
        y: (T, n) float64 standardised target variables (NaN = missing).
        y_mean, y_scale: (n,) training-split statistics, for metrics on the raw scale.
        splits: {'train' | 'val' | 'test': (start, end)} row bounds.
        inputs, targets: variable names; univariate: whether inputs == targets only.
        n_covariates: number of leading covariate channels in ``x``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    splits: dict
    inputs: list
    targets: list
    univariate: bool
    n_covariates: int


def _targets(data: SeriesData, target, univariate: bool) -> list:
    if target:
        names = [t.strip() for t in (target.split(",") if isinstance(target, str) else target)]
        missing = [t for t in names if t not in data.columns]
        if missing:
            raise ValueError(f"target: got {missing[0]!r}, not a column of {data.name}; "
                             f"allowed: {data.columns}")
        return names
    if univariate and data.default_target:
        return [data.default_target]
    if univariate and len(data.columns) > 1:
        shown = data.columns if len(data.columns) <= 10 else data.columns[:10] + ["..."]
        raise ValueError(f"univariate: got True but {data.name} has {len(data.columns)} "
                         "columns, no 'OT' column and no default target; allowed: name the "
                         f"column to forecast with target=, one of {shown}")
    return list(data.columns)


def _scale(values: np.ndarray, train: tuple, names: list, kind: str) -> tuple:
    rows = values[train[0]:train[1]]
    observed = np.isfinite(rows).sum(axis=0)
    for name, count in zip(names, observed):
        if count < 2:
            raise ValueError(f"data: {kind} {name!r} has {count} observed values in the "
                             "training split; allowed: at least 2")
    scaler = StandardScaler().fit(rows)
    if kind == "column":
        for name, var in zip(names, scaler.var_):
            if var == 0:
                raise ValueError(f"data: column {name!r} is constant on the training split; "
                                 "allowed: a varying series (drop it or pick another --target)")
    return scaler.transform(values), scaler


def make_task(data: SeriesData, target=None, univariate: bool = False,
              covariates: bool = True, trim: bool = True) -> ForecastTask:
    """Build the task: univariate uses the target columns as inputs (default target: ``OT``
    or the dataset's own; a one-column series is its own target); multivariate uses all
    columns as inputs and forecasts the ``target`` columns (default: all). ``trim`` drops
    rows after the test split (ETT files run past it).

    Raises:
        ValueError: unknown target column (lists the columns), ``univariate`` without a
            target to forecast (no ``target``, no ``OT`` nor dataset default, several
            columns), +/-inf in an input column (naming column and row), a constant or
            unobserved column on the training split, or splits that do not fit the series.
    """
    targets = _targets(data, target, univariate)
    inputs = targets if univariate else list(data.columns)
    splits = split_bounds(data.split, len(data.values))
    cols = [data.columns.index(c) for c in inputs]
    check_finite(data.values[:, cols], inputs, data.name)
    scaled, scaler = _scale(data.values[:, cols], splits["train"], inputs, "column")
    t_idx = [inputs.index(t) for t in targets]
    parts, n_cov = [], 0
    if covariates and data.dates is not None and not data.dates.isna().any():
        cov, _ = _scale(time_features(data.dates), splits["train"], ["calendar"] * 7, "covariate")
        parts.append(cov)
        n_cov = cov.shape[1]
    parts.append(scaled)
    end = splits["test"][1] if trim else len(scaled)
    return ForecastTask(name=data.name, x=np.concatenate(parts, axis=1)[:end].astype(np.float32),
                        y=scaled[:end, t_idx], y_mean=scaler.mean_[t_idx],
                        y_scale=scaler.scale_[t_idx], splits=splits, inputs=inputs,
                        targets=targets, univariate=univariate, n_covariates=n_cov)


def check_horizons(task: ForecastTask, horizons, padding: int) -> list:
    """Validate forecast horizons H against the splits: every split must hold samples.

    Raises:
        ValueError: a horizon that is not a positive int, or too long for a split.
    """
    if not horizons:
        raise ValueError("horizons: got none; allowed: one or more positive ints, e.g. 24,48")
    out = []
    for h in horizons:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise ValueError(f"horizons: got {h!r}; allowed: positive ints")
        for name, (start, end) in task.splits.items():
            need = h + 1 + (padding if name == "train" else 0)
            if end - start < need:
                raise ValueError(
                    f"horizons: H={h} is too long for the {name} split of {task.name} "
                    f"({end - start} steps; lookback {padding} + horizon needs at least {need})")
        out.append(int(h))
    return out

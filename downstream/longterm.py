"""The long-horizon forecasting protocol shared by Titans and Time-LLM (the benchmark of
Informer / Autoformer / DLinear): multivariate, every variable in and out, no calendar
covariates, lookback L = 96, H = 96 / 192 / 336 / 720, ETT splits 12 / 4 / 4 months (others
70 / 10 / 20, :func:`downstream.splits.split_bounds`), standardised with training statistics,
MSE / MAE on that scale. Sample t is the window of rows [t - L, t) and its label rows
[t, t + H); a split holds the samples whose labels lie inside it (the window may reach into
the split before). The reference row is the probe's raw-lookback Ridge."""
from __future__ import annotations

import numpy as np
import torch

from .probes import encode_task, fit_ridge, probe_lookback
from .task import ForecastTask

LOOKBACK = 96
HORIZONS = (96, 192, 336, 720)


class SeriesWindows:
    """Windows of one series: values (T, C) and optional features (T, D) as the model input,
    labels y (T, C); missing inputs read as 0 (the training mean), missing labels as NaN."""

    def __init__(self, values: np.ndarray, y: np.ndarray, lookback: int, horizon: int,
                 features: np.ndarray | None = None):
        self.values = torch.as_tensor(np.nan_to_num(values).astype(np.float32))
        self.features = (None if features is None else
                         torch.as_tensor(np.nan_to_num(features).astype(np.float32)))
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        self.lookback, self.horizon = lookback, horizon

    def starts(self, bounds: tuple) -> np.ndarray:
        """Sample times t whose labels lie inside ``bounds`` = (start, end) rows."""
        return np.arange(max(bounds[0], self.lookback), bounds[1] - self.horizon + 1)

    def inputs(self, ts) -> tuple:
        """(B,) times -> (values (B, L, C), features (B, L, D) or None), rows [t - L, t)."""
        idx = torch.as_tensor(np.asarray(ts, dtype=np.int64))[:, None] - self.lookback
        idx = idx + torch.arange(self.lookback)
        return self.values[idx], None if self.features is None else self.features[idx]

    def labels(self, ts) -> torch.Tensor:
        """(B,) times -> (B, H, C), rows [t, t + H)."""
        idx = torch.as_tensor(np.asarray(ts, dtype=np.int64))[:, None] + torch.arange(self.horizon)
        return self.y[idx]


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the finite target entries (0 with a graph when there is none)."""
    keep = torch.isfinite(target)
    return ((pred - torch.nan_to_num(target)) ** 2)[keep].mean() if keep.any() else pred.sum() * 0


def task_windows(task: ForecastTask, horizon: int, lookback: int = LOOKBACK,
                 features: np.ndarray | None = None) -> SeriesWindows:
    """The windows of a multivariate task (inputs = targets, covariates left out).

    Raises:
        ValueError: a task whose inputs are not its targets, or features of the wrong length.
    """
    if list(task.inputs) != list(task.targets):
        raise ValueError(f"target: got {task.targets} with inputs {task.inputs}; allowed: all "
                         "variables in and out (Titans forecasts every input variable)")
    if features is not None and len(features) != len(task.x):
        raise ValueError(f"features: got {len(features)} rows; allowed: {len(task.x)}")
    return SeriesWindows(task.x[:, task.n_covariates:], task.y, lookback, horizon, features)


def check_horizon(task: ForecastTask, horizon, lookback: int = LOOKBACK) -> int:
    """Raise ValueError unless H is a positive int leaving a sample in every split."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon: got {horizon!r}; allowed: a positive int, e.g. 96")
    for name, (start, end) in task.splits.items():
        if end - max(start, lookback) < horizon:
            raise ValueError(f"horizon: H={horizon} is too long for the {name} split of "
                             f"{task.name} ({end - start} rows, lookback {lookback})")
    return int(horizon)


def causal_features(encoder, task: ForecastTask) -> np.ndarray:
    """(T, D) causal representations of every row of ``task`` by a frozen encoder (any object
    with TS2Vec's ``encode``; see :func:`downstream.encode_task`): row t sees rows <= t only,
    so the window [t - L, t) of features uses no value at or after t."""
    with torch.no_grad():
        return encode_task(encoder, task, len(task.x))


def errors(pred: torch.Tensor, label: torch.Tensor) -> tuple:
    """Per-sample squared and absolute error over the finite label entries, and whether the
    sample has any: (B,), (B,), (B,) bool numpy. A NaN forecast gives NaN errors."""
    keep = torch.isfinite(label)
    diff = torch.where(keep, pred - torch.nan_to_num(label), torch.zeros(()))
    count = keep.flatten(1).sum(1)
    sq = (diff ** 2).flatten(1).sum(1) / count.clamp(min=1)
    ab = diff.abs().flatten(1).sum(1) / count.clamp(min=1)
    return sq.double().numpy(), ab.double().numpy(), (count > 0).numpy()


def scores(sq: np.ndarray, ab: np.ndarray, keep: np.ndarray) -> dict:
    """``mse``, ``mae`` over the samples with a label (``keep``), ``n_samples``, ``curve``
    (cumulative MSE after each sample, (n,)); a NaN forecast makes them NaN (diverged)."""
    curve = np.cumsum(np.where(keep, sq, 0.0)) / np.maximum(np.cumsum(keep), 1)
    return {"mse": float(sq[keep].mean()) if keep.any() else float("nan"),
            "mae": float(ab[keep].mean()) if keep.any() else float("nan"),
            "n_samples": int(keep.sum()), "curve": curve}


#: The reference rows of :func:`reference_rows`, by key, with their printed names.
REFERENCE_NAMES = {"raw_ridge": "raw-lookback Ridge", "rlinear_ridge": "RLinear-style Ridge"}


def raw_ridge(task: ForecastTask, horizon: int, split: str = "test",
              lookback: int = LOOKBACK) -> dict:
    """The probe's raw-lookback Ridge (:func:`downstream.probe_lookback`, with ``lookback``
    steps) on ``split``; its samples are Titans' minus the first, whose label starts at the
    split's first row."""
    out = probe_lookback(task, [horizon], test=split == "test", length=lookback)
    return out["horizons"][horizon][split]


def reference_rows(task: ForecastTask, horizon: int, split: str = "test",
                   lookback: int = LOOKBACK) -> dict:
    """The reference rows on ``split``: ``{"raw_ridge": metrics, "rlinear_ridge": metrics}``
    (:func:`raw_ridge`; :func:`rlinear_ridge`, the linear model to beat)."""
    return {"raw_ridge": raw_ridge(task, horizon, split, lookback),
            "rlinear_ridge": rlinear_ridge(task, horizon, split, lookback)}


def _centred(data: SeriesWindows, bounds: tuple) -> tuple:
    """Windows and labels of ``bounds`` minus each window's own per-channel mean, one row per
    channel: -> (X (B * C, L), Y (B * C, H), mean (B, 1, C), labels (B, H, C))."""
    ts = data.starts(bounds)
    x, _ = data.inputs(ts)
    y = data.labels(ts)
    mean = x.mean(dim=1, keepdim=True)
    flat = (x - mean).transpose(1, 2).reshape(-1, x.shape[1])
    target = (y - mean).transpose(1, 2).reshape(-1, y.shape[1])
    return flat.double().numpy(), target.double().numpy(), mean, y


def rlinear_ridge(task: ForecastTask, horizon: int, split: str = "test",
                  lookback: int = LOOKBACK) -> dict:
    """The closed-form analogue of RLinear (Li et al., "Revisiting Long-term Time Series
    Forecasting: An Investigation on Linear Mapping", 2023; published ETTh1 average MSE 0.446
    at lookback 96): one Ridge, shared by all channels, maps each channel's window minus its
    own mean to the next H steps minus that mean. RLinear's division by the window's std
    cancels in a linear map whose error is measured on the original scale, so only the mean
    is removed (fitting on the divided scale instead lets near-constant windows dominate:
    ETTm1 H=96 0.554 against 0.351). Alpha chosen on validation as in
    :func:`downstream.fit_ridge`, fitted on the training split's samples (a channel's sample
    with a missing label left out), scored on ``split`` over Titans' samples (missing labels
    skipped): ``{"mse", "mae", "n_samples", "alpha"}``.

    Raises:
        ValueError: a split name other than val or test, or a horizon too long; a split
            without one complete label.
    """
    if split not in ("val", "test"):
        raise ValueError(f"split: got {split!r}; allowed: ['val', 'test']")
    check_horizon(task, horizon, lookback)
    data = task_windows(task, horizon, lookback)
    fit_rows = []
    for name in ("train", "val"):  # a channel's sample with a missing label is left out
        x, y = _centred(data, task.splits[name])[:2]
        keep = np.isfinite(y).all(axis=1)
        if not keep.any():
            raise ValueError(f"{name}: got no sample with a complete label; allowed: a split "
                             f"with one window of {horizon} labelled steps")
        fit_rows += [x[keep], y[keep]]
    model, alpha = fit_ridge(*fit_rows)
    x, _, mean, y = _centred(data, task.splits[split])
    pred = torch.as_tensor(model.predict(x), dtype=torch.float32)
    pred = pred.reshape(len(y), y.shape[2], horizon).transpose(1, 2) + mean
    out = scores(*errors(pred, y))
    out.pop("curve")
    return {**out, "alpha": float(alpha)}


def batched_errors(predict, data: SeriesWindows, bounds: tuple, batch_size: int = 64) -> tuple:
    """Per-sample errors of ``predict(inputs) -> (B, H, C)`` over the samples of ``bounds`` in
    time order, ``batch_size`` at a time, without gradients: see :func:`errors`."""
    parts = [(np.empty(0), np.empty(0), np.zeros(0, dtype=bool))]
    with torch.no_grad():
        ts = data.starts(bounds)
        for i in range(0, len(ts), batch_size):
            batch = ts[i:i + batch_size]
            parts.append(errors(predict(data.inputs(batch)), data.labels(batch)))
    return tuple(np.concatenate(p) for p in zip(*parts))

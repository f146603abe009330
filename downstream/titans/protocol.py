"""Long-horizon forecasting with the Titans MAC forecaster, and its three online test modes.

Protocol (the long-horizon benchmark of Informer / Autoformer / DLinear, as the Titans paper
reports it): multivariate (every variable in and out, no calendar covariates), lookback
L = 96, H = 96 / 192 / 336 / 720, ETT splits 12 / 4 / 4 months (others 70 / 10 / 20, see
:func:`downstream.splits.split_bounds`), standardised with training statistics, MSE / MAE on
that scale. Sample t is the window of rows [t - L, t) and its label rows [t, t + H); a split
holds the samples whose labels lie inside it (the window may reach into the split before).

Test modes (the neural memory memorises in every forward pass, also in ``eval()``):
  A  no accumulation: every test window starts from a fresh memory state (batched);
  B  memory only: one window at a time in time order, the memory state carried from each
     window to the next, every weight of the network frozen;
  C  full online: as B, and the network takes an Adam step (lr 1e-5) on sample t once its
     label is complete, i.e. just before sample t + H is predicted (no label before its time).
"""
from __future__ import annotations

import copy
import time
from collections import deque

import numpy as np
import torch

from ..probes import encode_task, probe_lookback
from ..task import ForecastTask
from .model import TitansConfig, TitansForecaster, detach_states

LOOKBACK = 96
HORIZONS = (96, 192, 336, 720)
MODES = ("A", "B", "C")
#: Training: Adam, batch 32, best validation epoch kept, early stop after PATIENCE epochs.
EPOCHS, BATCH_SIZE, LR, PATIENCE = 10, 32, 5e-4, 3
ONLINE_LR = 1e-5


def check_mode(mode) -> str:
    """Raise ValueError unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode: got {mode!r}; allowed: {list(MODES)}")
    return mode


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


def fit(model: TitansForecaster, data: SeriesWindows, splits: dict, epochs: int = EPOCHS,
        lr: float = LR, batch_size: int = BATCH_SIZE, patience: int = PATIENCE, seed: int = 0,
        max_seconds: float | None = None) -> dict:
    """Supervised training on the training windows; after each epoch the mode-A validation
    MSE, the best epoch's weights restored at the end. Returns ``{"train_loss", "val_mse",
    "val_mae"}`` (lists per epoch), ``best_epoch``, ``epoch_seconds`` (mean wall seconds per
    epoch). A NaN validation MSE (diverged) is never the best; with no finite epoch
    ``best_epoch`` is None and the last weights stay.

    Raises:
        ValueError: no training sample.
    """
    ts = data.starts(splits["train"])
    if len(ts) == 0:
        raise ValueError(f"horizon: H={data.horizon} leaves no training sample")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = {"train_loss": [], "val_mse": [], "val_mae": [], "best_epoch": None}
    best, best_state, start = np.inf, None, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        losses = []
        for batch in np.array_split(rng.permutation(ts), max(1, len(ts) // batch_size)):
            loss = masked_mse(model(*data.inputs(batch))[0], data.labels(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        val = scores(*errors_mode_a(model, data, splits["val"]))
        history["train_loss"].append(float(np.mean(losses)))
        history["val_mse"].append(val["mse"])
        history["val_mae"].append(val["mae"])
        if val["mse"] < best:
            best, best_state, history["best_epoch"] = (val["mse"],
                                                       copy.deepcopy(model.state_dict()), epoch)
        if (epoch - (history["best_epoch"] or 0) >= patience
                or (max_seconds and time.perf_counter() - start > max_seconds)):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    history["epoch_seconds"] = (time.perf_counter() - start) / len(history["val_mse"])
    return history


def _errors(pred: torch.Tensor, label: torch.Tensor) -> tuple:
    """Per-sample squared and absolute error over the finite label entries, and whether the
    sample has any: (B,), (B,), (B,) bool numpy. A NaN forecast gives NaN errors."""
    keep = torch.isfinite(label)
    diff = torch.where(keep, pred - torch.nan_to_num(label), torch.zeros(()))
    count = keep.flatten(1).sum(1)
    sq = (diff ** 2).flatten(1).sum(1) / count.clamp(min=1)
    ab = diff.abs().flatten(1).sum(1) / count.clamp(min=1)
    return sq.double().numpy(), ab.double().numpy(), (count > 0).numpy()


def errors_mode_a(model: TitansForecaster, data: SeriesWindows, bounds: tuple,
                  batch_size: int = 64) -> tuple:
    """Mode A over the samples of ``bounds``: per-sample squared / absolute errors and label
    flags (n,) in time order (see :func:`_errors`), every window with a fresh memory state."""
    model.eval()
    parts = [(np.empty(0), np.empty(0), np.zeros(0, dtype=bool))]
    with torch.no_grad():
        ts = data.starts(bounds)
        for i in range(0, len(ts), batch_size):
            batch = ts[i:i + batch_size]
            parts.append(_errors(model(*data.inputs(batch))[0], data.labels(batch)))
    return tuple(np.concatenate(p) for p in zip(*parts))


def errors_stream(model: TitansForecaster, data: SeriesWindows, bounds: tuple, mode: str,
                  lr: float = ONLINE_LR, progress=None) -> tuple:
    """Mode B or C over the samples of ``bounds``, one window at a time in time order:
    per-sample squared / absolute errors and label flags (n,). The memory state after predicting sample t is
    the state sample t + 1 starts from. In mode C, sample t's update (a forward from the state
    it was predicted with, one Adam step) happens once rows [t, t + H) are all observed, i.e.
    just before sample t + H is predicted. ``progress(done, total)`` every 500 samples.

    Raises:
        ValueError: a mode other than B or C.
    """
    if mode not in ("B", "C"):
        raise ValueError(f"mode: got {mode!r}; allowed: ['B', 'C'] for a stream")
    model.eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr) if mode == "C" else None
    ts = data.starts(bounds)
    sq, ab, has = np.empty(len(ts)), np.empty(len(ts)), np.zeros(len(ts), dtype=bool)
    state, pending = None, deque()
    for i, t in enumerate(ts):
        while optimizer is not None and pending and pending[0][0] + data.horizon <= t:
            _online_step(model, optimizer, data, *pending.popleft())
        with torch.no_grad():
            pred, next_state = model(*data.inputs([t]), state=state)
        if optimizer is not None:
            pending.append((int(t), state))
        state = detach_states(next_state)
        sq[i], ab[i], has[i] = (v[0] for v in _errors(pred, data.labels([t])))
        if progress is not None and (i + 1) % 500 == 0:
            progress(i + 1, len(ts))
    return sq, ab, has


def _online_step(model, optimizer, data: SeriesWindows, t: int, state) -> None:
    """One Adam step on sample t, its window read with the memory state it was predicted
    with (the carried state itself is not changed)."""
    loss = masked_mse(model(*data.inputs([t]), state=state)[0], data.labels([t]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def scores(sq: np.ndarray, ab: np.ndarray, keep: np.ndarray) -> dict:
    """``mse``, ``mae`` over the samples with a label (``keep``), ``n_samples``, ``curve``
    (cumulative MSE after each sample, (n,)); a NaN forecast makes them NaN (diverged)."""
    curve = np.cumsum(np.where(keep, sq, 0.0)) / np.maximum(np.cumsum(keep), 1)
    return {"mse": float(sq[keep].mean()) if keep.any() else float("nan"),
            "mae": float(ab[keep].mean()) if keep.any() else float("nan"),
            "n_samples": int(keep.sum()), "curve": curve}


def evaluate_titans(task: ForecastTask, horizon: int, modes=("A",), split: str = "test",
                    features: np.ndarray | None = None, config: TitansConfig = TitansConfig(),
                    epochs: int = EPOCHS, lr: float = LR, seed: int = 0,
                    lookback: int = LOOKBACK, max_seconds: float | None = None,
                    progress=None) -> dict:
    """Train a :class:`TitansForecaster` on the training split (best validation epoch), then
    score it on ``split`` in each of ``modes``; B and C each start from the trained weights.

    ``features``: (T, D) causal per-step inputs (:func:`causal_features`) instead of the raw
    values. Returns a dict: ``horizon``, ``lookback``, ``inputs`` ("raw" or "features"),
    ``config``, ``train`` (history of :func:`fit`), ``parameters``, and per mode
    ``modes[m]`` = ``{"mse", "mae", "n_samples", "curve", "seconds_per_step"}``.

    Raises:
        ValueError: bad mode, split or horizon (before training).
    """
    for m in modes:
        check_mode(m)
    if split not in ("val", "test"):
        raise ValueError(f"split: got {split!r}; allowed: ['val', 'test']")
    horizon = check_horizon(task, horizon, lookback)
    data = task_windows(task, horizon, lookback, features)
    torch.manual_seed(seed)
    n_inputs = None if features is None else features.shape[1]
    model = TitansForecaster(task.y.shape[1], horizon, n_inputs, config)
    history = fit(model, data, task.splits, epochs, lr, seed=seed, max_seconds=max_seconds)
    trained = copy.deepcopy(model.state_dict())
    out = {"data": task.name, "split": split, "horizon": horizon, "lookback": lookback,
           "inputs": "raw" if features is None else "features", "config": config.to_dict(),
           "seed": seed, "train": history,
           "parameters": sum(p.numel() for p in model.parameters()), "modes": {}}
    for m in modes:
        model.load_state_dict(trained)
        start = time.perf_counter()
        errs = (errors_mode_a(model, data, task.splits[split]) if m == "A" else
                errors_stream(model, data, task.splits[split], m, progress=progress))
        row = scores(*errs)
        row["seconds_per_step"] = (time.perf_counter() - start) / max(len(errs[0]), 1)
        out["modes"][m] = row
    return out


def reference_rows(task: ForecastTask, horizon: int, split: str = "test",
                   lookback: int = LOOKBACK) -> dict:
    """The raw-lookback Ridge on ``split`` (the probe's code, :func:`downstream.probe_lookback`,
    with ``lookback`` steps; its samples are Titans' minus the first, whose label starts at
    the split's first row): ``{"raw_ridge": metrics}``."""
    out = probe_lookback(task, [horizon], test=split == "test", length=lookback)
    return {"raw_ridge": out["horizons"][horizon][split]}

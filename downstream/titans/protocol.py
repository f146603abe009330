"""Long-horizon forecasting with the Titans MAC forecaster, and its three online test modes.

Protocol: :mod:`downstream.longterm` (lookback 96, H = 96 / 192 / 336 / 720, standard splits,
standardised MSE / MAE), as the Titans paper reports it.

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

from ..longterm import (HORIZONS, LOOKBACK, SeriesWindows, batched_errors, causal_features,
                        check_horizon, errors, masked_mse, reference_rows, scores, task_windows)
from ..task import ForecastTask
from .model import TitansConfig, TitansForecaster, detach_states

__all__ = ["HORIZONS", "LOOKBACK", "MODES", "SeriesWindows", "causal_features", "check_horizon",
           "check_mode", "errors", "errors_mode_a", "errors_stream", "evaluate_titans", "fit",
           "masked_mse", "reference_rows", "scores", "task_windows"]

MODES = ("A", "B", "C")
#: Training: Adam, batch 32, best validation epoch kept, early stop after PATIENCE epochs.
EPOCHS, BATCH_SIZE, LR, PATIENCE = 10, 32, 5e-4, 3
ONLINE_LR = 1e-5


def check_mode(mode) -> str:
    """Raise ValueError unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode: got {mode!r}; allowed: {list(MODES)}")
    return mode


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


def errors_mode_a(model: TitansForecaster, data: SeriesWindows, bounds: tuple,
                  batch_size: int = 64) -> tuple:
    """Mode A over the samples of ``bounds``: per-sample squared / absolute errors and label
    flags (n,) in time order (see :func:`downstream.longterm.errors`), every window with a fresh memory state."""
    model.eval()
    return batched_errors(lambda inputs: model(*inputs)[0], data, bounds, batch_size)


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
        sq[i], ab[i], has[i] = (v[0] for v in errors(pred, data.labels([t])))
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
    model = TitansForecaster(task.y.shape[1], horizon, n_inputs, config, lookback)
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



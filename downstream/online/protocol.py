"""The online forecasting protocol of FSNet (Pham et al., ICLR 2023), over any encoder.

Multivariate (all variables in and out, plus TS2Vec's 7 standardised calendar covariates as
extra inputs, as FSNet feeds them), lookback L = 60, H = 1, 24, 48. Splits: ETT 4 months
train, 1 month validation, the next 15 months as the test stream (x4 steps for 15-minute
data); other series 20% / 5% / 75% (:func:`downstream.splits.split_bounds`, ``online_*``).
Scaling: standardised with training-split statistics; metrics on that scale.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..datasets import SeriesData
from ..probes import fit_ridge
from ..splits import ONLINE_SCHEME
from ..task import ForecastTask, make_task
from .forecaster import OnlineForecaster, variant
from .stream import Windows, run_stream, warm_up

LOOKBACK = 60
HORIZONS = (1, 24, 48)
WARMUP_EPOCHS = 6


def online_task(series: SeriesData) -> ForecastTask:
    """The multivariate task of ``series`` on its online splits (see the module docstring).

    Raises:
        ValueError: as :func:`downstream.make_task` (constant columns, short series, ...).
    """
    scheme = ONLINE_SCHEME.get(series.split, series.split)
    return make_task(dataclasses.replace(series, split=scheme), univariate=False)


def check_horizon(task: ForecastTask, horizon, lookback: int = LOOKBACK) -> int:
    """Raise ValueError unless H is a positive int leaving samples in every split."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon: got {horizon!r}; allowed: a positive int, e.g. 24")
    for name, (start, end) in task.splits.items():
        if end - max(start, lookback) < horizon:
            raise ValueError(f"horizon: H={horizon} is too long for the {name} split of "
                             f"{task.name} ({end - start} rows, lookback {lookback})")
    return int(horizon)


def evaluate_online(encoder: torch.nn.Module, repr_dim: int, task: ForecastTask, horizon: int,
                    model: str = "fsnet", split: str = "test", memory_read: str | None = None,
                    lookback: int = LOOKBACK, epochs: int = WARMUP_EPOCHS, lr: float = 1e-3,
                    seed: int = 0, label_delay: bool = True, keep_predictions: bool = False,
                    progress=None) -> dict:
    """Warm up a forecaster built on ``encoder`` on the training split, then run the online
    stream over ``split`` ("val" for a search score, "test" for the evaluation).

    ``encoder`` maps (B, L, C_in) -> (B, L, D) with C_in = ``task.x.shape[1]``; it is modified
    in place (FSNet adapters attached, weights trained): pass a fresh one per call.

    Returns: a dict with ``mse``, ``mae`` (cumulative over the stream, standardised scale),
    ``n_samples``, ``warmup_losses``, ``warmup_seconds``, ``stream_seconds``,
    ``seconds_per_sample``, ``triggers`` (memory recalls), ``curve`` (cumulative MSE, numpy
    (n,)), the settings, and ``predictions`` (n, H, C_out) with ``keep_predictions``.

    Raises:
        ValueError: an unknown model / split / read rule, a horizon too long for a split.
    """
    if split not in ("val", "test"):
        raise ValueError(f"split: got {split!r}; allowed: ['val', 'test']")
    horizon = check_horizon(task, horizon, lookback)
    spec = variant(model, memory_read)
    torch.manual_seed(seed)
    forecaster = OnlineForecaster(encoder, repr_dim, task.y.shape[1], horizon, spec)
    data = Windows(task.x, task.y, lookback, horizon)
    start = time.perf_counter()
    optimizer, losses = warm_up(forecaster, data, task.splits["train"], epochs, lr=lr, seed=seed)
    warm = time.perf_counter() - start
    result = run_stream(forecaster, optimizer, data, task.splits[split], label_delay=label_delay,
                        seed=seed, keep_predictions=keep_predictions, progress=progress)
    out = {"model": spec.name, "data": task.name, "split": split, "horizon": horizon,
           "lookback": lookback, "label_delay": label_delay, "seed": seed,
           "mse": result.mse, "mae": result.mae, "n_samples": result.n_samples,
           "warmup_epochs": epochs, "warmup_losses": losses, "warmup_seconds": warm,
           "stream_seconds": result.seconds,
           "seconds_per_sample": result.seconds / max(result.n_samples, 1),
           "triggers": result.triggers, "curve": result.curve}
    if keep_predictions:
        out["predictions"] = result.predictions
    return out


def _raw_windows(task: ForecastTask, bounds: tuple, horizon: int, lookback: int) -> tuple:
    """Flattened raw lookback windows (n, L * C_in), NaN -> 0, and labels (n, H * C_out)."""
    data = Windows(task.x, task.y, lookback, horizon)
    ts = data.starts(bounds)
    x = np.nan_to_num(data.inputs(ts).numpy().reshape(len(ts), -1))
    return x, data.labels(ts).numpy().reshape(len(ts), -1)


def raw_ridge_reference(task: ForecastTask, horizon: int, split: str = "test",
                        lookback: int = LOOKBACK) -> dict:
    """Reference row: a Ridge on the raw lookback window (all inputs), fitted once on the
    training samples (alpha chosen on validation, TS2Vec's protocol) and never updated,
    scored on the same samples as the stream: ``{"mse", "mae", "n_samples", "alpha"}``.
    Samples with a missing label value are left out of the fit."""
    fit = {}
    for name in ("train", "val"):
        x, y = _raw_windows(task, task.splits[name], horizon, lookback)
        keep = np.isfinite(y).all(axis=1)
        fit[name] = (x[keep], y[keep])
    model, alpha = fit_ridge(*fit["train"], *fit["val"])
    x, y = _raw_windows(task, task.splits[split], horizon, lookback)
    return {**_scores(model.predict(x) - y), "alpha": float(alpha)}


def _scores(err: np.ndarray) -> dict:
    """Per-sample MSE / MAE over the finite entries of ``err`` (n, P), averaged over the
    samples with any: ``{"mse", "mae", "n_samples"}``."""
    scored = np.isfinite(err).any(axis=1)
    return {"mse": float(np.nanmean(np.nanmean(err[scored] ** 2, axis=1))),
            "mae": float(np.nanmean(np.nanmean(np.abs(err[scored]), axis=1))),
            "n_samples": int(scored.sum())}


def last_value_reference(task: ForecastTask, horizon: int, split: str = "test",
                         lookback: int = LOOKBACK) -> dict:
    """Reference row: the last observed value of every variable repeated over H
    (persistence), on the same samples as the stream: ``{"mse", "mae", "n_samples"}``."""
    data = Windows(task.x, task.y, lookback, horizon)
    ts = data.starts(task.splits[split])
    pred = data.y[ts - 1].numpy()[:, None, :]
    return _scores((pred - data.labels(ts).numpy()).reshape(len(ts), -1))


def reference_rows(task: ForecastTask, horizon: int, split: str = "test",
                   lookback: int = LOOKBACK) -> dict:
    """``{"raw_ridge": ..., "last_value": ...}``: the two reference rows printed beside an
    online forecaster (seconds to compute)."""
    return {"raw_ridge": raw_ridge_reference(task, horizon, split, lookback),
            "last_value": last_value_reference(task, horizon, split, lookback)}


def plot_curves(curves: dict, path, title: str = "cumulative MSE") -> None:
    """Write a PNG of cumulative-MSE curves to ``path``: {label: (n,) array of every step, or
    [[step, value], ...] pairs of a thinned curve}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, curve in curves.items():
        curve = np.asarray(curve, dtype=float)
        steps, values = ((curve[:, 0], curve[:, 1]) if curve.ndim == 2 else
                         (np.arange(1, len(curve) + 1), curve))
        ax.plot(steps, values, label=label, linewidth=1.2)
    ax.set_xlabel("online step")
    ax.set_ylabel("cumulative MSE (standardised)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

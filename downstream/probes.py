"""The forecasting probe of TS2Vec (Yue et al., AAAI 2022, Sec. 4.2): causal sliding encoding,
then a Ridge regression from the representation at t to the next H target values, alpha chosen
on the validation split.

The probe never reads rows past the last split it scores: a validation-only probe (the score a
search optimises) encodes and reads rows [0, end of validation) only.
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from scipy.linalg import LinAlgWarning
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error
from threadpoolctl import threadpool_limits

from .task import ForecastTask, check_horizons

PADDING = 200
#: TS2Vec's Ridge grid (``tasks/_eval_protocols.fit_ridge``).
RIDGE_ALPHAS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def encode_task(encoder, task: ForecastTask, end: int, padding: int = PADDING,
                batch_size: int = 256, steps=None) -> np.ndarray:
    """Causal sliding representations of rows [0, end): (end, D); step t sees [t-padding, t].
    With ``steps`` only those rows are encoded; the others are NaN.

    ``encoder`` is any object with ``encode(x (N, T, C), causal=, sliding_padding=,
    batch_size=, steps=) -> (N, T', D)``.
    """
    if steps is None:
        return encoder.encode(task.x[None, :end], causal=True, sliding_padding=padding,
                              batch_size=batch_size)[0]
    rows = encoder.encode(task.x[None, :end], causal=True, sliding_padding=padding,
                          batch_size=batch_size, steps=steps)[0]
    out = np.full((end, rows.shape[1]), np.nan, dtype=rows.dtype)
    out[steps] = rows
    return out


def lookback_features(task: ForecastTask, end: int, length: int = PADDING) -> np.ndarray:
    """Raw-lookback reference features: for each t < end, the last ``length`` standardised
    input values [t-length+1, t] of every input variable, flattened -> (end, length * n).
    Missing values and steps before the start are 0 (the training mean)."""
    inputs = np.nan_to_num(task.x[:end, task.n_covariates:].astype(np.float64))
    padded = np.vstack([np.zeros((length - 1, inputs.shape[1])), inputs])
    windows = np.lib.stride_tricks.sliding_window_view(padded, length, axis=0)  # end x n x L
    return windows.reshape(end, -1)


def sample_steps(bounds: tuple, horizon: int, drop: int = 0, stride: int = 1) -> np.ndarray:
    """The sample times t of one split: start+drop <= t < end-H, every ``stride``-th."""
    return np.arange(bounds[0] + drop, bounds[1] - horizon, stride)


def pred_samples(features: np.ndarray, y: np.ndarray, bounds: tuple, horizon: int,
                 drop: int = 0, stride: int = 1) -> tuple:
    """Samples of one split: feature at t, target y[t+1 : t+1+H] (flattened), for
    start+drop <= t < end-H (every ``stride``-th t), so no target crosses the split's end;
    samples with a NaN target are dropped. -> X (M, D), Y (M, H * n)."""
    start, end = bounds
    t = sample_steps(bounds, horizon, drop, stride)
    X = features[t]
    Y = np.lib.stride_tricks.sliding_window_view(y[start + drop + 1:end], horizon, axis=0)
    Y = Y[:len(t) * stride:stride].transpose(0, 2, 1).reshape(len(t), -1)  # M x (H*n)
    keep = ~np.isnan(Y).any(axis=1)
    return X[keep], Y[keep]


def _fit_and_score(alpha, X_train, Y_train, X_val, Y_val) -> tuple:
    with warnings.catch_warnings():  # small alphas on D=320 features are ill-conditioned
        warnings.simplefilter("ignore", LinAlgWarning)
        model = Ridge(alpha=alpha).fit(X_train, Y_train)
    pred = model.predict(X_val).astype(np.float64)
    return np.sqrt(mean_squared_error(Y_val, pred)) + mean_absolute_error(Y_val, pred), model


def fit_ridge(X_train, Y_train, X_val, Y_val, n_jobs: int | None = None) -> tuple:
    """Ridge with alpha from :data:`RIDGE_ALPHAS` minimising RMSE + MAE on validation
    (TS2Vec's rule), fitted on the training samples. -> (model, alpha).

    The 13 fits run on ``n_jobs`` threads (default: all cores) with one BLAS thread each,
    which is faster than one fit at a time on multi-threaded BLAS."""
    Y_train = Y_train.astype(X_train.dtype)  # one dtype: no per-fit conversion in sklearn
    n_jobs = n_jobs or os.cpu_count() or 1
    with threadpool_limits(1 if n_jobs > 1 else None):
        results = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_fit_and_score)(a, X_train, Y_train, X_val, Y_val) for a in RIDGE_ALPHAS)
    best = int(np.argmin([score for score, _ in results]))
    return results[best][1], RIDGE_ALPHAS[best]


def _metrics(task: ForecastTask, pred: np.ndarray, Y: np.ndarray, horizon: int) -> dict:
    pred = pred.astype(np.float64)
    scale = np.tile(task.y_scale, horizon)
    mean = np.tile(task.y_mean, horizon)
    return {"mse": float(mean_squared_error(Y, pred)), "mae": float(mean_absolute_error(Y, pred)),
            "mse_raw": float(mean_squared_error(Y * scale + mean, pred * scale + mean)),
            "mae_raw": float(mean_absolute_error(Y * scale + mean, pred * scale + mean)),
            "n_samples": len(Y)}


def probe(task: ForecastTask, horizons, features: np.ndarray, test: bool = False,
          drop: int = PADDING, stride: int = 1) -> dict:
    """Ridge probe on precomputed per-step features (T', D), T' >= end of the last split used.
    ``stride`` > 1 keeps every stride-th training sample (validation and test keep all).

    Returns:
        {"horizons": {H: {"alpha", "val": metrics, ["test": metrics]}}, "val_mse": mean
        validation MSE over horizons (the search score), "ridge_seconds"}. Metrics hold
        ``mse``, ``mae`` (standardised) and ``mse_raw``, ``mae_raw`` (original units).

    Raises:
        ValueError: a horizon too long for a split, or too few feature rows.
    """
    horizons = check_horizons(task, horizons, drop)
    need = task.splits["test" if test else "val"][1]
    if len(features) < need:
        raise ValueError(f"features: got {len(features)} rows; allowed: at least {need}")
    start, out = time.perf_counter(), {}
    for h in horizons:
        X_tr, Y_tr = pred_samples(features, task.y, task.splits["train"], h, drop, stride)
        X_va, Y_va = pred_samples(features, task.y, task.splits["val"], h)
        model, alpha = fit_ridge(X_tr, Y_tr, X_va, Y_va)
        out[h] = {"alpha": alpha, "val": _metrics(task, model.predict(X_va), Y_va, h)}
        if test:
            X_te, Y_te = pred_samples(features, task.y, task.splits["test"], h)
            out[h]["test"] = _metrics(task, model.predict(X_te), Y_te, h)
    return {"horizons": out, "val_mse": float(np.mean([out[h]["val"]["mse"] for h in out])),
            "ridge_seconds": time.perf_counter() - start}


def probe_encoder(encoder, task: ForecastTask, horizons, test: bool = False,
                  padding: int = PADDING, batch_size: int = 256, stride: int = 1) -> dict:
    """Causal sliding encoding (only up to the last split scored) + :func:`probe`.
    ``stride`` > 1 encodes and fits only every stride-th training sample (a cheaper probe for
    seed generation; validation and test samples are all kept). Adds ``encode_seconds``.

    Raises:
        ValueError: a horizon too long for a split, stride < 1.
    """
    horizons = check_horizons(task, horizons, padding)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: got {stride!r}; allowed: an int >= 1")
    end = task.splits["test" if test else "val"][1]
    steps = None
    if stride > 1:
        train = [sample_steps(task.splits["train"], h, padding, stride) for h in horizons]
        steps = np.union1d(np.concatenate(train), np.arange(task.splits["train"][1], end))
    start = time.perf_counter()
    features = encode_task(encoder, task, end, padding, batch_size, steps)
    seconds = time.perf_counter() - start
    result = probe(task, horizons, features, test=test, drop=padding, stride=stride)
    result["encode_seconds"] = seconds
    return result


def probe_lookback(task: ForecastTask, horizons, test: bool = False,
                   length: int = PADDING) -> dict:
    """The raw-lookback reference row: Ridge on the last ``length`` input values (no encoder)."""
    end = task.splits["test" if test else "val"][1]
    return probe(task, horizons, lookback_features(task, end, length), test=test, drop=length)

"""The forecasting probe of TS2Vec (Yue et al., AAAI 2022, Sec. 4.2): causal sliding encoding,
then a Ridge regression from the representation at t to the next H target values, alpha chosen
on the validation split.

The probe never reads rows past the last split it scores: a validation-only probe (the score a
search optimises) encodes and reads rows [0, end of validation) only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error

from .task import ForecastTask, check_horizons

PADDING = 200
#: Probe features: ``repr`` = the encoder's representation (TS2Vec's protocol, every literature
#: comparison); ``repr+raw`` = the representation next to the raw lookback window (one Ridge).
PROBE_FEATURES = ("repr", "repr+raw")
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
    Y = np.lib.stride_tricks.sliding_window_view(y[start + drop + 1:end], horizon, axis=0)
    Y = Y[:len(t) * stride:stride].transpose(0, 2, 1).reshape(len(t), -1)  # M x (H*n)
    keep = ~np.isnan(Y).any(axis=1)
    return features[t[keep]], Y[keep]  # one copy of the (M, D) features


@dataclass(frozen=True)
class RidgeModel:
    """Ridge regression (Hoerl & Kennard, Technometrics 1970) at one alpha, in factorised form:
    ``predict(X) = (X - x_mean) @ basis @ weights + y_mean``, never materialising the (D, P)
    coefficients (41,400 x 2,484 on multivariate los_loop). Same unique minimiser, intercept
    included, as ``sklearn.linear_model.Ridge(alpha)``; see :func:`fit_ridge`.

    Attributes:
        alpha: the penalty.
        x_mean (D,), y_mean (P,): training means of the features and the P targets.
        basis (D, k), weights (k, P): k = min(M, D) for M training samples.
    """

    alpha: float
    x_mean: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    y_mean: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions (M', P) float64 for features X (M', D)."""
        return np.subtract(X, self.x_mean, dtype=np.float64) @ self.basis @ self.weights \
            + self.y_mean

    @property
    def coef_(self) -> np.ndarray:
        """The coefficients (P, D), as sklearn's ``Ridge.coef_`` (materialised on request)."""
        return (self.basis @ self.weights).T

    @property
    def intercept_(self) -> np.ndarray:
        """The intercepts (P,), as sklearn's ``Ridge.intercept_``."""
        return self.y_mean - self.x_mean @ self.basis @ self.weights


def _factorise(X: np.ndarray, x_mean: np.ndarray, Y: np.ndarray, y_mean: np.ndarray) -> tuple:
    """One eigendecomposition of the smaller Gram matrix of the centred features Xc (M, D),
    Yc the centred targets: ``(basis, rotation, lam, proj)`` such that the Ridge weights at
    alpha are ``rotation @ (proj / (lam + alpha))`` on ``basis`` (rotation None = identity).

    D <= M: Xc^T Xc = V diag(lam) V^T, coef = V diag(1 / (lam + alpha)) V^T Xc^T Yc.
    D > M (kernel form): Xc Xc^T = U diag(lam) U^T, coef = Xc^T U diag(1 / (lam + alpha))
    U^T Yc; the basis is Xc^T itself, so no (D, M) matrix is computed besides Xc.
    """
    centred = np.subtract(X, x_mean, dtype=np.float64)
    targets = np.subtract(Y, y_mean, dtype=np.float64)
    if centred.shape[1] <= centred.shape[0]:
        lam, vecs = np.linalg.eigh(centred.T @ centred)
        return vecs, None, np.clip(lam, 0, None), vecs.T @ (centred.T @ targets)
    lam, vecs = np.linalg.eigh(centred @ centred.T)
    return centred.T, vecs, np.clip(lam, 0, None), vecs.T @ targets


def _score(Y: np.ndarray, pred: np.ndarray) -> float:
    """TS2Vec's selection score: RMSE + MAE."""
    return float(np.sqrt(mean_squared_error(Y, pred)) + mean_absolute_error(Y, pred))


def fit_ridge(X_train, Y_train, X_val, Y_val) -> tuple:
    """Ridge with alpha from :data:`RIDGE_ALPHAS` minimising RMSE + MAE on validation, fitted on
    the training samples: TS2Vec's protocol (``tasks/_eval_protocols.fit_ridge``, Yue et al.,
    AAAI 2022). X (M, D), Y (M, P), P = H * n targets. -> (:class:`RidgeModel`, alpha).

    One eigendecomposition (of Xc^T Xc or Xc Xc^T, whichever is smaller) serves all 13
    alphas in closed form, and only the best alpha's factorised model is kept: the former 13
    sklearn fits held 13 (P, D) coefficient matrices (past 12 GB on multivariate los_loop).
    Peak memory: :func:`estimate_probe_bytes`. Results equal sklearn's ``Ridge`` (whose
    default solver also factorises a Gram matrix) up to floating-point summation order;
    computed in float64 whatever the feature dtype.

    Raises:
        ValueError: non-finite features or targets (e.g. from a diverged encoder).
    """
    for name, arr in (("X_train", X_train), ("Y_train", Y_train), ("X_val", X_val),
                      ("Y_val", Y_val)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: got non-finite values; allowed: finite features and "
                             "targets (a diverged encoder gives NaN/inf features)")
    x_mean = X_train.mean(axis=0, dtype=np.float64)
    y_mean = Y_train.mean(axis=0, dtype=np.float64)
    basis, rotation, lam, proj = _factorise(X_train, x_mean, Y_train, y_mean)
    coords = np.subtract(X_val, x_mean, dtype=np.float64) @ basis
    if rotation is not None:
        coords = coords @ rotation
    best = None
    for alpha in RIDGE_ALPHAS:
        score = _score(Y_val, coords @ (proj / (lam + alpha)[:, None]) + y_mean)
        if best is None or score < best[0]:  # the first minimum, as np.argmin over the grid
            best = (score, alpha)
    alpha = best[1]
    weights = proj / (lam + alpha)[:, None]
    if rotation is not None:
        weights = rotation @ weights
    return RidgeModel(alpha, x_mean, basis, weights, y_mean), alpha


def estimate_probe_bytes(samples: int, features: int, horizons, targets: int,
                         rows: int | None = None) -> int:
    """Pre-flight estimate of the peak memory (bytes) of :func:`probe` / :func:`fit_ridge`, so
    a caller can refuse a probe that cannot fit before doing any work.

    Args:
        samples: M, training samples of the Ridge (at most the training split's rows).
        features: D, features per sample (repr dim; ``length * n`` for the raw lookback).
        horizons: the forecast horizons H (the largest sets the target width).
        targets: n, target variables; the Ridge has P = max(H) * n outputs.
        rows: rows of the feature matrix (the end of the last split scored); default M.

    All arrays counted as float64 (8 bytes): the feature matrix (rows, D), the training
    samples and their centred copy (2 M D), the Gram matrix, its eigenvectors and LAPACK's
    workspace (4 k^2, k = min(M, D)), the targets and their centred copy (2 M P), their
    projection (k P) and the validation/test samples ((rows - M) D). Within a factor ~1.5
    of the measured peak on ETTh1, illness and los_loop (tests/downstream/test_probe_memory.py).

    Raises:
        ValueError: a size that is not a positive int.
    """
    sizes = {"samples": samples, "features": features, "targets": targets,
             "rows": samples if rows is None else rows}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: got {value!r}; allowed: an int >= 1")
    horizons = list(horizons) if horizons else []
    if not horizons or any(isinstance(h, bool) or not isinstance(h, (int, np.integer))
                            or h < 1 for h in horizons):
        raise ValueError(f"horizons: got {horizons!r}; allowed: one or more positive ints")
    m, d, rows = int(samples), int(features), int(sizes["rows"])
    k, p = min(m, d), max(horizons) * int(targets)
    values = rows * d + 2 * m * d + 4 * k * k + 2 * m * p + k * p + max(rows - m, 0) * d
    return 8 * values


def estimate_task_probe_bytes(task: ForecastTask, horizons, features: int | None = None,
                              test: bool = False, drop: int = PADDING, stride: int = 1) -> int:
    """:func:`estimate_probe_bytes` for ``task``: M and the feature rows taken from its splits
    (the shortest horizon gives the most training samples, every ``stride``-th kept);
    ``features`` defaults to the raw-lookback reference's ``drop * n_inputs`` (pass the
    encoder's repr dim D otherwise, e.g. before training a spec).

    Raises:
        ValueError: a horizon too long for a split (see :func:`check_horizons`).
    """
    horizons = check_horizons(task, horizons, drop)
    train = task.splits["train"]
    samples = max(-(-(train[1] - train[0] - drop - min(horizons)) // max(int(stride), 1)), 1)
    rows = task.splits["test" if test else "val"][1]
    n_inputs = task.x.shape[1] - task.n_covariates
    return estimate_probe_bytes(samples, features or drop * n_inputs, horizons,
                                len(task.targets), rows=rows)


class ProbeMemoryError(ValueError):
    """A probe refused before any work: its estimated peak memory (:func:`estimate_probe_bytes`)
    exceeds the caller's ``max_bytes``. Attributes ``estimate`` and ``limit``, in bytes."""

    def __init__(self, estimate: int, limit, detail: str):
        self.estimate, self.limit = estimate, limit
        super().__init__(f"max_bytes: got {limit / 2 ** 30:.2f} GiB, below the probe's estimated "
                         f"peak memory of {estimate / 2 ** 30:.2f} GiB ({detail}); allowed: a "
                         "larger limit, or fewer input variables or shorter horizons")


def check_probe_memory(task: ForecastTask, horizons, features: int, max_bytes, test: bool = False,
                       drop: int = PADDING, stride: int = 1) -> int:
    """Refuse a probe whose :func:`estimate_task_probe_bytes` exceeds ``max_bytes`` (None: no
    limit). -> the estimate in bytes.

    Raises:
        ProbeMemoryError: (a ValueError) the estimate exceeds ``max_bytes``.
        ValueError: ``max_bytes`` not None nor a positive number; a horizon too long.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(
            max_bytes, (int, float, np.integer, np.floating)) or not 0 < max_bytes < np.inf):
        raise ValueError(f"max_bytes: got {max_bytes!r}; allowed: None or a number of bytes > 0")
    estimate = estimate_task_probe_bytes(task, horizons, features, test, drop, stride)
    if max_bytes is not None and estimate > max_bytes:
        detail = (f"{len(task.targets)} targets x H={max(horizons)}, {features} features, "
                  f"rows up to {task.splits['test' if test else 'val'][1]}")
        raise ProbeMemoryError(estimate, max_bytes, detail)
    return estimate


def _metrics(task: ForecastTask, pred: np.ndarray, Y: np.ndarray, horizon: int) -> dict:
    pred = pred.astype(np.float64)
    scale = np.tile(task.y_scale, horizon)
    mean = np.tile(task.y_mean, horizon)
    return {"mse": float(mean_squared_error(Y, pred)), "mae": float(mean_absolute_error(Y, pred)),
            "mse_raw": float(mean_squared_error(Y * scale + mean, pred * scale + mean)),
            "mae_raw": float(mean_absolute_error(Y * scale + mean, pred * scale + mean)),
            "n_samples": len(Y)}


def probe(task: ForecastTask, horizons, features: np.ndarray, test: bool = False,
          drop: int = PADDING, stride: int = 1, max_bytes=None) -> dict:
    """Ridge probe on precomputed per-step features (T', D), T' >= end of the last split used.
    ``stride`` > 1 keeps every stride-th training sample (validation and test keep all).
    ``max_bytes``: refuse before any fit when the estimated peak memory exceeds it.

    Returns:
        {"horizons": {H: {"alpha", "val": metrics, ["test": metrics]}}, "val_mse": mean
        validation MSE over horizons (the search score), "ridge_seconds"}. Metrics hold
        ``mse``, ``mae`` (standardised) and ``mse_raw``, ``mae_raw`` (original units).

    Raises:
        ValueError: a horizon too long for a split, too few feature rows, or non-finite
            features.
        ProbeMemoryError: the estimate exceeds ``max_bytes``.
    """
    horizons = check_horizons(task, horizons, drop)
    need = task.splits["test" if test else "val"][1]
    if len(features) < need:
        raise ValueError(f"features: got {len(features)} rows; allowed: at least {need}")
    check_probe_memory(task, horizons, features.shape[1], max_bytes, test, drop, stride)
    start = time.perf_counter()
    out = {h: _probe_horizon(task, features, h, drop, stride, test) for h in horizons}
    return {"horizons": out, "val_mse": float(np.mean([out[h]["val"]["mse"] for h in out])),
            "ridge_seconds": time.perf_counter() - start}


def _probe_horizon(task: ForecastTask, features: np.ndarray, h: int, drop: int, stride: int,
                   test: bool) -> dict:
    """One horizon of :func:`probe`; its samples and model are freed on return."""
    X_va, Y_va = pred_samples(features, task.y, task.splits["val"], h)
    model, alpha = fit_ridge(*pred_samples(features, task.y, task.splits["train"], h, drop,
                                           stride), X_va, Y_va)
    out = {"alpha": alpha, "val": _metrics(task, model.predict(X_va), Y_va, h)}
    if test:
        X_te, Y_te = pred_samples(features, task.y, task.splits["test"], h)
        out["test"] = _metrics(task, model.predict(X_te), Y_te, h)
    return out


def check_features(features) -> str:
    """``features`` if it is one of :data:`PROBE_FEATURES`.

    Raises:
        ValueError: ``features: got ...; allowed: ['repr', 'repr+raw']``.
    """
    if features not in PROBE_FEATURES:
        raise ValueError(f"features: got {features!r}; allowed: {list(PROBE_FEATURES)}")
    return features


def probe_features(encoder, task: ForecastTask, end: int, features: str = "repr",
                   padding: int = PADDING, batch_size: int = 256, steps=None) -> np.ndarray:
    """The probe's per-step features of rows [0, end): the causal sliding representation
    (end, D) (:func:`encode_task`), and with ``features="repr+raw"`` next to it the raw
    lookback window of ``padding`` steps (:func:`lookback_features`): (end, D + padding * n)."""
    rows = encode_task(encoder, task, end, padding, batch_size, steps)
    if check_features(features) == "repr":
        return rows
    return np.hstack([rows.astype(np.float64), lookback_features(task, end, padding)])


def probe_encoder(encoder, task: ForecastTask, horizons, test: bool = False,
                  padding: int = PADDING, batch_size: int = 256, stride: int = 1,
                  max_bytes=None, features: str = "repr") -> dict:
    """Causal sliding encoding (only up to the last split scored) + :func:`probe`.
    ``stride`` > 1 encodes and fits only every stride-th training sample (a cheaper probe for
    seed generation; validation and test samples are all kept). Adds ``encode_seconds``.
    ``max_bytes`` is checked after encoding (D is known then); to refuse before training,
    call :func:`check_probe_memory` with the spec's repr dim (plus ``padding * n_inputs``
    for ``repr+raw``). ``features``: ``repr`` (the representation, D columns; TS2Vec's
    protocol) or ``repr+raw`` (the representation then the raw lookback window of ``padding``
    steps per input variable, D + padding * n columns, one Ridge; see
    :func:`probe_features`).

    Raises:
        ValueError: a horizon too long for a split, stride < 1, unknown ``features``.
        ProbeMemoryError: the estimate exceeds ``max_bytes``.
    """
    horizons = check_horizons(task, horizons, padding)
    check_features(features)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: got {stride!r}; allowed: an int >= 1")
    end = task.splits["test" if test else "val"][1]
    steps = None
    if stride > 1:
        train = [sample_steps(task.splits["train"], h, padding, stride) for h in horizons]
        steps = np.union1d(np.concatenate(train), np.arange(task.splits["train"][1], end))
    start = time.perf_counter()
    rows = probe_features(encoder, task, end, features, padding, batch_size, steps)
    seconds = time.perf_counter() - start
    result = probe(task, horizons, rows, test=test, drop=padding, stride=stride,
                   max_bytes=max_bytes)
    result["encode_seconds"] = seconds
    return result


def probe_lookback(task: ForecastTask, horizons, test: bool = False,
                   length: int = PADDING, max_bytes=None) -> dict:
    """The raw-lookback reference row: Ridge on the last ``length`` input values (no encoder),
    D = length * n_inputs features (41,400 on multivariate los_loop).

    Raises:
        ValueError: a horizon too long for a split.
        ProbeMemoryError: the estimate exceeds ``max_bytes`` (checked before any feature is
            built).
    """
    n_inputs = task.x.shape[1] - task.n_covariates
    check_probe_memory(task, horizons, length * n_inputs, max_bytes, test, length)
    end = task.splits["test" if test else "val"][1]
    return probe(task, horizons, lookback_features(task, end, length), test=test, drop=length)

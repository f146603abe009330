"""Task features for T-AHC: statistical meta-features plus set-pooled reference embeddings.

AutoCTS++ (Wu et al., VLDB Journal 2024, Sec. 5.2) conditions the comparator on a task
representation computed without training on the task. Ours concatenates
- meta-features of the standardised training split (length, variables, horizon, missing
  fraction, autocorrelation at fixed lags, spectral concentration, trend strength, moments,
  cross-variable correlation), and
- the mean and standard deviation over a set of windows (DeepSets-style set pooling, Zaheer
  et al., NeurIPS 2017) of the max-pooled representations of a fixed *reference encoder*
  applied channel-independently to sampled windows of each variable.
The reference encoder is a small TS2Vec-style encoder trained once on the embedded co2 series
(never on a task dataset) and shipped with the package (``weights/reference_encoder.pt``, a
saved :class:`~search_spaces.learner.ContrastiveLearner`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

import search_spaces as ss
from search_spaces import learner

WEIGHTS = Path(__file__).parent / "weights"
REFERENCE_FILE = "reference_encoder.pt"
REFERENCE_SPEC = {
    **ss.preset("ts2vec"),
    "Encoder": {"steps": 1, "layers": 6, "cell": [[0, "ts2vec_conv"]], "hidden": 32,
                "repr_dim": 64},
}
#: Lags of the autocorrelation features, in steps.
ACF_LAGS = (1, 2, 4, 8, 16, 32, 64)
WINDOW = 128
N_WINDOWS = 32
META_NAMES = (["log_length", "log_variables", "univariate", "log_horizon", "horizon_ratio",
               "missing"] + [f"acf_{lag}" for lag in ACF_LAGS]
              + ["spectral_top1", "spectral_top5", "spectral_entropy", "trend_r2",
                 "diff_std", "skew", "kurtosis", "mean_abs_corr"])


def _acf(v: np.ndarray, lag: int) -> float:
    """Lag-``lag`` autocorrelation of ``v`` (T,): the Pearson correlation of the pairs
    (v_t, v_{t+lag}) with both observed (pandas ``Series.autocorr``); 0 with fewer than 3
    pairs or a constant side. (Not the textbook ACF of statsmodels ``acf``, which uses the
    whole series' mean and variance: that differs by up to 0.14 on co2 at lag 64, and the
    shipped comparator was trained on these features.)"""
    if len(v) <= lag + 1:
        return 0.0
    a, b = v[:-lag], v[lag:]
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or a[keep].std() == 0 or b[keep].std() == 0:
        return 0.0
    return float(pd.Series(v).autocorr(lag))


def _spectral(v: np.ndarray) -> list:
    v = np.nan_to_num(v - np.nanmean(v))
    power = np.abs(np.fft.rfft(v))[1:] ** 2
    if power.sum() == 0:
        return [0.0, 0.0, 1.0]
    p = power / power.sum()
    top = np.sort(p)[::-1]
    entropy = float(-(p * np.log(p + 1e-12)).sum() / np.log(len(p) + 1))
    return [float(top[0]), float(top[:5].sum()), entropy]


def _trend_r2(v: np.ndarray) -> float:
    t = np.arange(len(v), dtype=np.float64)
    keep = np.isfinite(v)
    if keep.sum() < 3 or v[keep].std() == 0:
        return 0.0
    return float(np.corrcoef(t[keep], v[keep])[0, 1] ** 2)


def _variable_stats(v: np.ndarray) -> list:
    obs = v[np.isfinite(v)]
    std = obs.std() if len(obs) > 1 else 0.0
    z = (obs - obs.mean()) / std if std > 0 else np.zeros_like(obs)
    diff = np.diff(v)
    return ([_acf(v, lag) for lag in ACF_LAGS] + _spectral(v) + [_trend_r2(v)]
            + [float(np.nanstd(diff) / std) if std > 0 else 0.0,
               float((z ** 3).mean()) if len(z) else 0.0,
               float(np.log1p(max((z ** 4).mean() - 3.0, -2.0) + 2.0)) if len(z) else 0.0])


def meta_features(x: np.ndarray, horizon: int, univariate: bool) -> np.ndarray:
    """Statistical meta-features (len(META_NAMES),) of a training split ``x`` (T, N) of
    standardised variables (NaN = missing); per-variable statistics are averaged over N.

    Raises:
        ValueError: ``x`` not 2-D with T >= 8 and N >= 1, or horizon < 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 8 or x.shape[1] < 1:
        raise ValueError(f"x: got shape {x.shape}; allowed: (T, N) with T >= 8, N >= 1")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon: got {horizon!r}; allowed: an int >= 1")
    t, n = x.shape
    per_var = np.mean([_variable_stats(x[:, j]) for j in range(n)], axis=0)
    corr = 0.0
    if n > 1:
        c = np.corrcoef(np.nan_to_num(x).T)
        corr = float(np.nanmean(np.abs(c[~np.eye(n, dtype=bool)])))
    head = [np.log(t), np.log(n), float(univariate), np.log(horizon), horizon / t,
            float(np.isnan(x).mean())]
    return np.asarray(head + list(per_var) + [corr], dtype=np.float32)


def train_reference_encoder(series: np.ndarray, profile="small", seed: int = 0,
                            scaling=None) -> learner.ContrastiveLearner:
    """Train the reference encoder (:data:`REFERENCE_SPEC`, C = 1) on ``series`` (N, T, 1),
    scaled; ``scaling`` (optional) is the input scaling stored with it.

    Raises:
        RuntimeError: training diverged.
    """
    encoder, record = learner.fit(REFERENCE_SPEC, series, profile, seed=seed, scaling=scaling)
    if record["status"] != "ok":
        raise RuntimeError(f"reference encoder diverged: {record}")
    return encoder


def save_reference(encoder: learner.ContrastiveLearner, directory=WEIGHTS) -> Path:
    """Write ``directory/reference_encoder.pt`` (``ContrastiveLearner.save``: spec, weights,
    scaling and record in one file) and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REFERENCE_FILE
    encoder.save(path)
    return path


def load_reference(directory=WEIGHTS) -> learner.ContrastiveLearner:
    """The reference encoder saved in ``directory`` (default: the shipped one), read with
    ``torch.load(..., weights_only=True)``.

    Raises:
        ValueError: the file is missing, unreadable or not a C = 1 encoder (the message names
            the path; train one with ``ctsnas comparator reference``).
    """
    encoder = learner.ContrastiveLearner.load(Path(directory) / REFERENCE_FILE)
    if encoder.n_features != 1:
        raise ValueError(f"path: {Path(directory) / REFERENCE_FILE} holds an encoder of "
                         f"C = {encoder.n_features}; allowed: a univariate (C = 1) encoder")
    return encoder


def reference_embedding(encoder: learner.ContrastiveLearner, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Set-pooled reference representation (2 * D,) of ``x`` (T, N): ``N_WINDOWS`` windows of
    ``WINDOW`` steps at seeded random positions, every variable encoded as its own univariate
    series, max-pooled over time -> (windows * N, D), then mean and std over the set."""
    x = np.asarray(x, dtype=np.float32)
    t, n = x.shape
    length = min(WINDOW, t)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, t - length + 1, size=N_WINDOWS)
    windows = np.stack([x[s:s + length, j] for s in starts for j in range(n)])[..., None]
    with torch.no_grad():
        reps = encoder.encode(windows, batch_size=256)  # (W * N, length, D)
    pooled = np.nanmax(np.where(np.isfinite(reps), reps, -np.inf), axis=1)
    pooled = np.where(np.isfinite(pooled), pooled, 0.0)
    return np.concatenate([pooled.mean(axis=0), pooled.std(axis=0)]).astype(np.float32)


def task_features(x: np.ndarray, horizon: int, univariate: bool, encoder=None) -> np.ndarray:
    """Meta-features followed by the reference embedding of a training split ``x`` (T, N);
    the unstandardised task vector (the comparator file holds the standardisation)."""
    encoder = encoder or load_reference()
    return np.concatenate([meta_features(x, horizon, univariate),
                           reference_embedding(encoder, x)])

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
(never on a task dataset) and shipped with the package (``weights/reference_encoder.pt``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import search_spaces as ss
from search_spaces import learner

WEIGHTS = Path(__file__).parent / "weights"
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
    if len(v) <= lag + 1:
        return 0.0
    a, b = v[:-lag], v[lag:]
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or a[keep].std() == 0 or b[keep].std() == 0:
        return 0.0
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


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


def train_reference_encoder(series: np.ndarray, profile="small", seed: int = 0) -> learner.Encoder:
    """Train the reference encoder (:data:`REFERENCE_SPEC`, C = 1) on ``series`` (N, T, 1)."""
    encoder, record = learner.fit(REFERENCE_SPEC, series, profile, seed=seed)
    if record["status"] != "ok":
        raise RuntimeError(f"reference encoder diverged: {record}")
    return encoder


def save_reference(encoder: learner.Encoder, directory=WEIGHTS) -> None:
    """Write ``reference_encoder.pt`` (state_dict) and ``reference_encoder.json`` (spec)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(encoder.state_dict(), directory / "reference_encoder.pt")
    (directory / "reference_encoder.json").write_text(json.dumps(encoder.spec, indent=2))


def load_reference(directory=WEIGHTS) -> learner.Encoder:
    """The shipped reference encoder (weights loaded with ``weights_only=True``).

    Raises:
        FileNotFoundError: the weights are missing (train them with ``ctsnas comparator train``).
    """
    directory = Path(directory)
    spec = json.loads((directory / "reference_encoder.json").read_text())
    model = learner.build_model(spec, 1)
    model.load_state_dict(torch.load(directory / "reference_encoder.pt", weights_only=True))
    return learner.Encoder(model, spec)


def reference_embedding(encoder: learner.Encoder, x: np.ndarray, seed: int = 0) -> np.ndarray:
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

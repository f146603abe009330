"""GRA-M's memory bank: (window, future) pairs of the **training split only** (at most
10,000, all variables pooled), instance-normalised by each window, saved with its bounds and a
fingerprint of the training rows so a resumed run reuses it on the same data only."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

EPS = 1e-5  # variance floor of the instance normalisation (RevIN's eps)
FORMAT = 1


def _require(ok: bool, name: str, value, allowed: str) -> None:
    """Raise the one-line ValueError ``"name: got value; allowed: ..."`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name}: got {value}; allowed: {allowed}")


def _fingerprint(values: np.ndarray, bounds: tuple) -> str:
    """Hash of the training rows as float32: a saved bank is reused only on the same data."""
    rows = np.ascontiguousarray(values[bounds[0]:bounds[1]], dtype=np.float32)
    return hashlib.sha1(rows.tobytes()).hexdigest()[:16]


def _stratified(total: int, m: int, seed: int | None) -> np.ndarray:
    """m distinct indices in [0, total): one per equal-width stratum; the first of each stratum
    when seed is None, else a seeded random one (no aliasing with daily/weekly periods)."""
    edges = np.arange(m + 1, dtype=np.int64) * total // m
    if seed is None:
        return edges[:-1]
    return edges[:-1] + np.random.default_rng(seed).integers(0, edges[1:] - edges[:-1])


@dataclass
class MemoryBank:
    """(window, future) pairs of univariate training series, instance-normalised per window.

    Attributes:
        windows: (M, T) float32, ``(w - mean) / std`` of each window w = values[t - T:t, v].
        futures: (M, H) float32, values[t:t + H, v] normalised with the *window's* mean/std.
        rows, variables: (M,) int64, the first future row t and the variable v of each pair.
        mean, std: (M,) float32, each window's mean and sqrt(var + 1e-5) (undo: w * std + mean).
        bounds: (start, end) training rows; seq_len, horizon: T, H; fingerprint: data hash.

    Raises:
        ValueError: inconsistent shapes or an empty bank.
    """

    windows: torch.Tensor
    futures: torch.Tensor
    rows: torch.Tensor
    variables: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    bounds: tuple
    seq_len: int
    horizon: int
    fingerprint: str = ""

    def __post_init__(self):
        m, t, h = len(self.windows), self.seq_len, self.horizon
        for name, shape in zip(("windows", "futures", "rows", "variables", "mean", "std"),
                               ((m, t), (m, h), (m,), (m,), (m,), (m,))):
            got = tuple(getattr(self, name).shape)
            _require(got == shape and m > 0, f"bank {name}", got, f"{shape} with M >= 1")
        self.bounds = (int(self.bounds[0]), int(self.bounds[1]))

    def __len__(self) -> int:
        return self.windows.shape[0]

    @classmethod
    def build(cls, values, train_bounds: tuple, seq_len: int, horizon: int,
              max_items: int = 10_000, seed: int | None = 0) -> MemoryBank:
        """Pairs from ``values`` (T_total, N), a standardised array, whose window [t - T, t)
        and future [t, t + H) both lie inside ``train_bounds`` = [start, end); all N variables
        pooled (channel independence); at most ``max_items`` by stratified subsampling over
        (variable, t) (see :func:`_stratified`; ``seed=None``: evenly spaced).

        Raises:
            ValueError: values not 2-D or non-finite in the training rows, bounds outside
                [0, T_total], non-positive sizes, seq_len + horizon > end - start.
        """
        values = np.asarray(values)
        _require(values.ndim == 2, "values", f"shape {values.shape}", "a 2-D (T_total, N) array")
        start, end = (int(b) for b in train_bounds)
        _require(0 <= start < end <= len(values), "train_bounds", tuple(train_bounds),
                 f"0 <= start < end <= T_total = {len(values)}")
        for name, size in (("seq_len", seq_len), ("horizon", horizon), ("max_items", max_items)):
            _require(isinstance(size, (int, np.integer)) and size >= 1, name, size, "an int >= 1")
        n_t = end - start - seq_len - horizon + 1
        _require(n_t >= 1, "seq_len + horizon", seq_len + horizon, f"<= {end - start} rows")
        _require(bool(np.isfinite(values[start:end]).all()), "values", "non-finite entries in "
                 f"rows [{start}, {end})", "finite training rows")
        pick = _stratified(n_t * values.shape[1], min(max_items, n_t * values.shape[1]), seed)
        var, t = pick // n_t, start + seq_len + pick % n_t
        win = values[t[:, None] + np.arange(-seq_len, 0), var[:, None]].astype(np.float64)
        fut = values[t[:, None] + np.arange(horizon), var[:, None]].astype(np.float64)
        mean, std = win.mean(1, keepdims=True), np.sqrt(win.var(1, keepdims=True) + EPS)
        f32 = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in
               ((win - mean) / std, (fut - mean) / std, mean[:, 0], std[:, 0])]
        return cls(f32[0], f32[1], torch.from_numpy(t), torch.from_numpy(var), f32[2], f32[3],
                   (start, end), seq_len, horizon, _fingerprint(values, (start, end)))

    def raw_windows(self) -> torch.Tensor:
        """The windows in the units of ``values`` (M, T): windows * std + mean."""
        return self.windows * self.std[:, None] + self.mean[:, None]

    def check_bounds(self, train_bounds: tuple) -> None:
        """Raise ValueError unless ``train_bounds`` are the bounds the bank was built from."""
        _require(tuple(int(b) for b in train_bounds) == self.bounds, "train_bounds",
                 tuple(train_bounds), f"{self.bounds}, the training rows this bank was built from")

    def save(self, path) -> None:
        """torch.save of a dict of tensors and metadata (written to a temporary file first)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({**vars(self), "bounds": list(self.bounds), "format": FORMAT}, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)

    @classmethod
    def load(cls, path) -> MemoryBank:
        """A bank saved by :meth:`save`. Raises ValueError on an unknown format."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        _require(state.pop("format", None) == FORMAT, "path", path, f"a bank of format {FORMAT}")
        return cls(**state)

    @classmethod
    def load_or_build(cls, path, values, train_bounds: tuple, seq_len: int, horizon: int,
                      max_items: int = 10_000, seed: int | None = 0,
                      rebuild: bool = False) -> MemoryBank:
        """The bank saved at ``path`` (a resumed run), else (or with ``rebuild``) a new one
        from :meth:`build`, saved there.

        Raises:
            ValueError: the saved bank has other bounds, seq_len, horizon or training data.
        """
        if Path(path).is_file() and not rebuild:
            bank = cls.load(path)
            bank.check_bounds(train_bounds)
            found = (bank.seq_len, bank.horizon, bank.fingerprint)
            wanted = (seq_len, horizon, _fingerprint(np.asarray(values), bank.bounds))
            _require(found == wanted, "path", f"a bank with (seq_len, horizon, data) {found}",
                     f"{wanted} for this run, or rebuild=True")
            return bank
        bank = cls.build(values, train_bounds, seq_len, horizon, max_items, seed)
        bank.save(path)
        return bank

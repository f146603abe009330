"""Supervised warm-up and the online test stream, as the FSNet code runs them (Pham et al.,
ICLR 2023): warm-up on the training split with batches of 32; then, one sample at a time,
predict, wait for the label, update (plus replay for ER / DER++).

Sample t is the window ``x[t - L : t]`` (rows before t) and its label ``y[t : t + H]``. Its
label is complete once row t + H - 1 is observed, that is when sample t + H is predicted; with
``label_delay`` (default) the update on sample t happens then, so no prediction uses a value
after its own time. ``label_delay=False`` updates right after predicting, as the FSNet code
does: for H > 1 the next predictions then use labels up to H - 1 steps early.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite target entries (any shape; 0 when none)."""
    keep = torch.isfinite(target)
    if not bool(keep.any()):
        return pred.sum() * 0.0
    return ((pred - torch.nan_to_num(target)) ** 2)[keep].mean()


class Windows:
    """Sample access on a series: x (T, C_in), y (T, C_out) as float32 tensors."""

    def __init__(self, x: np.ndarray, y: np.ndarray, lookback: int, horizon: int):
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        self.lookback, self.horizon = lookback, horizon

    def starts(self, bounds: tuple) -> np.ndarray:
        """Sample indices t whose label lies inside ``bounds`` = (start, end) rows."""
        first = max(bounds[0], self.lookback)
        return np.arange(first, bounds[1] - self.horizon + 1)

    def inputs(self, ts) -> torch.Tensor:
        """(B,) sample indices -> windows (B, L, C_in)."""
        ts = torch.as_tensor(np.asarray(ts, dtype=np.int64))
        return self.x[ts[:, None] - self.lookback + torch.arange(self.lookback)]

    def labels(self, ts) -> torch.Tensor:
        """(B,) sample indices -> labels (B, H, C_out)."""
        ts = torch.as_tensor(np.asarray(ts, dtype=np.int64))
        return self.y[ts[:, None] + torch.arange(self.horizon)]


def online_optimizer(model, lr: float = 1e-3) -> torch.optim.Adam:
    """Adam (lr ``lr``) over ``model``'s parameters with the multi-tensor (``foreach``) update:
    a batch-1 online step updates many small tensors, where the per-tensor loop cost 9 of an
    FSNet step's 38 ms."""
    return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


def warm_up(model, data: Windows, bounds: tuple, epochs: int = 6, batch_size: int = 32,
            lr: float = 1e-3, seed: int = 0) -> tuple:
    """Supervised training on the samples inside ``bounds``; returns (optimizer, mean loss
    per epoch). The Adam optimizer is returned so the online phase continues it, as in FSNet.

    Raises:
        ValueError: no training sample (a split shorter than lookback + horizon).
    """
    ts = data.starts(bounds)
    if len(ts) == 0:
        raise ValueError(f"horizon: H={data.horizon} with lookback {data.lookback} leaves no "
                         f"training sample in rows {bounds}; allowed: a shorter horizon")
    optimizer = online_optimizer(model, lr)
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    for _ in range(epochs):
        total = 0.0
        order = rng.permutation(ts)
        for i in range(0, len(order), batch_size):
            batch = order[i:i + batch_size]
            loss = masked_mse(model(data.inputs(batch)), data.labels(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.store_grad()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(order))
    optimizer.zero_grad()
    return optimizer, losses


class Reservoir:
    """Reservoir-sampled replay buffer of sample indices (and DER++ outputs)."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seen = size, 0
        self.items: list = []
        self.rng = np.random.default_rng(seed)

    def add(self, t: int, output: torch.Tensor | None = None) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append((t, output))
        else:
            j = int(self.rng.integers(self.seen))
            if j < self.size:
                self.items[j] = (t, output)

    def sample(self, n: int) -> tuple:
        """(indices (n',), outputs (n', H, C) or None) with n' = min(n, len)."""
        pick = self.rng.choice(len(self.items), size=min(n, len(self.items)), replace=False)
        ts = [self.items[i][0] for i in pick]
        outs = [self.items[i][1] for i in pick]
        return ts, (torch.stack(outs) if outs[0] is not None else None)


def _replay_loss(model, data: Windows, buffer: Reservoir, spec) -> torch.Tensor:
    """ER: alpha * MSE on replayed labels; DER++: alpha * MSE on replayed outputs plus
    beta * MSE on other replayed labels (Buzzega et al., NeurIPS 2020, Sec. 4)."""
    ts, outs = buffer.sample(spec.replay_batch)
    if spec.replay == "er":
        return spec.alpha * masked_mse(model(data.inputs(ts)), data.labels(ts))
    loss = spec.alpha * masked_mse(model(data.inputs(ts)), outs)
    ts2, _ = buffer.sample(spec.replay_batch)
    return loss + spec.beta * masked_mse(model(data.inputs(ts2)), data.labels(ts2))


def _update(model, optimizer, data: Windows, t: int, buffer, pred=None) -> None:
    """One online step on sample t (``pred``: its prediction with graph, else recomputed)."""
    pred = model(data.inputs([t])) if pred is None else pred
    loss = masked_mse(pred, data.labels([t]))
    if buffer is not None and buffer.items:
        loss = loss + _replay_loss(model, data, buffer, model.spec)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.store_grad()
    optimizer.zero_grad()
    if buffer is not None:
        buffer.add(t, pred.detach()[0] if model.spec.replay == "derpp" else None)


@dataclass
class StreamResult:
    """Cumulative metrics of a stream: ``mse``/``mae`` over the samples with a label
    (standardised scale; missing label values are skipped; a non-finite prediction makes
    them NaN, a diverged forecaster), ``curve`` the cumulative MSE
    after each sample (n,), ``seconds`` wall time, ``triggers`` memory recalls summed over
    the adapted layers."""

    mse: float
    mae: float
    n_samples: int
    seconds: float
    triggers: int
    curve: np.ndarray = field(repr=False)
    predictions: np.ndarray | None = field(default=None, repr=False)


def run_stream(model, optimizer, data: Windows, bounds: tuple, batch_size: int = 1,
               label_delay: bool = True, seed: int = 0, keep_predictions: bool = False,
               progress=None) -> StreamResult:
    """Online forecasting over the samples whose labels lie in ``bounds`` (model in eval
    mode: dropout off, memory triggers on). ``progress(done, total)`` is called every 500
    samples. Predictions (n, H, C_out) are kept with ``keep_predictions``.

    Raises:
        ValueError: ``batch_size`` other than 1, or no sample in ``bounds``.
    """
    if batch_size != 1:
        raise ValueError(f"batch_size: got {batch_size!r}; allowed: 1 (online forecasting "
                         "predicts and updates one sample at a time)")
    ts = data.starts(bounds)
    if len(ts) == 0:
        raise ValueError(f"horizon: H={data.horizon} leaves no online sample in rows {bounds}")
    spec = model.spec
    buffer = Reservoir(spec.buffer_size, seed) if spec.replay else None
    model.eval()
    start, pending = time.perf_counter(), deque()
    sq, ab, preds = np.empty(len(ts)), np.empty(len(ts)), []
    scored = np.zeros(len(ts), dtype=bool)
    for i, t in enumerate(ts):
        t = int(t)
        if label_delay:
            while pending and pending[0] + data.horizon <= t:
                _update(model, optimizer, data, pending.popleft(), buffer)
            with torch.no_grad():
                pred = model(data.inputs([t]))
            pending.append(t)
        else:
            pred = model(data.inputs([t]))
            _update(model, optimizer, data, t, buffer, pred=pred)
        label = data.labels([t])[0]
        err = (pred.detach()[0] - label)[torch.isfinite(label)]  # a NaN prediction stays NaN
        scored[i] = err.numel() > 0
        sq[i], ab[i] = ((float((err ** 2).mean()), float(err.abs().mean())) if err.numel()
                        else (np.nan, np.nan))
        if keep_predictions:
            preds.append(pred.detach()[0].numpy())
        if progress is not None and (i + 1) % 500 == 0:
            progress(i + 1, len(ts))
    curve = np.cumsum(np.where(scored, sq, 0.0)) / np.maximum(np.cumsum(scored), 1)
    return StreamResult(mse=float(sq[scored].mean()) if scored.any() else np.nan,
                        mae=float(ab[scored].mean()) if scored.any() else np.nan,
                        n_samples=int(scored.sum()),
                        seconds=time.perf_counter() - start, triggers=model.n_triggers(),
                        curve=curve, predictions=np.stack(preds) if keep_predictions else None)

"""A trained encoder and its inference: full-series and (causal) sliding-window encoding."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


class Encoder:
    """A trained contrastive encoder (eval mode) with the TS2Vec ``encode`` interface.

    Attributes:
        spec: the architecture spec it was built from.
        n_features: C, the number of input channels it expects.
        repr_dim: D, the representation width.
    """

    def __init__(self, model: nn.Module, spec: dict):
        self.model = model.eval()
        self.spec = spec
        self.n_features = model.n_features
        self.repr_dim = spec["Encoder"]["repr_dim"]

    def _check(self, x) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != self.n_features or arr.shape[1] < 1:
            raise ValueError(f"x: got shape {arr.shape}; allowed: (N, T, C) with T >= 1 and "
                             f"C = {self.n_features}")
        return arr

    @torch.no_grad()
    def encode(self, x, causal: bool = False, sliding_padding: int = 0,
               batch_size: int = 256, steps=None) -> np.ndarray:
        """Representations of every timestamp: x (N, T, C) -> (N, T, D) float32.

        With ``sliding_padding`` = 0 and ``causal`` False each series is encoded whole. Otherwise
        the representation of step t is the encoder output at t for the window
        [t - sliding_padding, t] (causal, the TS2Vec forecasting protocol, Yue et al. 2022 Sec.
        4.2) or [t - sliding_padding, t + sliding_padding] (non-causal); steps outside the series
        are NaN, i.e. masked. Windows are batched (``batch_size`` windows per forward pass),
        with no per-timestamp Python loop. ``steps`` (1-D ints in [0, T), sliding encoding
        only) restricts the output to those timestamps: (N, len(steps), D).

        Raises:
            ValueError: wrong shape or channel count, negative padding, batch_size < 1,
                ``steps`` out of range or given without sliding encoding.
        """
        arr = self._check(x)
        if not isinstance(sliding_padding, int) or sliding_padding < 0:
            raise ValueError(f"sliding_padding: got {sliding_padding!r}; allowed: an int >= 0")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: got {batch_size!r}; allowed: an int >= 1")
        data = torch.from_numpy(arr)
        if steps is not None:
            steps = np.asarray(steps, dtype=np.int64)
            if steps.ndim != 1 or (len(steps) and (steps.min() < 0 or steps.max() >= arr.shape[1])):
                raise ValueError(f"steps: allowed: 1-D ints in [0, {arr.shape[1]})")
            if sliding_padding == 0 and not causal:
                raise ValueError("steps: allowed only with causal or sliding encoding")
        else:
            steps = np.arange(arr.shape[1])
        if sliding_padding == 0 and not causal:
            out = [self.model(data[i:i + batch_size]) for i in range(0, len(data), batch_size)]
            return torch.cat(out).numpy()
        return self._sliding(data, sliding_padding, causal, batch_size, torch.from_numpy(steps))

    def _sliding(self, data: torch.Tensor, padding: int, causal: bool,
                 batch_size: int, steps: torch.Tensor) -> np.ndarray:
        n, t, c = data.shape
        right = 0 if causal else padding
        padded = torch.full((n, padding + t + right, c), float("nan"))
        padded[:, padding:padding + t] = data
        width = padding + 1 + right
        out = torch.empty(n, len(steps), self.repr_dim)
        for i in range(n):
            windows = padded[i].unfold(0, width, 1).transpose(1, 2)  # T x width x C (a view)
            for s in range(0, len(steps), batch_size):
                batch = windows[steps[s:s + batch_size]]
                if causal:  # the step of interest is the window's last: compute only it
                    out[i, s:s + batch_size] = self.model.forward_last(batch)
                else:
                    out[i, s:s + batch_size] = self.model(batch)[:, padding]
        return out.numpy()

    def state_dict(self) -> dict:
        """The network weights (for ``torch.save``; reload with ``weights_only=True``)."""
        return self.model.state_dict()

"""Inference of a trained network: full-series and (causal) sliding-window encoding."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


def check_input(x, n_features: int) -> np.ndarray:
    """``x`` as float32 (N, T, C) with C = ``n_features``.

    Raises:
        ValueError: not 3-D, T < 1, or another channel count.
    """
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != n_features or arr.shape[1] < 1:
        raise ValueError(f"x: got shape {arr.shape}; allowed: (N, T, C) with T >= 1 and "
                         f"C = {n_features}")
    return arr


@torch.no_grad()
def encode(model: nn.Module, x, causal: bool = False, sliding_padding: int = 0,
           batch_size: int = 256, steps=None) -> np.ndarray:
    """Representations of every timestamp by ``model`` (a CellEncoder in eval mode):
    x (N, T, C) -> (N, T, D) float32. See :meth:`ContrastiveLearner.encode`.

    Raises:
        ValueError: wrong shape or channel count, negative padding, batch_size < 1,
            ``steps`` out of range or given without sliding encoding.
    """
    arr = check_input(x, model.n_features)
    if isinstance(sliding_padding, bool) or not isinstance(sliding_padding, int) \
            or sliding_padding < 0:
        raise ValueError(f"sliding_padding: got {sliding_padding!r}; allowed: an int >= 0")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
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
        out = [model(data[i:i + batch_size]) for i in range(0, len(data), batch_size)]
        return torch.cat(out).numpy()
    return _sliding(model, data, sliding_padding, causal, batch_size, torch.from_numpy(steps))


def _sliding(model: nn.Module, data: torch.Tensor, padding: int, causal: bool,
             batch_size: int, steps: torch.Tensor) -> np.ndarray:
    n, t, c = data.shape
    right = 0 if causal else padding
    padded = torch.full((n, padding + t + right, c), float("nan"))
    padded[:, padding:padding + t] = data
    width = padding + 1 + right
    out = torch.empty(n, len(steps), model.repr_dim)
    for i in range(n):
        windows = padded[i].unfold(0, width, 1).transpose(1, 2)  # T x width x C (a view)
        for s in range(0, len(steps), batch_size):
            batch = windows[steps[s:s + batch_size]]
            if causal:  # the step of interest is the window's last: compute only it
                out[i, s:s + batch_size] = model.forward_last(batch)
            else:
                out[i, s:s + batch_size] = model(batch)[:, padding]
    return out.numpy()

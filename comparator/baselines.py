"""Baselines for the comparator evaluation: a flat one-hot encoding of a spec scored by an MLP
trained with the same within-task pairwise BCE as T-AHC (no graph, no task), and the
parameter-count ranking.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces import canonical
from search_spaces import space as _space
from search_spaces.space import Choice, Edges, Subset, View

from .graph import _onehot


def _view_block(cell: list, view: View) -> list:
    """Per augmentation (table order): present, strength one-hot, position in the canonical
    view / ``max_sampled_ordered``."""
    out = []
    for aug in view.augs:
        found = [(i, a) for i, a in enumerate(cell) if a["name"] == aug.name]
        i, a = found[0] if found else (0, None)
        out += [1.0 if a else 0.0] + _onehot(a["strength"] if a else None, aug.strengths)
        out.append(i / view.max_sampled_ordered if a else 0.0)
    return out


def _edges_block(cell: list, f: Edges, max_steps: int) -> list:
    """Per edge position of the largest cell: op one-hot, then source one-hot over the states
    0..max_steps-1 (all zeros past the cell's ``2*steps-1`` edges)."""
    out = []
    n_max = 2 * max_steps - 1
    for k in range(n_max):
        src, op = cell[k] if k < len(cell) else (None, None)
        out += _onehot(op, [o.name for o in f.grid]) + _onehot(src, range(max_steps))
    return out


def _fields_block(cell: dict, fields: dict) -> list:
    """Subset (multi-hot) and Edges fields first, then every Choice one-hot, in key order."""
    out = []
    for name, f in fields.items():
        if isinstance(f, Subset):
            out += [1.0 if x in cell[name] else 0.0 for x in f.grid]
        elif isinstance(f, Edges):
            out += _edges_block(cell[name], f, max(fields[f.steps].grid))
    for name, f in fields.items():
        if isinstance(f, Choice):
            out += _onehot(cell[name], f.grid)
    return out


def flat_features(spec: dict) -> np.ndarray:
    """The flat one-hot vector (F_flat,) float32 of a spec: every cell of
    :data:`search_spaces.space.SPACE` in order, every choice one-hot (the encoder cell as one
    one-hot op and one source per edge position, contrasts multi-hot).

    Raises:
        ValueError: the spec is invalid.
    """
    c = canonical(spec)
    v = []
    for key, cell in _space.SPACE.cells.items():
        v += _view_block(c[key], cell) if isinstance(cell, View) else _fields_block(c[key], cell)
    return np.asarray(v, dtype=np.float32)


def train_flat_mlp(records: list, epochs: int = 60, pairs_per_task: int = 256, seed: int = 0,
                   hidden: int = 64, lr: float = 1e-3) -> nn.Module:
    """An MLP score over :func:`flat_features`, trained with BCE on sigmoid(s_a - s_b) over
    random pairs of records of the same task (label: a has the lower ``val_mse``).

    Raises:
        ValueError: no task with two records of different val_mse.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    X = torch.from_numpy(np.stack([flat_features(r["spec"]) for r in records]))
    mse = np.array([r["val_mse"] for r in records], dtype=np.float64)
    groups = {}
    for i, r in enumerate(records):
        groups.setdefault(r["task_id"], []).append(i)
    groups = [np.array(g) for g in groups.values() if np.unique(mse[g]).size > 1]
    if not groups:
        raise ValueError("records: no task has two records with different val_mse")
    model = nn.Sequential(nn.Linear(X.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                          nn.ReLU(), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        pairs = np.concatenate([g[rng.integers(len(g), size=(pairs_per_task, 2))] for g in groups])
        pairs = pairs[mse[pairs[:, 0]] != mse[pairs[:, 1]]]
        for start in range(0, len(pairs), 256):
            b = pairs[start:start + 256]
            s = model(X).squeeze(1)
            logit = s[b[:, 0]] - s[b[:, 1]]
            y = torch.from_numpy((mse[b[:, 0]] < mse[b[:, 1]]).astype(np.float32))
            loss = nn.functional.binary_cross_entropy_with_logits(logit, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def flat_scores(model: nn.Module, specs: list) -> np.ndarray:
    """Scores (N,) of specs under a flat MLP (higher = predicted better)."""
    with torch.no_grad():
        X = torch.from_numpy(np.stack([flat_features(s) for s in specs]))
        return model(X).squeeze(1).numpy()

"""Baselines for the comparator evaluation: a flat one-hot encoding of a spec scored by an MLP
trained with the same within-task pairwise BCE as T-AHC (no graph, no task), and the
parameter-count ranking.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces import canonical
from search_spaces import spec as S

from .graph import _onehot

MAX_EDGES = 2 * max(S.ENCODER_STEPS) - 1


def _aug_block(cell: list) -> list:
    """Per augmentation: present, strength one-hot, position (ordered ones) / 3."""
    out = []
    for name in S.AUGMENTATIONS:
        found = [(i, a) for i, a in enumerate(cell) if a["name"] == name]
        i, a = found[0] if found else (0, None)
        out += [1.0 if a else 0.0] + _onehot(a["strength"] if a else None, S.AUG_STRENGTHS[name])
        out.append(i / 3.0 if a else 0.0)
    return out


def flat_features(spec: dict) -> np.ndarray:
    """The flat one-hot vector of a spec (every cell choice one-hot; the encoder cell as one
    one-hot op and one source per edge position)."""
    c = canonical(spec)
    e, p, lo, tr = c["Encoder"], c["PairCell"], c["LossCell"], c["Train"]
    v = _aug_block(c["AugCell1"]) + _aug_block(c["AugCell2"])
    v += (_onehot(c["EmbedCell"]["jitter"], S.EMBED_JITTER)
          + _onehot(c["EmbedCell"]["masking"], S.EMBED_MASKING)
          + _onehot(c["EmbedCell"]["norm"], S.EMBED_NORMS))
    v += ([1.0 if x in p["contrasts"] else 0.0 for x in S.CONTRASTS]
          + _onehot(p["pooling"], S.POOLINGS) + _onehot(p["kernel"], S.POOL_KERNELS)
          + _onehot(p["level_weighting"], S.LEVEL_WEIGHTINGS))
    v += (_onehot(lo["loss"], S.LOSSES) + _onehot(lo["similarity"], S.SIMILARITIES)
          + _onehot(lo["temperature"], S.TEMPERATURES))
    for k in range(MAX_EDGES):
        src, op = e["cell"][k] if k < len(e["cell"]) else (None, None)
        v += _onehot(op, S.ENCODER_OPS) + _onehot(src, range(max(S.ENCODER_STEPS)))
    v += (_onehot(e["steps"], S.ENCODER_STEPS) + _onehot(e["layers"], S.ENCODER_LAYERS)
          + _onehot(e["hidden"], S.HIDDEN_WIDTHS) + _onehot(e["repr_dim"], S.REPR_DIMS))
    v += (_onehot(tr["lr"], S.LEARNING_RATES) + _onehot(tr["batch_size"], S.BATCH_SIZES)
          + _onehot(tr["max_train_length"], S.MAX_TRAIN_LENGTHS))
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

"""Random sampling, mutation and size of the joint search space (dict-based, deterministic)."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from . import spec as S
from .validation import validate

MAX_ORDERED_AUGS = 3  # at most this many input-space transforms per view when sampling


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng: got {rng!r}; allowed: a numpy Generator or an int seed")


def _pick(rng: np.random.Generator, grid):
    value = grid[int(rng.integers(len(grid)))]
    return value.item() if hasattr(value, "item") else value


def _sample_aug_cell(rng: np.random.Generator) -> list:
    k = int(rng.integers(MAX_ORDERED_AUGS + 1))
    names = [S.ORDERED_AUGMENTATIONS[i] for i in rng.permutation(len(S.ORDERED_AUGMENTATIONS))[:k]]
    cell = [{"name": n, "strength": _pick(rng, S.AUG_STRENGTHS[n])} for n in names]
    for name in S.UNORDERED_AUGMENTATIONS:
        if rng.random() < 0.5:
            cell.append({"name": name, "strength": _pick(rng, S.AUG_STRENGTHS[name])})
    return cell


def _sample_edges(rng: np.random.Generator, steps: int, ops: tuple) -> list:
    cell = [[0, _pick(rng, ops)]]
    for i in range(1, steps):
        cell.append([int(rng.integers(i)), _pick(rng, ops)])
        cell.append([i, _pick(rng, ops)])
    return cell


def _sample_cell(rng: np.random.Generator, key: str, spatial: bool):
    if key in ("AugCell1", "AugCell2"):
        return _sample_aug_cell(rng)
    if key == "EmbedCell":
        return {"jitter": _pick(rng, S.EMBED_JITTER), "masking": _pick(rng, S.EMBED_MASKING),
                "norm": _pick(rng, S.EMBED_NORMS)}
    if key == "PairCell":
        mask = 0
        while mask == 0:
            mask = int(rng.integers(1 << len(S.CONTRASTS)))
        return {"contrasts": [c for i, c in enumerate(S.CONTRASTS) if mask >> i & 1],
                "pooling": _pick(rng, S.POOLINGS), "kernel": _pick(rng, S.POOL_KERNELS),
                "level_weighting": _pick(rng, S.LEVEL_WEIGHTINGS)}
    if key == "LossCell":
        return {"loss": _pick(rng, S.LOSSES), "similarity": _pick(rng, S.SIMILARITIES),
                "temperature": _pick(rng, S.TEMPERATURES)}
    if key == "Encoder":
        steps = _pick(rng, S.ENCODER_STEPS)
        ops = S.ENCODER_OPS if spatial else S.TEMPORAL_OPS
        return {"steps": steps, "layers": _pick(rng, S.ENCODER_LAYERS),
                "cell": _sample_edges(rng, steps, ops), "hidden": _pick(rng, S.HIDDEN_WIDTHS),
                "repr_dim": _pick(rng, S.REPR_DIMS)}
    return {"lr": _pick(rng, S.LEARNING_RATES), "batch_size": _pick(rng, S.BATCH_SIZES),
            "max_train_length": _pick(rng, S.MAX_TRAIN_LENGTHS)}


def sample(rng, spatial: bool = True) -> dict:
    """Draw one valid spec; the same seed (or Generator state) always gives the same spec.

    Args:
        rng: a ``numpy.random.Generator`` (advanced in place) or an int seed.
        spatial: allow the spatial encoder ops (for correlated multi-variable data).

    Raises:
        ValueError: ``rng`` is neither a Generator nor an int.
    """
    rng = _rng(rng)
    out = {"version": S.SPEC_VERSION}
    for key in S.CELL_KEYS:
        out[key] = _sample_cell(rng, key, spatial)
    return validate(out)


def mutate(spec: dict, rng, spatial: bool = True) -> dict:
    """Return a copy of ``spec`` with one cell resampled so the canonical spec changes.

    A uniformly chosen cell is redrawn (the encoder keeps its ``steps`` with probability 1/2
    and then only one edge's op or source changes), retried until the hash differs.

    Raises:
        ValueError: ``spec`` is invalid or ``rng`` is not a Generator / int seed.
    """
    from .spec import canonical, spec_hash

    rng = _rng(rng)
    before = spec_hash(spec)
    for _ in range(100):
        out = canonical(spec)  # a deep copy with list edges and plain numbers
        key = S.CELL_KEYS[int(rng.integers(len(S.CELL_KEYS)))]
        if key == "Encoder" and rng.random() < 0.5:
            _mutate_edge(out["Encoder"], rng, spatial)
        else:
            out[key] = _sample_cell(rng, key, spatial)
        if spec_hash(out) != before:
            return out
    raise ValueError("mutate: no different spec found in 100 draws")  # unreachable in practice


def _mutate_edge(encoder: dict, rng: np.random.Generator, spatial: bool) -> None:
    ops = S.ENCODER_OPS if spatial else S.TEMPORAL_OPS
    k = int(rng.integers(len(encoder["cell"])))
    if k % 2 == 1 and rng.random() < 0.5:
        node = (k + 1) // 2 + 1
        encoder["cell"][k][0] = int(rng.integers(node - 1))
    else:
        encoder["cell"][k][1] = _pick(rng, ops)


def _aug_cell_count() -> int:
    """Distinct canonical augmentation cells of one view (order kept for ordered transforms)."""
    ordered = 0
    names = S.ORDERED_AUGMENTATIONS
    for k in range(len(names) + 1):
        for subset in combinations(names, k):
            ordered += math.factorial(k) * math.prod(len(S.AUG_STRENGTHS[n]) for n in subset)
    unordered = math.prod(1 + len(S.AUG_STRENGTHS[n]) for n in S.UNORDERED_AUGMENTATIONS)
    return ordered * unordered


def _encoder_count(n_ops: int) -> int:
    cells = sum(n_ops ** (2 * s - 1) * math.factorial(s - 1) for s in S.ENCODER_STEPS)
    return cells * len(S.ENCODER_LAYERS) * len(S.HIDDEN_WIDTHS) * len(S.REPR_DIMS)


def space_size(spatial: bool = True) -> int:
    """Exact number of distinct canonical specs (an int; about 2.4e28 with spatial ops).

    Counts the full space (including the ordered-augmentation lists longer than the sampler
    draws); semantically equal specs (same canonical form) are counted once.
    """
    n_ops = len(S.ENCODER_OPS if spatial else S.TEMPORAL_OPS)
    embed = len(S.EMBED_JITTER) * len(S.EMBED_MASKING) * len(S.EMBED_NORMS)
    pair = ((1 << len(S.CONTRASTS)) - 1) * len(S.POOLINGS) * len(S.POOL_KERNELS) * len(S.LEVEL_WEIGHTINGS)
    loss = len(S.LOSSES) * len(S.SIMILARITIES) * len(S.TEMPERATURES)
    train = len(S.LEARNING_RATES) * len(S.BATCH_SIZES) * len(S.MAX_TRAIN_LENGTHS)
    return _aug_cell_count() ** 2 * embed * pair * loss * _encoder_count(n_ops) * train

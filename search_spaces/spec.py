"""The joint search space: cell grids, presets and canonical form of an architecture spec.

A *spec* is a plain JSON-serialisable dict (it crosses process and package boundaries)::

    {
      "version": 1,
      "AugCell1": [{"name": "crop", "strength": 1.0}, ...],   # view 1, ordered
      "AugCell2": [...],                                       # view 2, ordered
      "EmbedCell": {"jitter": 0.0, "masking": 0.1, "norm": "none"},
      "PairCell": {"contrasts": ["instance", "temporal"], "pooling": "max",
                   "kernel": 2, "level_weighting": "uniform"},
      "LossCell": {"loss": "NT-Xent", "similarity": "dot", "temperature": 1.0},
      "Encoder": {"steps": 1, "layers": 10, "cell": [[0, "ts2vec_conv"]],
                  "hidden": 64, "repr_dim": 320},
      "Train": {"lr": 0.001, "batch_size": 8, "max_train_length": 3000},
    }

The augmentation and contrastive-strategy cells follow AutoCL (Jing et al., "Automated
Contrastive Learning Strategy Search for Time Series", 2024); the encoder cell follows
AutoCTS++ (Wu et al., VLDB Journal 2024): ``steps`` nodes, node 1 = op(state 0) and node
i+1 = op_a(state j) + op_b(state i) with j < i, written as 2*steps-1 ``[source, op]`` pairs,
the cell stacked ``layers`` times with dilation 2**layer (as the TS2Vec dilated-conv encoder).
The cells, fields and grids (and what each value means) are declared once in
:data:`search_spaces.space.SPACE`; :func:`search_spaces.validate` accepts exactly them. This
module holds the presets, the canonical form and the hash.
"""
from __future__ import annotations

import copy
import hashlib
import json

from . import space as _space
from .space import Choice, Subset, View
from .validation import validate

# Names of the grids as module constants: read-only views of the table taken at import (for
# importers such as the learner; the functions here read ``space.SPACE`` at call time).
_S, _C = _space.SPACE, _space.SPACE.cells
SPEC_VERSION = _S.version
ORDERED_AUGMENTATIONS = tuple(a.name for a in _S.view.augs if a.place == "ordered")
UNORDERED_AUGMENTATIONS = tuple(a.name for a in _S.view.augs if a.place != "ordered")
AUGMENTATIONS = tuple(_S.augs)
AUG_STRENGTHS = {a.name: a.strengths for a in _S.view.augs}
EMBED_JITTER, EMBED_MASKING, EMBED_NORMS = (_C["EmbedCell"][k].grid
                                            for k in ("jitter", "masking", "norm"))
CONTRASTS, POOLINGS, POOL_KERNELS, LEVEL_WEIGHTINGS = (
    _C["PairCell"][k].grid for k in ("contrasts", "pooling", "kernel", "level_weighting"))
LOSSES, SIMILARITIES, TEMPERATURES = (_C["LossCell"][k].grid
                                      for k in ("loss", "similarity", "temperature"))
#: Encoder op names in table order (``search_spaces.learner.ops.OPS`` has the same keys).
ENCODER_OPS = _S.op_names()
TEMPORAL_OPS = _S.op_names(spatial=False)
SPATIAL_OPS = tuple(n for n in ENCODER_OPS if n in _S.spatial_ops)
ENCODER_STEPS, ENCODER_LAYERS, HIDDEN_WIDTHS, REPR_DIMS = (
    _C["Encoder"][k].grid for k in ("steps", "layers", "hidden", "repr_dim"))
LEARNING_RATES, BATCH_SIZES, MAX_TRAIN_LENGTHS = (
    _C["Train"][k].grid for k in ("lr", "batch_size", "max_train_length"))
CELL_KEYS = _S.cell_keys
TOP_KEYS = _S.top_keys

TS2VEC = {
    "version": SPEC_VERSION,
    "AugCell1": [{"name": "crop", "strength": 1.0}, {"name": "timestamp_masking", "strength": 0.5}],
    "AugCell2": [{"name": "crop", "strength": 1.0}, {"name": "timestamp_masking", "strength": 0.5}],
    "EmbedCell": {"jitter": 0.0, "masking": 0.1, "norm": "none"},
    "PairCell": {"contrasts": ["instance", "temporal"], "pooling": "max", "kernel": 2,
                 "level_weighting": "uniform"},
    "LossCell": {"loss": "NT-Xent", "similarity": "dot", "temperature": 1.0},
    "Encoder": {"steps": 1, "layers": 10, "cell": [[0, "ts2vec_conv"]], "hidden": 64,
                "repr_dim": 320},
    "Train": {"lr": 1e-3, "batch_size": 8, "max_train_length": 3000},
}
"""TS2Vec (Yue et al., AAAI 2022) as a point of the space: contextual crop + binomial timestamp
masking on both views, 10 residual dilated-conv blocks of width 64 plus the output block to
D=320, hierarchical instance + temporal contrast with max pooling of kernel 2, dot similarity,
no temperature, repr dropout 0.1, AdamW lr 1e-3, batch 8, sections of at most 3000 steps."""

PRESETS = {"ts2vec": TS2VEC}


def preset(name: str) -> dict:
    """Return a deep copy of the named preset spec.

    Raises:
        ValueError: ``name`` is not a preset; the message lists the presets.
    """
    if name not in PRESETS:
        raise ValueError(f"preset: got {name!r}; allowed: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def _float(value) -> float:
    return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0


def _number(value, grid: tuple):
    """A valid grid value in its grid's type (float on float grids, int on int grids)."""
    if isinstance(grid[0], float):
        return _float(value)
    return int(value) if isinstance(grid[0], int) else value


def _canonical_view(entries: list, view: View) -> list:
    """Places ``first`` augmentations before the ordered ones, ``last`` ones after (table order)."""
    slot = _space.SPACE.canonical_slot
    entries = [{"name": a["name"], "strength": _float(a["strength"])} for a in entries]
    ranked = sorted(range(len(entries)), key=lambda i: slot[entries[i]["name"]] or (1, i))
    return [entries[i] for i in ranked]


def _canonical_field(f, value):
    if isinstance(f, Choice):
        return _number(value, f.grid)
    if isinstance(f, Subset):
        return sorted(value, key=f.grid.index)
    return [[int(src), op] for src, op in value]  # Edges


def _canonical(spec: dict) -> dict:
    """The canonical form of a spec already validated (see :func:`canonical`); key order as
    in ``spec``."""
    space, out = _space.SPACE, {}
    for key, value in spec.items():
        cell = space.cells.get(key)
        if cell is None:
            out[key] = space.version
        elif isinstance(cell, View):
            out[key] = _canonical_view(value, cell)
        else:
            out[key] = {name: _canonical_field(cell[name], v) for name, v in value.items()}
    return out


def canonical(spec: dict) -> dict:
    """Return the canonical form of a valid spec (a new dict; the input is not changed).

    Order is kept where it is meaningful (the ordered input-space augmentations, the encoder
    edges) and normalised where it is not: ``crop`` goes first and ``timestamp_masking`` last
    in each view (their ``place`` in :data:`search_spaces.space.AUGS`), contrasts follow their
    grid order, numbers are floats or ints as their grid defines. The spec is validated once,
    here: :func:`to_json` and :func:`spec_hash` go through this function.

    Raises:
        ValueError: the spec is invalid (see :func:`search_spaces.validate`).
    """
    return _canonical(validate(spec))


def _dumps(canon: dict) -> str:
    return json.dumps(canon, sort_keys=True, separators=(",", ":"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_json(spec: dict) -> str:
    """Compact, key-sorted JSON of the canonical form (the text the hash is taken of).

    Raises:
        ValueError: the spec is invalid.
    """
    return _dumps(canonical(spec))


def spec_hash(spec: dict) -> str:
    """Stable 16-hex-digit SHA-256 of the canonical spec; equal for semantically equal specs.
    Validates ``spec`` once (via :func:`canonical`).

    Raises:
        ValueError: the spec is invalid.
    """
    return _digest(to_json(spec))


def uses_spatial_ops(spec: dict) -> bool:
    """True when the encoder cell holds an op that mixes the N variables."""
    key, name = _space.SPACE.edges_at
    spatial = _space.SPACE.spatial_ops
    return any(op in spatial for _, op in spec[key][name])

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
Every value below is a module-level grid; :func:`search_spaces.validate` accepts exactly them.
"""
from __future__ import annotations

import copy
import hashlib
import json

SPEC_VERSION = 1

#: Input-space augmentations whose order within a view is meaningful (applied in list order).
ORDERED_AUGMENTATIONS = ("resize", "jitter", "rescaling", "point_masking", "frequency_masking")
#: Augmentations whose position in the list carries no meaning: ``crop`` is the TS2Vec
#: contextual crop taken before any transform, ``timestamp_masking`` the TS2Vec latent mask
#: applied after the input projection.
UNORDERED_AUGMENTATIONS = ("crop", "timestamp_masking")
AUGMENTATIONS = ORDERED_AUGMENTATIONS + UNORDERED_AUGMENTATIONS

#: Strength grid per augmentation (data are standardised, so noise scales are in std units):
#: resize: maximal relative time-axis rescale s (factor f ~ U(1-s, 1), resampled to T*f steps
#: and back); jitter: Gaussian noise std; rescaling: std of the per-(instance, channel)
#: amplitude factor ~ N(1, s); point_masking: probability a (t, c) point is zeroed;
#: frequency_masking: fraction of rFFT bins zeroed; crop: fraction of the free room on each
#: side the context may extend over (1.0 = TS2Vec); timestamp_masking: probability a latent
#: timestamp is masked (0.5 = TS2Vec binomial mask).
AUG_STRENGTHS = {
    "resize": (0.1, 0.2, 0.3, 0.5),
    "jitter": (0.01, 0.05, 0.1, 0.3),
    "rescaling": (0.1, 0.2, 0.5, 1.0),
    "point_masking": (0.05, 0.1, 0.2, 0.3),
    "frequency_masking": (0.05, 0.1, 0.2, 0.3),
    "crop": (0.25, 0.5, 1.0),
    "timestamp_masking": (0.1, 0.3, 0.5, 0.7),
}

#: EmbedCell: Gaussian jitter std added to representations in training, representation
#: masking (dropout probability; TS2Vec's repr_dropout is 0.1) and normalisation over D.
EMBED_JITTER = (0.0, 0.01, 0.05, 0.1)
EMBED_MASKING = (0.0, 0.1, 0.2, 0.3)
EMBED_NORMS = ("none", "l2", "layernorm", "batchnorm")

#: PairCell: instance contrast (across the B instances at each timestamp), temporal contrast
#: (across the T timestamps of each instance), both from TS2Vec (Yue et al., AAAI 2022, Eq. 1-2),
#: and cross_scale (local-global: each timestamp of view 1 against the pooled series-level
#: representation of each instance in view 2, as in DIM/CPC-style local-global contrast).
CONTRASTS = ("instance", "temporal", "cross_scale")
POOLINGS = ("max", "avg")
POOL_KERNELS = (2, 3, 5, 7)
#: Weight of hierarchy level l (0 = finest): uniform (TS2Vec), fine_first ~ 2**-l,
#: coarse_first ~ 2**l; weights are normalised to sum to one.
LEVEL_WEIGHTINGS = ("uniform", "fine_first", "coarse_first")

#: LossCell. NT-Xent: both views of all instances are candidates (SimCLR; TS2Vec's form);
#: InfoNCE: only the other view's items are candidates (CPC, MoCo); triplet: hinge with
#: margin 1 on (negative - positive) similarity / temperature, averaged over all negatives.
LOSSES = ("InfoNCE", "NT-Xent", "triplet")
SIMILARITIES = ("dot", "cosine", "neg_euclidean")
#: Similarities are divided by the temperature; 1.0 means "no temperature" (TS2Vec).
TEMPERATURES = (0.05, 0.1, 0.2, 0.5, 1.0)

#: Encoder operations. Temporal: identity, gated dilated causal conv (WaveNet / Graph WaveNet),
#: the TS2Vec dilated-conv residual block, temporal self-attention. Spatial (across the N
#: variables of correlated multi-variable input): diffusion graph conv with an adaptive
#: adjacency (Graph WaveNet, Wu et al., IJCAI 2019) and spatial self-attention.
TEMPORAL_OPS = ("identity", "gated_tcn", "ts2vec_conv", "temporal_attention")
SPATIAL_OPS = ("diffusion_gcn", "spatial_attention")
ENCODER_OPS = TEMPORAL_OPS + SPATIAL_OPS
ENCODER_STEPS = (1, 2, 3, 4)
ENCODER_LAYERS = (2, 4, 6, 8, 10)
HIDDEN_WIDTHS = (32, 64, 128)
REPR_DIMS = (64, 128, 320)

#: Train: learning rate (AdamW), batch size (B) and the crop length: training series longer
#: than ``max_train_length`` are split into sections of at most that many steps (TS2Vec).
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3)
BATCH_SIZES = (4, 8, 16, 32)
MAX_TRAIN_LENGTHS = (200, 500, 1000, 3000)

CELL_KEYS = ("AugCell1", "AugCell2", "EmbedCell", "PairCell", "LossCell", "Encoder", "Train")
TOP_KEYS = ("version",) + CELL_KEYS

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


def _copy_tree(value):
    """Copy of a JSON-like tree of dicts and lists (tuples become lists); leaves are shared
    (they are immutable scalars in a valid spec). Several times faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_tree(v) for v in value]
    return value


def _float(value) -> float:
    return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0


def canonical(spec: dict) -> dict:
    """Return the canonical form of a valid spec (a new dict; the input is not changed).

    Order is kept where it is meaningful (the ordered input-space augmentations, the encoder
    edges) and normalised where it is not: ``crop`` goes first and ``timestamp_masking`` last
    in each view, contrasts are sorted, numbers are floats or ints as their grid defines.

    Raises:
        ValueError: the spec is invalid (see :func:`search_spaces.validate`).
    """
    from .validation import validate

    validate(spec)
    out = _copy_tree(spec)
    for key in ("AugCell1", "AugCell2"):
        entries = [{"name": a["name"], "strength": _float(a["strength"])} for a in out[key]]
        ordered = [a for a in entries if a["name"] in ORDERED_AUGMENTATIONS]
        crop = [a for a in entries if a["name"] == "crop"]
        mask = [a for a in entries if a["name"] == "timestamp_masking"]
        out[key] = crop + ordered + mask
    out["EmbedCell"] = {k: _float(v) if k != "norm" else v for k, v in out["EmbedCell"].items()}
    pair = out["PairCell"]
    pair["contrasts"] = sorted(pair["contrasts"], key=CONTRASTS.index)
    pair["kernel"] = int(pair["kernel"])
    out["LossCell"]["temperature"] = _float(out["LossCell"]["temperature"])
    enc = out["Encoder"]
    enc["cell"] = [[int(src), op] for src, op in enc["cell"]]
    for k in ("steps", "layers", "hidden", "repr_dim"):
        enc[k] = int(enc[k])
    train = out["Train"]
    train["lr"] = _float(train["lr"])
    train["batch_size"] = int(train["batch_size"])
    train["max_train_length"] = int(train["max_train_length"])
    out["version"] = SPEC_VERSION
    return out


def to_json(spec: dict) -> str:
    """Compact, key-sorted JSON of the canonical form (the text the hash is taken of)."""
    return json.dumps(canonical(spec), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: dict) -> str:
    """Stable 16-hex-digit SHA-256 of the canonical spec; equal for semantically equal specs.

    Raises:
        ValueError: the spec is invalid.
    """
    return hashlib.sha256(to_json(spec).encode()).hexdigest()[:16]


def uses_spatial_ops(spec: dict) -> bool:
    """True when the encoder cell holds an op that mixes the N variables."""
    return any(op in SPATIAL_OPS for _, op in spec["Encoder"]["cell"])

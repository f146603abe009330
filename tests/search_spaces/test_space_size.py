"""``space_size``: the exact count, checked by brute force on small monkeypatched grids."""
from __future__ import annotations

import copy
import itertools
import math
import re

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import sample, space_size, spec_hash, validate
from search_spaces import spec as S

HEX16 = re.compile(r"[0-9a-f]{16}")


# -------------------------------------------------------------------------------- space_size


def test_space_size_full():
    full, temporal = space_size(), space_size(spatial=False)
    assert type(full) is int and type(temporal) is int
    assert full > 1e20 and 0 < temporal < full
    assert 2e28 < full < 3e28  # "about 2.4e28" (docstring)

    # Independent count: enumerate ordered-augmentation sequences, encoder wirings.
    ordered = sum(math.prod(len(S.AUG_STRENGTHS[n]) for n in seq)
                  for k in range(len(S.ORDERED_AUGMENTATIONS) + 1)
                  for seq in itertools.permutations(S.ORDERED_AUGMENTATIONS, k))
    unordered = math.prod(len(S.AUG_STRENGTHS[n]) + 1 for n in S.UNORDERED_AUGMENTATIONS)
    view = ordered * unordered

    def wirings(steps):  # choices of the free source of each node >= 2
        return math.prod(range(1, steps))

    def encoder(ops):
        cells = sum(len(ops) ** (2 * s - 1) * wirings(s) for s in S.ENCODER_STEPS)
        return cells * len(S.ENCODER_LAYERS) * len(S.HIDDEN_WIDTHS) * len(S.REPR_DIMS)

    rest = (len(S.EMBED_JITTER) * len(S.EMBED_MASKING) * len(S.EMBED_NORMS)
            * 7 * len(S.POOLINGS) * len(S.POOL_KERNELS) * len(S.LEVEL_WEIGHTINGS)
            * len(S.LOSSES) * len(S.SIMILARITIES) * len(S.TEMPERATURES)
            * len(S.LEARNING_RATES) * len(S.BATCH_SIZES) * len(S.MAX_TRAIN_LENGTHS))
    assert full == view ** 2 * encoder(S.ENCODER_OPS) * rest
    assert temporal == view ** 2 * encoder(S.TEMPORAL_OPS) * rest


# Brute force on small grids. Every grid is monkeypatched on search_spaces.spec (validation,
# canonical and the sampler read them from there at call time); unless overridden a grid holds
# the ts2vec value only and the augmentation grids are empty.
SINGLETONS = dict(
    ORDERED_AUGMENTATIONS=(), UNORDERED_AUGMENTATIONS=(), AUG_STRENGTHS={},
    EMBED_JITTER=(0.0,), EMBED_MASKING=(0.1,), EMBED_NORMS=("none",),
    CONTRASTS=("instance",), POOLINGS=("max",), POOL_KERNELS=(2,), LEVEL_WEIGHTINGS=("uniform",),
    LOSSES=("NT-Xent",), SIMILARITIES=("dot",), TEMPERATURES=(1.0,),
    TEMPORAL_OPS=("ts2vec_conv",), SPATIAL_OPS=(), ENCODER_STEPS=(1,), ENCODER_LAYERS=(10,),
    HIDDEN_WIDTHS=(64,), REPR_DIMS=(320,),
    LEARNING_RATES=(1e-3,), BATCH_SIZES=(8,), MAX_TRAIN_LENGTHS=(3000,),
)


def _shrink(monkeypatch, **grids):
    unknown = set(grids) - set(SINGLETONS)
    assert not unknown, unknown
    values = {**SINGLETONS, **grids}
    for name, value in values.items():
        assert hasattr(S, name), name
        monkeypatch.setattr(S, name, value)
    monkeypatch.setattr(S, "AUGMENTATIONS",
                        values["ORDERED_AUGMENTATIONS"] + values["UNORDERED_AUGMENTATIONS"])
    monkeypatch.setattr(S, "ENCODER_OPS", values["TEMPORAL_OPS"] + values["SPATIAL_OPS"])


def _tiny_base() -> dict:
    steps, op = S.ENCODER_STEPS[0], S.TEMPORAL_OPS[0]
    cell = [[0, op]]
    for i in range(1, steps):
        cell += [[0, op], [i, op]]
    return {
        "version": 1, "AugCell1": [], "AugCell2": [],
        "EmbedCell": {"jitter": S.EMBED_JITTER[0], "masking": S.EMBED_MASKING[0],
                      "norm": S.EMBED_NORMS[0]},
        "PairCell": {"contrasts": [S.CONTRASTS[0]], "pooling": S.POOLINGS[0],
                     "kernel": S.POOL_KERNELS[0], "level_weighting": S.LEVEL_WEIGHTINGS[0]},
        "LossCell": {"loss": S.LOSSES[0], "similarity": S.SIMILARITIES[0],
                     "temperature": S.TEMPERATURES[0]},
        "Encoder": {"steps": steps, "layers": S.ENCODER_LAYERS[0], "cell": cell,
                    "hidden": S.HIDDEN_WIDTHS[0], "repr_dim": S.REPR_DIMS[0]},
        "Train": {"lr": S.LEARNING_RATES[0], "batch_size": S.BATCH_SIZES[0],
                  "max_train_length": S.MAX_TRAIN_LENGTHS[0]},
    }


def _is_valid(spec) -> bool:
    try:
        validate(spec)
    except ValueError:
        return False
    return True


def _spellings(value):
    """A grid value and its other accepted spelling (int for an integral float)."""
    out = [value]
    if isinstance(value, float) and value.is_integer():
        out.append(int(value))
    return out


def _raw_views(names=None) -> list:
    """Every list of distinct augmentation entries over the grid, in every order and spelling,
    plus lists with a repeated name (which must be rejected)."""
    names = S.AUGMENTATIONS if names is None else names
    views = []
    for k in range(len(names) + 1):
        for seq in itertools.permutations(names, k):
            for strengths in itertools.product(
                    *[[s for v in S.AUG_STRENGTHS[n] for s in _spellings(v)] for n in seq]):
                views.append([{"name": n, "strength": s} for n, s in zip(seq, strengths)])
    for n in names:  # duplicates
        views.append([{"name": n, "strength": S.AUG_STRENGTHS[n][0]}] * 2)
    return views


def _raw_contrasts() -> list:
    out = []
    for k in range(len(S.CONTRASTS) + 1):
        out += [list(p) for p in itertools.permutations(S.CONTRASTS, k)]
    out += [[c, c] for c in S.CONTRASTS]
    return out


def _raw_encoder_cells(steps: int) -> list:
    """Every edge list of the right length with sources in 0..steps (invalid wirings
    included) and ops over the whole op grid; sources are screened with a fixed op first."""
    base = _tiny_base()
    out = []
    n_edges = 2 * steps - 1
    for sources in itertools.product(range(steps + 1), repeat=n_edges):
        spec = copy.deepcopy(base)
        spec["Encoder"]["steps"] = steps
        spec["Encoder"]["cell"] = [[s, S.ENCODER_OPS[0]] for s in sources]
        if not _is_valid(spec):
            continue
        for ops in itertools.product(S.ENCODER_OPS, repeat=n_edges):
            out.append([[s, op] for s, op in zip(sources, ops)])
    return out


def _count_distinct(candidates) -> tuple:
    """(number of valid candidates, set of their hashes)."""
    hashes, n_valid = set(), 0
    for spec in candidates:
        try:
            h = spec_hash(spec)
        except ValueError:
            continue
        n_valid += 1
        hashes.add(h)
    return n_valid, hashes


def test_shrunk_grids_are_seen_by_validate_and_space_size(monkeypatch):
    _shrink(monkeypatch)
    assert space_size() == space_size(spatial=False) == 1
    assert validate(_tiny_base())
    with pytest.raises(ValueError, match=r"LossCell.temperature: got 0.5; allowed: \[1.0\]"):
        spec = _tiny_base()
        spec["LossCell"]["temperature"] = 0.5
        validate(spec)


def test_space_size_brute_force_joint_product(monkeypatch):
    """All cells varied together: the count is the product of the per-cell counts."""
    _shrink(monkeypatch,
            ORDERED_AUGMENTATIONS=("resize", "jitter"), UNORDERED_AUGMENTATIONS=("crop",),
            AUG_STRENGTHS={"resize": (0.3,), "jitter": (0.1,), "crop": (0.5,)},
            CONTRASTS=("instance", "temporal"),
            TEMPORAL_OPS=("ts2vec_conv",), SPATIAL_OPS=("diffusion_gcn",), ENCODER_STEPS=(1, 2))
    views = [v for v in _raw_views() if len({a["name"] for a in v}) == len(v)]
    assert len(views) == 16  # 1 + 3 + 6 + 6 sequences of distinct names
    contrasts = [c for c in _raw_contrasts() if c and len(set(c)) == len(c)]
    cells = {s: _raw_encoder_cells(s) for s in S.ENCODER_STEPS}
    encoders = [{"steps": s, "layers": 10, "cell": c, "hidden": 64, "repr_dim": 320}
                for s in S.ENCODER_STEPS for c in cells[s]]
    base = _tiny_base()
    for spatial in (False, True):
        encs = [e for e in encoders
                if spatial or not any(op in S.SPATIAL_OPS for _, op in e["cell"])]
        hashes = set()
        for v1, v2, con, enc in itertools.product(views, views, contrasts, encs):
            spec = dict(base, AugCell1=v1, AugCell2=v2, Encoder=enc,
                        PairCell=dict(base["PairCell"], contrasts=con))
            hashes.add(spec_hash(spec))
        assert len(hashes) == space_size(spatial=spatial), spatial
        # 10 canonical views, 3 contrast sets, 1 + 1 (temporal) or 2 + 8 (all) encoder cells
        assert len(hashes) == 10 * 10 * 3 * (10 if spatial else 2)
        # The sampler draws from the shrunk grids, and only points of the enumerated space.
        rng = np.random.default_rng(0)
        assert all(spec_hash(sample(rng, spatial=spatial)) in hashes for _ in range(100))


def test_space_size_brute_force_augmentation_view(monkeypatch):
    """Both unordered augmentations anywhere in the list, ordered ones in every order, every
    strength in both spellings; duplicates are rejected. space_size = (distinct views)**2."""
    _shrink(monkeypatch,
            ORDERED_AUGMENTATIONS=("resize", "jitter", "rescaling"),
            UNORDERED_AUGMENTATIONS=("crop", "timestamp_masking"),
            AUG_STRENGTHS={"resize": (0.1, 0.2), "jitter": (0.05,), "rescaling": (0.5, 1.0),
                           "crop": (0.5, 1.0), "timestamp_masking": (0.5,)})
    base = _tiny_base()
    views = _raw_views()
    n_valid, h1 = _count_distinct(dict(base, AugCell1=v) for v in views)
    n_dup = len(S.AUGMENTATIONS)
    assert n_valid == len(views) - n_dup  # exactly the lists with a repeated name are invalid
    # Hand count: ordered sequences 1 + (2+1+2) + (2+4+2)*2 + 3!*4 = 46; unordered (1+2)(1+1).
    assert len(h1) == 46 * 6
    assert space_size() == space_size(spatial=False) == len(h1) ** 2
    # The second view counts the same, independently of the first.
    _, h2 = _count_distinct(dict(base, AugCell2=v) for v in views)
    assert len(h2) == len(h1) and h1 & h2 == {spec_hash(base)}  # only the empty-views spec


def test_space_size_brute_force_encoder(monkeypatch):
    _shrink(monkeypatch, TEMPORAL_OPS=("identity", "ts2vec_conv"), SPATIAL_OPS=("diffusion_gcn",),
            ENCODER_STEPS=(1, 2, 3), ENCODER_LAYERS=(2, 10), REPR_DIMS=(64, 320))
    base = _tiny_base()
    specs = []
    for steps in S.ENCODER_STEPS:
        for cell in _raw_encoder_cells(steps):
            for layers, repr_dim in itertools.product(S.ENCODER_LAYERS, S.REPR_DIMS):
                enc = {"steps": steps, "layers": layers, "cell": cell, "hidden": 64,
                       "repr_dim": repr_dim}
                specs.append(dict(base, Encoder=enc))
    _, all_hashes = _count_distinct(specs)
    temporal = [s for s in specs if not ss.uses_spatial_ops(s)]
    _, temporal_hashes = _count_distinct(temporal)
    assert len(all_hashes) == space_size(spatial=True) == (3 + 27 + 243 * 2) * 4
    assert len(temporal_hashes) == space_size(spatial=False) == (2 + 8 + 32 * 2) * 4


def test_space_size_brute_force_contrasts(monkeypatch):
    _shrink(monkeypatch, CONTRASTS=S.CONTRASTS)
    base = _tiny_base()
    raw = _raw_contrasts()
    n_valid, hashes = _count_distinct(
        dict(base, PairCell=dict(base["PairCell"], contrasts=c)) for c in raw)
    assert n_valid == sum(math.perm(3, k) for k in (1, 2, 3))  # empty and duplicated rejected
    assert len(hashes) == space_size() == 7


SCALAR_GRIDS = [
    ("EMBED_JITTER", ("EmbedCell", "jitter")), ("EMBED_MASKING", ("EmbedCell", "masking")),
    ("EMBED_NORMS", ("EmbedCell", "norm")), ("POOLINGS", ("PairCell", "pooling")),
    ("POOL_KERNELS", ("PairCell", "kernel")), ("LEVEL_WEIGHTINGS", ("PairCell", "level_weighting")),
    ("LOSSES", ("LossCell", "loss")), ("SIMILARITIES", ("LossCell", "similarity")),
    ("TEMPERATURES", ("LossCell", "temperature")), ("ENCODER_LAYERS", ("Encoder", "layers")),
    ("HIDDEN_WIDTHS", ("Encoder", "hidden")), ("REPR_DIMS", ("Encoder", "repr_dim")),
    ("LEARNING_RATES", ("Train", "lr")), ("BATCH_SIZES", ("Train", "batch_size")),
    ("MAX_TRAIN_LENGTHS", ("Train", "max_train_length")),
]


@pytest.mark.parametrize("grid_name, path", SCALAR_GRIDS, ids=[g for g, _ in SCALAR_GRIDS])
def test_space_size_brute_force_scalar_grid(monkeypatch, grid_name, path):
    grid = getattr(S, grid_name)
    _shrink(monkeypatch, **{grid_name: grid})
    base = _tiny_base()
    candidates = [s for v in grid for s in _spellings(v)]
    candidates += ["none " if isinstance(grid[0], str) else -1, None, True]  # rejected
    if isinstance(grid[0], int):
        candidates += [float(v) for v in grid]  # rejected on int grids
    specs = []
    for value in candidates:
        spec = copy.deepcopy(base)
        spec[path[0]][path[1]] = value
        specs.append(spec)
    n_valid, hashes = _count_distinct(specs)
    assert n_valid == sum(len(_spellings(v)) for v in grid)
    assert len(hashes) == space_size() == len(grid)

"""``space_size``: the exact count, checked by brute force on small grids of the declared table."""
from __future__ import annotations

import copy
import itertools
import math
import re

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import sample, space, space_size, spec_hash, validate
from search_spaces.space import Aug, Choice

HEX16 = re.compile(r"[0-9a-f]{16}")
FULL, TEMPORAL = 23525197291412089336627200000, 1393425885491598989721600000


def _grid(path: str) -> tuple:
    """The grid of ``"Cell.field"`` in the current (possibly shrunk) table; op names for the
    encoder cell, augmentation names for ``"augs"``."""
    sp = space.SPACE
    if path == "augs":
        return tuple(sp.augs)
    cell, name = path.split(".")
    grid = sp.cells[cell][name].grid
    return tuple(op.name for op in grid) if path == "Encoder.cell" else grid


def _names(place_ordered: bool) -> tuple:
    return tuple(a.name for a in space.SPACE.view.augs if (a.place == "ordered") == place_ordered)


def _strengths(name: str) -> tuple:
    return space.SPACE.augs[name].strengths


# -------------------------------------------------------------------------------- space_size


def test_space_size_full():
    full, temporal = space_size(), space_size(spatial=False)
    assert type(full) is int and type(temporal) is int
    assert full == FULL and temporal == TEMPORAL  # the values before the table was introduced
    assert 2e28 < full < 3e28  # "about 2.4e28" (docstring)

    # Independent count: enumerate ordered-augmentation sequences, encoder wirings.
    ordered = sum(math.prod(len(_strengths(n)) for n in seq)
                  for k in range(len(_names(True)) + 1)
                  for seq in itertools.permutations(_names(True), k))
    unordered = math.prod(len(_strengths(n)) + 1 for n in _names(False))
    view = ordered * unordered

    def wirings(steps):  # choices of the free source of each node >= 2
        return math.prod(range(1, steps))

    def encoder(ops):
        cells = sum(len(ops) ** (2 * s - 1) * wirings(s) for s in _grid("Encoder.steps"))
        sizes = ("layers", "hidden", "repr_dim")
        return cells * math.prod(len(_grid(f"Encoder.{f}")) for f in sizes)

    rest = math.prod(len(_grid(p)) for p in (
        "EmbedCell.jitter", "EmbedCell.masking", "EmbedCell.norm", "PairCell.pooling",
        "PairCell.kernel", "PairCell.level_weighting", "LossCell.loss", "LossCell.similarity",
        "LossCell.temperature", "Train.lr", "Train.batch_size", "Train.max_train_length")) * 7
    assert full == view ** 2 * encoder(_grid("Encoder.cell")) * rest
    assert temporal == view ** 2 * encoder(space.SPACE.op_names(spatial=False)) * rest


# Brute force on small grids. The table ``search_spaces.space.SPACE`` is replaced by a shrunk
# copy (validation, canonical, the sampler and space_size read it at call time); unless
# overridden a grid holds the ts2vec value only, the op grid ts2vec_conv only and there are no
# augmentations.
def _singletons() -> dict:
    ts2vec = ss.preset("ts2vec")
    grids = {f"{key}.{name}": (ts2vec[key][name],)
             for key, cell in space.SPACE.cells.items() if isinstance(cell, dict)
             for name, f in cell.items() if isinstance(f, Choice)}
    return {**grids, "PairCell.contrasts": ("instance",), "Encoder.cell": _ops("ts2vec_conv")}


def _ops(*names) -> tuple:
    return tuple(space.OPS[[op.name for op in space.OPS].index(n)] for n in names)


def _augs(strengths: dict) -> tuple:
    """Table rows (same place as in the full table) with the given strength grids."""
    return tuple(Aug(a.name, tuple(strengths[a.name]), a.place)
                 for a in space.AUGS if a.name in strengths)


def _shrink(monkeypatch, grids: dict | None = None, augs: dict | None = None) -> None:
    grids = {**_singletons(), **(grids or {})}
    for path in grids:
        cell, name = path.split(".")
        assert name in space.SPACE.cells[cell], path
    monkeypatch.setattr(space, "SPACE", space.SPACE.replace(grids, _augs(augs or {})))


def _tiny_base() -> dict:
    steps, op = _grid("Encoder.steps")[0], space.SPACE.op_names(spatial=False)[0]
    cell = [[0, op]]
    for i in range(1, steps):
        cell += [[0, op], [i, op]]
    base = {"version": 1, "AugCell1": [], "AugCell2": []}
    for key, fields in space.SPACE.cells.items():
        if isinstance(fields, dict):
            base[key] = {name: _grid(f"{key}.{name}")[0] for name in fields}
    base["PairCell"]["contrasts"] = [base["PairCell"]["contrasts"]]
    base["Encoder"]["cell"] = cell
    return base


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
    names = _grid("augs") if names is None else names
    views = []
    for k in range(len(names) + 1):
        for seq in itertools.permutations(names, k):
            for strengths in itertools.product(
                    *[[s for v in _strengths(n) for s in _spellings(v)] for n in seq]):
                views.append([{"name": n, "strength": s} for n, s in zip(seq, strengths)])
    for n in names:  # duplicates
        views.append([{"name": n, "strength": _strengths(n)[0]}] * 2)
    return views


def _raw_contrasts() -> list:
    out, grid = [], _grid("PairCell.contrasts")
    for k in range(len(grid) + 1):
        out += [list(p) for p in itertools.permutations(grid, k)]
    out += [[c, c] for c in grid]
    return out


def _raw_encoder_cells(steps: int) -> list:
    """Every edge list of the right length with sources in 0..steps (invalid wirings
    included) and ops over the whole op grid; sources are screened with a fixed op first."""
    base, ops = _tiny_base(), _grid("Encoder.cell")
    out = []
    n_edges = 2 * steps - 1
    for sources in itertools.product(range(steps + 1), repeat=n_edges):
        spec = copy.deepcopy(base)
        spec["Encoder"]["steps"] = steps
        spec["Encoder"]["cell"] = [[s, ops[0]] for s in sources]
        if not _is_valid(spec):
            continue
        for chosen in itertools.product(ops, repeat=n_edges):
            out.append([[s, op] for s, op in zip(sources, chosen)])
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
    _shrink(monkeypatch, {"PairCell.contrasts": ("instance", "temporal"),
                          "Encoder.cell": _ops("ts2vec_conv", "diffusion_gcn"),
                          "Encoder.steps": (1, 2)},
            augs={"resize": (0.3,), "jitter": (0.1,), "crop": (0.5,)})
    views = [v for v in _raw_views() if len({a["name"] for a in v}) == len(v)]
    assert len(views) == 16  # 1 + 3 + 6 + 6 sequences of distinct names
    contrasts = [c for c in _raw_contrasts() if c and len(set(c)) == len(c)]
    cells = {s: _raw_encoder_cells(s) for s in _grid("Encoder.steps")}
    encoders = [{"steps": s, "layers": 10, "cell": c, "hidden": 64, "repr_dim": 320}
                for s in _grid("Encoder.steps") for c in cells[s]]
    base = _tiny_base()
    for spatial in (False, True):
        encs = [e for e in encoders
                if spatial or not any(op in space.SPACE.spatial_ops for _, op in e["cell"])]
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
    _shrink(monkeypatch, augs={"resize": (0.1, 0.2), "jitter": (0.05,), "rescaling": (0.5, 1.0),
                               "crop": (0.5, 1.0), "timestamp_masking": (0.5,)})
    assert _names(True) == ("resize", "jitter", "rescaling")
    assert _names(False) == ("crop", "timestamp_masking")
    base = _tiny_base()
    views = _raw_views()
    n_valid, h1 = _count_distinct(dict(base, AugCell1=v) for v in views)
    n_dup = len(_grid("augs"))
    assert n_valid == len(views) - n_dup  # exactly the lists with a repeated name are invalid
    # Hand count: ordered sequences 1 + (2+1+2) + (2+4+2)*2 + 3!*4 = 46; unordered (1+2)(1+1).
    assert len(h1) == 46 * 6
    assert space_size() == space_size(spatial=False) == len(h1) ** 2
    # The second view counts the same, independently of the first.
    _, h2 = _count_distinct(dict(base, AugCell2=v) for v in views)
    assert len(h2) == len(h1) and h1 & h2 == {spec_hash(base)}  # only the empty-views spec


def test_space_size_brute_force_encoder(monkeypatch):
    _shrink(monkeypatch, {"Encoder.cell": _ops("identity", "ts2vec_conv", "diffusion_gcn"),
                          "Encoder.steps": (1, 2, 3), "Encoder.layers": (2, 10),
                          "Encoder.repr_dim": (64, 320)})
    base = _tiny_base()
    specs = []
    for steps in _grid("Encoder.steps"):
        for cell in _raw_encoder_cells(steps):
            for layers, repr_dim in itertools.product(_grid("Encoder.layers"),
                                                      _grid("Encoder.repr_dim")):
                enc = {"steps": steps, "layers": layers, "cell": cell, "hidden": 64,
                       "repr_dim": repr_dim}
                specs.append(dict(base, Encoder=enc))
    _, all_hashes = _count_distinct(specs)
    temporal = [s for s in specs if not ss.uses_spatial_ops(s)]
    _, temporal_hashes = _count_distinct(temporal)
    assert len(all_hashes) == space_size(spatial=True) == (3 + 27 + 243 * 2) * 4
    assert len(temporal_hashes) == space_size(spatial=False) == (2 + 8 + 32 * 2) * 4


def test_space_size_brute_force_contrasts(monkeypatch):
    _shrink(monkeypatch, {"PairCell.contrasts": space.SPACE.cells["PairCell"]["contrasts"].grid})
    base = _tiny_base()
    raw = _raw_contrasts()
    n_valid, hashes = _count_distinct(
        dict(base, PairCell=dict(base["PairCell"], contrasts=c)) for c in raw)
    assert n_valid == sum(math.perm(3, k) for k in (1, 2, 3))  # empty and duplicated rejected
    assert len(hashes) == space_size() == 7


SCALAR_GRIDS = [f"{key}.{name}" for key, cell in space.SPACE.cells.items()
                if isinstance(cell, dict) for name, f in cell.items()
                if isinstance(f, Choice) and name != "steps"]


def test_every_scalar_field_is_brute_forced():
    assert len(SCALAR_GRIDS) == 15 and "LossCell.temperature" in SCALAR_GRIDS


@pytest.mark.parametrize("path", SCALAR_GRIDS)
def test_space_size_brute_force_scalar_grid(monkeypatch, path):
    grid = _grid(path)
    _shrink(monkeypatch, {path: grid})
    key, name = path.split(".")
    base = _tiny_base()
    candidates = [s for v in grid for s in _spellings(v)]
    candidates += ["none " if isinstance(grid[0], str) else -1, None, True]  # rejected
    if isinstance(grid[0], int):
        candidates += [float(v) for v in grid]  # rejected on int grids
    specs = []
    for value in candidates:
        spec = copy.deepcopy(base)
        spec[key][name] = value
        specs.append(spec)
    n_valid, hashes = _count_distinct(specs)
    assert n_valid == sum(len(_spellings(v)) for v in grid)
    assert len(hashes) == space_size() == len(grid)

"""Random sampling, mutation and size of the joint search space (dict-based, deterministic),
all derived from :data:`search_spaces.space.SPACE`."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from . import space as _space
from .space import Choice, Edges, Subset, View, edge_sources
from .spec import _canonical, _digest, _dumps, canonical
from .validation import validate


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng: got {rng!r}; allowed: a numpy Generator or an int seed")


def _pick(rng: np.random.Generator, grid):
    value = grid[int(rng.integers(len(grid)))]
    return value.item() if hasattr(value, "item") else value


def _sample_view(rng: np.random.Generator, view: View) -> list:
    """Up to ``max_sampled_ordered`` ordered augmentations in random order, then each
    unordered one with probability 1/2."""
    ordered = [a for a in view.augs if a.place == "ordered"]
    k = int(rng.integers(view.max_sampled_ordered + 1))
    picked = [ordered[i] for i in rng.permutation(len(ordered))[:k]]
    cell = [{"name": a.name, "strength": _pick(rng, a.strengths)} for a in picked]
    for aug in view.augs:
        if aug.place != "ordered" and rng.random() < 0.5:
            cell.append({"name": aug.name, "strength": _pick(rng, aug.strengths)})
    return cell


def _sample_source(rng: np.random.Generator, k: int) -> int:
    _, allowed, free = edge_sources(k)
    return allowed[int(rng.integers(len(allowed)))] if free else allowed[0]


def _sample_edges(rng: np.random.Generator, steps: int, ops: tuple) -> list:
    return [[_sample_source(rng, k), _pick(rng, ops)] for k in range(2 * steps - 1)]


def _sample_subset(rng: np.random.Generator, grid: tuple) -> list:
    mask = 0
    while mask == 0:
        mask = int(rng.integers(1 << len(grid)))
    return [c for i, c in enumerate(grid) if mask >> i & 1]


def _sample_cell(rng: np.random.Generator, cell, spatial: bool):
    """Fields drawn in key order (the ``steps`` field before the edges that need it)."""
    if isinstance(cell, View):
        return _sample_view(rng, cell)
    out = {}
    for name, f in cell.items():
        if isinstance(f, Choice):
            out[name] = _pick(rng, f.grid)
        elif isinstance(f, Subset):
            out[name] = _sample_subset(rng, f.grid)
        else:
            out[name] = _sample_edges(rng, out[f.steps], _space.SPACE.op_names(spatial))
    return out


def sample(rng, spatial: bool = True) -> dict:
    """Draw one valid spec; the same seed (or Generator state) always gives the same spec.

    Args:
        rng: a ``numpy.random.Generator`` (advanced in place) or an int seed.
        spatial: allow the spatial encoder ops (for correlated multi-variable data).

    Raises:
        ValueError: ``rng`` is neither a Generator nor an int.
    """
    rng = _rng(rng)
    space = _space.SPACE
    out = {"version": space.version}
    for key, cell in space.cells.items():
        out[key] = _sample_cell(rng, cell, spatial)
    return validate(out)


def _edges_field(cell) -> str | None:
    if isinstance(cell, dict):
        return next((name for name, f in cell.items() if isinstance(f, Edges)), None)
    return None


def mutate(spec: dict, rng, spatial: bool = True) -> dict:
    """Return a copy of ``spec`` with one cell resampled so the canonical spec changes.

    A uniformly chosen cell is redrawn (the encoder keeps its ``steps`` with probability 1/2
    and then only one edge's op or source changes), retried until the hash differs. ``spec``
    is validated once; the draws are valid by construction.

    Raises:
        ValueError: ``spec`` is invalid or ``rng`` is not a Generator / int seed.
    """
    rng = _rng(rng)
    base = canonical(spec)
    space = _space.SPACE
    before = _digest(_dumps(base))
    for _ in range(100):
        out = _canonical(base)  # a deep copy with list edges and plain numbers
        key = space.cell_keys[int(rng.integers(len(space.cell_keys)))]
        edges = _edges_field(space.cells[key])
        if edges and rng.random() < 0.5:
            _mutate_edge(out[key][edges], rng, spatial)
        else:
            out[key] = _sample_cell(rng, space.cells[key], spatial)
        if _digest(_dumps(_canonical(out))) != before:
            return out
    raise ValueError("mutate: no different spec found in 100 draws")  # unreachable in practice


def _mutate_edge(cell: list, rng: np.random.Generator, spatial: bool) -> None:
    """A free edge (AutoCTS++ op_a input) changes its source with probability 1/2, else an
    edge changes its op."""
    k = int(rng.integers(len(cell)))
    if edge_sources(k)[2] and rng.random() < 0.5:
        cell[k][0] = _sample_source(rng, k)
    else:
        cell[k][1] = _pick(rng, _space.SPACE.op_names(spatial))


def _view_count(view: View) -> int:
    """Distinct canonical views (order kept for ordered augmentations, none for the others)."""
    ordered = [a for a in view.augs if a.place == "ordered"]
    count = 0
    for k in range(len(ordered) + 1):
        for subset in combinations(ordered, k):
            count += math.factorial(k) * math.prod(len(a.strengths) for a in subset)
    return count * math.prod(1 + len(a.strengths) for a in view.augs if a.place != "ordered")


def _wirings(steps: int) -> int:
    """Source choices of a cell of ``steps`` nodes ((steps-1)! under the AutoCTS++ rule)."""
    return math.prod(len(edge_sources(k)[1]) for k in range(2 * steps - 1))


def _cell_count(cell, spatial: bool) -> int:
    if isinstance(cell, View):
        return _view_count(cell)
    edges = _edges_field(cell)
    n_ops = len(_space.SPACE.op_names(spatial))
    count = 1
    for name, f in cell.items():
        if isinstance(f, Subset):
            count *= (1 << len(f.grid)) - 1
        elif isinstance(f, Edges):
            count *= sum(n_ops ** (2 * s - 1) * _wirings(s) for s in cell[f.steps].grid)
        elif not (edges and name == cell[edges].steps):  # steps counted with the edges
            count *= len(f.grid)
    return count


def space_size(spatial: bool = True) -> int:
    """Exact number of distinct canonical specs (an int; about 2.4e28 with spatial ops).

    Counts the full space (including the ordered-augmentation lists longer than the sampler
    draws); semantically equal specs (same canonical form) are counted once.
    """
    return math.prod(_cell_count(cell, spatial) for cell in _space.SPACE.cells.values())

"""Validation of architecture specs against :data:`search_spaces.space.SPACE`: every error names
the path, the bad value and what is allowed."""
from __future__ import annotations

import numbers
from functools import lru_cache

from . import space as _space
from .space import Choice, Edges, Subset, View, edge_sources


def _show(value) -> str:
    """repr of a bad value, shortened; safe for ints too large for repr (over 4300 digits)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 200 else text[:200] + "..."


def _fail(path: str, value, allowed) -> None:
    raise ValueError(f"{path}: got {_show(value)}; allowed: {allowed}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_dict(path: str, value, keys: tuple) -> None:
    if not isinstance(value, dict):
        _fail(path, value, f"a dict with keys {list(keys)}")
    if len(value) == len(keys) and all(k in value for k in keys):
        return  # exactly the keys (the common case, checked without building sets)
    unknown = sorted(set(map(str, value)) - set(keys))
    if unknown:
        _fail(f"{path}.{unknown[0]}", "unknown key", f"keys {list(keys)}")
    for key in keys:
        if key not in value:
            _fail(f"{path}.{key}", "missing", f"a value for every key of {list(keys)}")


def _check_in(path: str, value, grid: tuple) -> None:
    kind, grid_kind = type(value), type(grid[0])
    if kind is str or kind is int or kind is float:  # fast path for plain JSON values
        ok = (kind is grid_kind or (kind is int and grid_kind is float)) and value in grid
    elif isinstance(grid[0], str):
        ok = isinstance(value, str) and value in grid
    elif isinstance(grid[0], int):
        ok = _is_int(value) and value in grid
    else:
        ok = _is_number(value) and value in grid
    if not ok:
        _fail(path, value, list(grid))


def _check_view(path: str, cell, view: View) -> None:
    if not isinstance(cell, list):
        _fail(path, cell, "a list of {'name', 'strength'} dicts (may be empty)")
    augs = view.by_name
    names, seen = tuple(augs), set()
    for i, entry in enumerate(cell):
        where = f"{path}[{i}]"
        _check_dict(where, entry, ("name", "strength"))
        _check_in(f"{where}.name", entry["name"], names)
        if entry["name"] in seen:
            _fail(f"{where}.name", entry["name"], "each augmentation at most once per view")
        seen.add(entry["name"])
        _check_in(f"{where}.strength", entry["strength"], augs[entry["name"]].strengths)


def _check_subset(path: str, value, f: Subset) -> None:
    if not isinstance(value, list) or not value:
        _fail(path, value, f"a non-empty list drawn from {list(f.grid)}")
    for i, name in enumerate(value):
        _check_in(f"{path}[{i}]", name, f.grid)
    if len(set(value)) != len(value):
        _fail(path, value, f"each {f.noun} at most once")


def _check_edges(path: str, steps: int, cell, f: Edges) -> None:
    n_edges = 2 * steps - 1
    if not isinstance(cell, list) or len(cell) != n_edges:
        _fail(path, cell, f"a list of {n_edges} [source, op] pairs (2*steps-1, steps={steps})")
    ops = tuple(op.name for op in f.grid)
    for k, edge in enumerate(cell):
        where = f"{path}[{k}]"
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            _fail(where, edge, "a [source, op] pair")
        source, op = edge
        node, allowed, _ = edge_sources(k)
        allowed = list(allowed)
        if not _is_int(source):
            _fail(f"{where}[0]", source, f"an int node index in {allowed}")
        if source not in allowed:
            if source < 0 or source > steps:
                kind = "dangling edge: no such node"
            elif source >= node:
                kind = "cyclic edge: a node may read only earlier nodes"
            else:
                kind = "edge not in the AutoCTS++ wiring"
            _fail(f"{where}[0]", source, f"{allowed} ({kind}; edge feeds node {node})")
        _check_in(f"{where}[1]", op, ops)


def _check_fields(path: str, cell, plan: tuple) -> None:
    """The fields in key order; an :class:`Edges` field after the others (it needs ``steps``)."""
    keys, scalars, edges = plan
    _check_dict(path, cell, keys)
    for name, where, f in scalars:
        if isinstance(f, Choice):
            _check_in(where, cell[name], f.grid)
        else:
            _check_subset(where, cell[name], f)
    for name, where, f in edges:
        _check_edges(where, cell[f.steps], cell[name], f)


@lru_cache(maxsize=8)
def _plan(space) -> tuple:
    """Per cell: ``(key, View, None)`` or ``(key, None, (keys, scalar fields, edges fields))``,
    fields as ``(name, path, field)``; cached per table (the paths are built once)."""
    out = []
    for key, cell in space.cells.items():
        if isinstance(cell, View):
            out.append((key, cell, None))
            continue
        fields = [(name, f"{key}.{name}", f) for name, f in cell.items()]
        out.append((key, None, (tuple(cell), [x for x in fields if not isinstance(x[2], Edges)],
                                [x for x in fields if isinstance(x[2], Edges)])))
    return tuple(out)


def validate(spec) -> dict:
    """Check a spec against the search space (:data:`search_spaces.space.SPACE`) and return it
    unchanged.

    Raises:
        ValueError: the first problem found, as ``"<path>: got <value>; allowed: <allowed>"``
            with a path such as ``LossCell.temperature`` or ``Encoder.cell[3][0]``; unknown
            keys, missing keys, wrong types, values off their grid, duplicate augmentations
            or contrasts, and cyclic or dangling encoder edges are all rejected.
    """
    space = _space.SPACE
    _check_dict("spec", spec, space.top_keys)
    _check_in("version", spec["version"], (space.version,))
    for key, view, plan in _plan(space):
        if view is not None:
            _check_view(key, spec[key], view)
        else:
            _check_fields(key, spec[key], plan)
    return spec

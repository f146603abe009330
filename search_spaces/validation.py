"""Validation of architecture specs: every error names the path, the bad value and what is allowed."""
from __future__ import annotations

import numbers

from . import spec as S


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


def _check_aug_cell(path: str, cell) -> None:
    if not isinstance(cell, list):
        _fail(path, cell, "a list of {'name', 'strength'} dicts (may be empty)")
    seen = set()
    for i, entry in enumerate(cell):
        where = f"{path}[{i}]"
        _check_dict(where, entry, ("name", "strength"))
        _check_in(f"{where}.name", entry["name"], S.AUGMENTATIONS)
        if entry["name"] in seen:
            _fail(f"{where}.name", entry["name"], "each augmentation at most once per view")
        seen.add(entry["name"])
        _check_in(f"{where}.strength", entry["strength"], S.AUG_STRENGTHS[entry["name"]])


def _check_embed(cell) -> None:
    _check_dict("EmbedCell", cell, ("jitter", "masking", "norm"))
    _check_in("EmbedCell.jitter", cell["jitter"], S.EMBED_JITTER)
    _check_in("EmbedCell.masking", cell["masking"], S.EMBED_MASKING)
    _check_in("EmbedCell.norm", cell["norm"], S.EMBED_NORMS)


def _check_pair(cell) -> None:
    _check_dict("PairCell", cell, ("contrasts", "pooling", "kernel", "level_weighting"))
    contrasts = cell["contrasts"]
    if not isinstance(contrasts, list) or not contrasts:
        _fail("PairCell.contrasts", contrasts, f"a non-empty list drawn from {list(S.CONTRASTS)}")
    for i, name in enumerate(contrasts):
        _check_in(f"PairCell.contrasts[{i}]", name, S.CONTRASTS)
    if len(set(contrasts)) != len(contrasts):
        _fail("PairCell.contrasts", contrasts, "each contrast at most once")
    _check_in("PairCell.pooling", cell["pooling"], S.POOLINGS)
    _check_in("PairCell.kernel", cell["kernel"], S.POOL_KERNELS)
    _check_in("PairCell.level_weighting", cell["level_weighting"], S.LEVEL_WEIGHTINGS)


def _check_loss(cell) -> None:
    _check_dict("LossCell", cell, ("loss", "similarity", "temperature"))
    _check_in("LossCell.loss", cell["loss"], S.LOSSES)
    _check_in("LossCell.similarity", cell["similarity"], S.SIMILARITIES)
    _check_in("LossCell.temperature", cell["temperature"], S.TEMPERATURES)


def _check_edges(steps: int, cell) -> None:
    n_edges = 2 * steps - 1
    if not isinstance(cell, list) or len(cell) != n_edges:
        _fail("Encoder.cell", cell, f"a list of {n_edges} [source, op] pairs (2*steps-1, steps={steps})")
    for k, edge in enumerate(cell):
        where = f"Encoder.cell[{k}]"
        if not isinstance(edge, (list, tuple)) or len(edge) != 2:
            _fail(where, edge, "a [source, op] pair")
        source, op = edge
        node = (k + 1) // 2 + 1  # the node this edge feeds: edge 0 -> node 1, 2i-1 and 2i -> i+1
        if k == 0 or k % 2 == 0:
            allowed = [node - 1]  # node 1 reads state 0; the second input of node i+1 is state i
        else:
            allowed = list(range(node - 1))  # op_a(state j), j < i
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
        _check_in(f"{where}[1]", op, S.ENCODER_OPS)


def _check_encoder(cell) -> None:
    _check_dict("Encoder", cell, ("steps", "layers", "cell", "hidden", "repr_dim"))
    _check_in("Encoder.steps", cell["steps"], S.ENCODER_STEPS)
    _check_in("Encoder.layers", cell["layers"], S.ENCODER_LAYERS)
    _check_in("Encoder.hidden", cell["hidden"], S.HIDDEN_WIDTHS)
    _check_in("Encoder.repr_dim", cell["repr_dim"], S.REPR_DIMS)
    _check_edges(cell["steps"], cell["cell"])


def _check_train(cell) -> None:
    _check_dict("Train", cell, ("lr", "batch_size", "max_train_length"))
    _check_in("Train.lr", cell["lr"], S.LEARNING_RATES)
    _check_in("Train.batch_size", cell["batch_size"], S.BATCH_SIZES)
    _check_in("Train.max_train_length", cell["max_train_length"], S.MAX_TRAIN_LENGTHS)


def validate(spec) -> dict:
    """Check a spec against the search space and return it unchanged.

    Raises:
        ValueError: the first problem found, as ``"<path>: got <value>; allowed: <allowed>"``
            with a path such as ``LossCell.temperature`` or ``Encoder.cell[3][0]``; unknown
            keys, missing keys, wrong types, values off their grid, duplicate augmentations
            or contrasts, and cyclic or dangling encoder edges are all rejected.
    """
    _check_dict("spec", spec, S.TOP_KEYS)
    _check_in("version", spec["version"], (S.SPEC_VERSION,))
    _check_aug_cell("AugCell1", spec["AugCell1"])
    _check_aug_cell("AugCell2", spec["AugCell2"])
    _check_embed(spec["EmbedCell"])
    _check_pair(spec["PairCell"])
    _check_loss(spec["LossCell"])
    _check_encoder(spec["Encoder"])
    _check_train(spec["Train"])
    return spec

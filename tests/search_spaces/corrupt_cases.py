"""Generator of corrupted specs for test_corrupt_specs.py (deterministic, by category)."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import numpy as np

from search_spaces import preset, sample, space
from search_spaces import spec as S
from search_spaces.space import Choice

SEED = 20240917
N_SAMPLED_BASES = 10

CATEGORIES = (
    "wrong_type_leaf", "wrong_type_cell", "missing_key_top", "missing_key_cell",
    "missing_key_aug_entry", "extra_key_top", "extra_key_cell", "extra_key_aug_entry",
    "out_of_grid", "duplicate_augmentation", "duplicate_contrast", "empty_contrasts",
    "wrong_cell_length", "cyclic_edge", "dangling_edge", "wrong_wiring", "edge_not_pair",
    "non_dict_top", "wrong_version",
)

NAN = float("nan")
# (label, value): none of these is valid anywhere in a spec. An empty list is a valid
# augmentation view, so it is only used where a list is not allowed (see _wrong_types).
WRONG_TYPES = (
    ("None", None), ("str", "bogus"), ("empty_str", ""), ("list", [1, 2]), ("empty_list", []),
    ("dict", {"a": 1}), ("empty_dict", {}), ("bool_true", True), ("bool_false", False),
    ("nan", NAN), ("inf", float("inf")), ("huge_int", 10 ** 30), ("huge_int_2**64", 2 ** 64),
    ("negative_int", -1), ("negative_float", -0.5), ("tuple", (1,)),
)


@dataclass
class Case:
    category: str
    desc: str
    spec: object
    path: str | None = None      # the message must start with "<path>: got "
    cell: str | None = None      # the top-level cell name the message must contain
    value: object = None         # when check_value, repr(value) must be in the message
    check_value: bool = False
    also: str | None = None      # another required substring (e.g. "cyclic")
    exact: bool = True           # False: the message path only starts with ``path``


def _path_str(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _get(spec, path):
    for key in path:
        spec = spec[key]
    return spec


def _set(spec, path, value):
    _get(spec, path[:-1])[path[-1]] = value


def _delete(spec, path):
    del _get(spec, path[:-1])[path[-1]]


def _grid_of(spec, path):
    """The grid of a scalar leaf (None for the version and edge sources), from the table."""
    cell = space.SPACE.cells.get(path[0])
    if isinstance(cell, dict) and len(path) == 2 and isinstance(cell.get(path[1]), Choice):
        return cell[path[1]].grid
    if path[0] in ("AugCell1", "AugCell2"):
        if path[2] == "name":
            return S.AUGMENTATIONS
        return S.AUG_STRENGTHS[_get(spec, path[:2])["name"]]
    if path[:2] == ("PairCell", "contrasts"):
        return S.CONTRASTS
    if path[:2] == ("Encoder", "cell") and path[3] == 1:
        return S.ENCODER_OPS
    return None


def leaf_paths(spec) -> list:
    """Every scalar leaf of a spec, as a key path."""
    out = [("version",)]
    for view in ("AugCell1", "AugCell2"):
        for i in range(len(spec[view])):
            out += [(view, i, "name"), (view, i, "strength")]
    out += [("EmbedCell", k) for k in ("jitter", "masking", "norm")]
    out += [("PairCell", "contrasts", i) for i in range(len(spec["PairCell"]["contrasts"]))]
    out += [("PairCell", k) for k in ("pooling", "kernel", "level_weighting")]
    out += [("LossCell", k) for k in ("loss", "similarity", "temperature")]
    out += [("Encoder", k) for k in ("steps", "layers", "hidden", "repr_dim")]
    for k in range(len(spec["Encoder"]["cell"])):
        out += [("Encoder", "cell", k, 0), ("Encoder", "cell", k, 1)]
    out += [("Train", k) for k in ("lr", "batch_size", "max_train_length")]
    return out


def container_paths(spec) -> list:
    """Every non-scalar node below the top level: cells, aug entries, contrasts, edges."""
    out = [(c,) for c in S.CELL_KEYS]
    for view in ("AugCell1", "AugCell2"):
        out += [(view, i) for i in range(len(spec[view]))]
    out += [("PairCell", "contrasts"), ("Encoder", "cell")]
    return out


def _wrong_types(path):
    for label, value in WRONG_TYPES:
        if label == "empty_list" and path in (("AugCell1",), ("AugCell2",)):
            continue  # a view may be empty
        if label == "tuple" and len(path) == 3 and path[:2] == ("Encoder", "cell"):
            continue  # edges may be tuples (pairs); (1,) is still tested in edge_not_pair
        yield label, value


def _off_grid(rng, grid, n: int) -> list:
    """Values of the grid's own type that are not in the grid."""
    if isinstance(grid[0], str):
        cands = [g.upper() for g in grid] + [g + " " for g in grid] + [g[:-1] for g in grid]
        cands += [g.replace("_", "-") for g in grid if "_" in g] + ["unknown", "max_pool", "l1",
                                                                   "gelu", "mixup", "NTXent"]
    elif isinstance(grid[0], int) and not isinstance(grid[0], bool):
        cands = [g + 1 for g in grid] + [g - 1 for g in grid] + [0, max(grid) * 2, 10 ** 6]
    else:
        lo, hi = min(grid), max(grid)
        cands = [g * 1.5 for g in grid] + [g + 1e-9 for g in grid] + [hi * 2, lo / 3, 0.3, 0.15,
                                                                       0.25, 0.7, 2.0, 1e-5]
        cands += [(a + b) / 2 for a, b in zip(sorted(grid), sorted(grid)[1:])]
        cands += [v for vals in S.AUG_STRENGTHS.values() for v in vals]  # other grids' values
    cands = [c for c in dict.fromkeys(cands) if c not in grid and c != ""]
    idx = rng.permutation(len(cands))[:n]
    return [cands[i] for i in idx]


def _extra_key_names(rng, n: int) -> list:
    names = ["extra", "bogus_key", "Version", "AugCell3", "encoder", "steps ", "temperature2",
             "", "__proto__", 0, 7]
    idx = rng.permutation(len(names))[:n]
    return [names[i] for i in idx]


def build_cases() -> tuple[list, list]:
    rng = np.random.default_rng(SEED)
    bases = [("ts2vec", preset("ts2vec"))]
    # One sampled base per encoder depth (so every wiring rule is exercised), then more.
    wanted = list(S.ENCODER_STEPS)
    while wanted:
        spec = sample(rng, spatial=bool(rng.integers(2)))
        if spec["Encoder"]["steps"] in wanted:
            wanted.remove(spec["Encoder"]["steps"])
            bases.append((f"sample#{len(bases)}", spec))
    while len(bases) < 1 + N_SAMPLED_BASES:
        bases.append((f"sample#{len(bases)}", sample(rng)))
    snapshots = [copy.deepcopy(b) for _, b in bases]

    cases: list[Case] = []

    def add(category, name, desc, spec, path=None, cell=None, value=None, check_value=False,
            also=None, exact=True):
        assert category in CATEGORIES, category
        cases.append(Case(category, f"[{category}] {name}: {desc}", spec, path, cell, value,
                          check_value, also, exact))

    for bi, (name, base) in enumerate(bases):
        exhaustive = bi < 3  # the preset and two samples: every leaf x every wrong type

        # --- wrong types at every leaf and every container
        for path in leaf_paths(base):
            types = list(_wrong_types(path))
            if not exhaustive:
                types = [types[i] for i in sorted(rng.permutation(len(types))[:5])]
            for label, value in types:
                spec = copy.deepcopy(base)
                _set(spec, path, value)
                p = _path_str(path)
                add("wrong_type_leaf", name, f"{p} = {label}", spec, path=p, cell=path[0],
                    value=value, check_value=True)
        for path in container_paths(base):
            for label, value in _wrong_types(path):
                spec = copy.deepcopy(base)
                _set(spec, path, value)
                p = _path_str(path)
                category = "wrong_type_cell"
                if path == ("PairCell", "contrasts") and label == "empty_list":
                    category = "empty_contrasts"
                if path == ("Encoder", "cell") and label in ("empty_list", "list"):
                    category = "wrong_cell_length"
                is_list_node = path in (("AugCell1",), ("AugCell2",), ("PairCell", "contrasts"),
                                        ("Encoder", "cell"))
                descends = (isinstance(value, list) and bool(value) and path != ("Encoder", "cell")
                            if is_list_node else isinstance(value, dict))
                if descends:
                    # A container of the right kind is entered: a dict reports its first unknown
                    # or missing key, a list its first bad item, below this path
                    # (e.g. "EmbedCell.a", "EmbedCell.jitter", "AugCell1[0]").
                    add(category, name, f"{p} = {label}", spec, path=p, exact=False,
                        cell=path[0])
                else:
                    add(category, name, f"{p} = {label}", spec, path=p, cell=path[0],
                        value=value, check_value=True)

        # --- missing keys
        for key in S.TOP_KEYS:
            spec = copy.deepcopy(base)
            del spec[key]
            add("missing_key_top", name, f"del spec[{key!r}]", spec, path=f"spec.{key}",
                cell=key, also="missing")
        for cell in S.CELL_KEYS[2:]:
            for key in list(base[cell]):
                spec = copy.deepcopy(base)
                del spec[cell][key]
                add("missing_key_cell", name, f"del {cell}[{key!r}]", spec,
                    path=f"{cell}.{key}", cell=cell, also="missing")
        for view in ("AugCell1", "AugCell2"):
            for i in range(len(base[view])):
                for key in ("name", "strength"):
                    spec = copy.deepcopy(base)
                    del spec[view][i][key]
                    add("missing_key_aug_entry", name, f"del {view}[{i}][{key!r}]", spec,
                        path=f"{view}[{i}].{key}", cell=view, also="missing")
                spec = copy.deepcopy(base)
                spec[view][i] = {}
                add("missing_key_aug_entry", name, f"{view}[{i}] = {{}}", spec,
                    path=f"{view}[{i}].name", cell=view, also="missing")

        # --- unknown extra keys at every level
        for key in _extra_key_names(rng, 4 if not exhaustive else 11):
            spec = copy.deepcopy(base)
            spec[key] = 1
            add("extra_key_top", name, f"spec[{key!r}] = 1", spec, path=f"spec.{key}",
                cell="spec", also="unknown key")
        for cell in S.CELL_KEYS[2:]:
            for key in _extra_key_names(rng, 3):
                spec = copy.deepcopy(base)
                spec[cell][key] = 0.1
                add("extra_key_cell", name, f"{cell}[{key!r}] = 0.1", spec,
                    path=f"{cell}.{key}", cell=cell, also="unknown key")
        for view in ("AugCell1", "AugCell2"):
            for i in range(len(base[view])):
                for key in ["prob"] + _extra_key_names(rng, 1):
                    spec = copy.deepcopy(base)
                    spec[view][i][key] = 0.5
                    add("extra_key_aug_entry", name, f"{view}[{i}][{key!r}] = 0.5", spec,
                        path=f"{view}[{i}].{key}", cell=view, also="unknown key")

        # --- values of the right type off their grid, for every grid field
        for path in leaf_paths(base):
            grid = _grid_of(base, path)
            if grid is None:
                continue
            for value in _off_grid(rng, grid, 4 if exhaustive else 2):
                spec = copy.deepcopy(base)
                _set(spec, path, value)
                p = _path_str(path)
                if path == ("Encoder", "steps") and value in S.ENCODER_STEPS:
                    continue
                add("out_of_grid", name, f"{p} = {value!r}", spec, path=p, cell=path[0],
                    value=value, check_value=True)

        # --- duplicate augmentations in a view
        for view in ("AugCell1", "AugCell2"):
            entries = base[view]
            if entries:
                for _ in range(3):
                    src = int(rng.integers(len(entries)))
                    dup = dict(entries[src])
                    grid = S.AUG_STRENGTHS[dup["name"]]
                    if rng.random() < 0.5:
                        dup["strength"] = grid[int(rng.integers(len(grid)))]
                    pos = int(rng.integers(len(entries) + 1))
                    spec = copy.deepcopy(base)
                    spec[view].insert(pos, dup)
                    names = [a["name"] for a in spec[view]]
                    second = next(j for j, n in enumerate(names) if n in names[:j])
                    add("duplicate_augmentation", name,
                        f"{view} += {dup} at {pos}", spec, path=f"{view}[{second}].name",
                        cell=view, also="at most once")
            else:
                aug = S.AUGMENTATIONS[int(rng.integers(len(S.AUGMENTATIONS)))]
                spec = copy.deepcopy(base)
                spec[view] = [{"name": aug, "strength": S.AUG_STRENGTHS[aug][0]}] * 2
                add("duplicate_augmentation", name, f"{view} = [{aug}] * 2", spec,
                    path=f"{view}[1].name", cell=view, also="at most once")

        # --- duplicate and empty contrasts
        contrasts = base["PairCell"]["contrasts"]
        for _ in range(3):
            dup = contrasts[int(rng.integers(len(contrasts)))]
            pos = int(rng.integers(len(contrasts) + 1))
            spec = copy.deepcopy(base)
            spec["PairCell"]["contrasts"].insert(pos, dup)
            add("duplicate_contrast", name, f"contrasts += {dup!r} at {pos}", spec,
                path="PairCell.contrasts", cell="PairCell", also="at most once")
        spec = copy.deepcopy(base)
        spec["PairCell"]["contrasts"] = list(S.CONTRASTS) * 2
        add("duplicate_contrast", name, "contrasts = CONTRASTS * 2", spec,
            path="PairCell.contrasts", cell="PairCell", also="at most once")
        for empty in ([], ()):
            spec = copy.deepcopy(base)
            spec["PairCell"]["contrasts"] = empty
            add("empty_contrasts", name, f"contrasts = {empty!r}", spec,
                path="PairCell.contrasts", cell="PairCell")

        # --- encoder: wrong cell length for steps
        enc = base["Encoder"]
        steps, cell = enc["steps"], enc["cell"]
        for other in S.ENCODER_STEPS:
            if other != steps:
                spec = copy.deepcopy(base)
                spec["Encoder"]["steps"] = other
                add("wrong_cell_length", name, f"steps {steps} -> {other}, cell kept", spec,
                    path="Encoder.cell", cell="Encoder", also=f"steps={other}")
        for desc, new in (("drop last edge", cell[:-1]), ("append edge", cell + [[0, "identity"]]),
                          ("append pair", cell + [[0, "identity"], [steps, "identity"]]),
                          ("doubled", cell + cell)):
            spec = copy.deepcopy(base)
            spec["Encoder"]["cell"] = copy.deepcopy(new)
            add("wrong_cell_length", name, desc, spec, path="Encoder.cell", cell="Encoder",
                also=f"steps={steps}")

        # --- encoder edge sources: cyclic, dangling, wrong wiring
        for k in range(len(cell)):
            node = (k + 1) // 2 + 1
            for src in range(node, steps + 1):  # the node itself or a later one
                spec = copy.deepcopy(base)
                spec["Encoder"]["cell"][k][0] = src
                add("cyclic_edge", name, f"cell[{k}] (feeds node {node}) source {src}", spec,
                    path=f"Encoder.cell[{k}][0]", cell="Encoder", value=src, check_value=True,
                    also="cyclic")
            for src in (-1, -int(rng.integers(2, 100)), steps + 1,
                        steps + int(rng.integers(2, 100)), 10 ** 9):
                spec = copy.deepcopy(base)
                spec["Encoder"]["cell"][k][0] = src
                add("dangling_edge", name, f"cell[{k}] source {src}", spec,
                    path=f"Encoder.cell[{k}][0]", cell="Encoder", value=src, check_value=True,
                    also="dangling")
            if k >= 2 and k % 2 == 0:  # the second input of node i+1 must read state i
                i = k // 2
                for src in range(i):
                    spec = copy.deepcopy(base)
                    spec["Encoder"]["cell"][k][0] = src
                    add("wrong_wiring", name, f"cell[{k}] (2nd input of node {i + 1}) source "
                        f"{src} != {i}", spec, path=f"Encoder.cell[{k}][0]", cell="Encoder",
                        value=src, check_value=True, also="wiring")
            if k % 2 == 1:  # the first input of node i+1 reads j < i, not i itself
                spec = copy.deepcopy(base)
                spec["Encoder"]["cell"][k][0] = node - 1
                add("wrong_wiring", name, f"cell[{k}] (1st input of node {node}) source "
                    f"{node - 1}", spec, path=f"Encoder.cell[{k}][0]", cell="Encoder",
                    value=node - 1, check_value=True, also="wiring")

        # --- edges that are not [source, op] pairs
        for k in range(len(cell)):
            src, op = cell[k]
            for desc, edge in (("[]", []), ("[src]", [src]), ("(src,)", (src,)),
                               ("[src, op, 0]", [src, op, 0]), ("[src, op, op]", [src, op, op]),
                               ("'ab'", "ab"), ("op string", op), ("None", None), ("int", src),
                               ("dict of 2", {0: src, 1: op}), ("set of 2", {src, op}),
                               ("[[src, op]]", [[src, op]])):
                spec = copy.deepcopy(base)
                spec["Encoder"]["cell"][k] = edge
                p = f"Encoder.cell[{k}]"
                add("edge_not_pair", name, f"cell[{k}] = {desc}", spec, path=p, cell="Encoder")

        # --- wrong version
        for value in (0, 2, -1, 10 ** 30, "1", "v1", None, True, False, 1.5, 0.999, NAN, [1],
                      {"version": 1}, (1,)):
            spec = copy.deepcopy(base)
            spec["version"] = value
            add("wrong_version", name, f"version = {value!r}", spec, path="version",
                cell="version", value=value, check_value=True)

    # --- non-dict top level
    ts2vec = preset("ts2vec")
    for desc, top in (("[]", []), ("[spec]", [ts2vec]), ("list of items", list(ts2vec.items())),
                      ("tuple of items", tuple(ts2vec.items())), ("str", "ts2vec"),
                      ("json text", json.dumps(ts2vec)), ("''", ""), ("None", None), ("0", 0),
                      ("1", 1), ("huge int", 10 ** 30), ("1.0", 1.0), ("nan", NAN),
                      ("True", True), ("bytes", b"{}"), ("set", {"version"})):
        add("non_dict_top", "-", desc, top, path="spec", cell="spec")

    return cases, list(zip(bases, snapshots))

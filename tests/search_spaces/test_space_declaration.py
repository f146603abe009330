"""The single declaration of the search space (``search_spaces.space``): its invariants, that
everything is derived from it (one edit adds an op or a choice), that it needs no torch, that
the shipped seed records keep their hashes, and that canonical / spec_hash validate once."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import space
from search_spaces.cost import window_macs
from search_spaces.space import NODE_ENCODINGS, PLACES, Choice, Edges, Op, Subset

ROOT = Path(__file__).resolve().parents[2]
FULL = 23525197291412089336627200000


def _records(name: str) -> list:
    with open(ROOT / "seeds" / name) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.parametrize("name, n", [("records.jsonl", 1600), ("noise.jsonl", 200)])
def test_every_shipped_seed_record_hash_recomputes_from_its_spec(name, n):
    records = _records(name)
    assert len(records) == n
    bad = [(i, r["spec_hash"]) for i, r in enumerate(records)
           if ss.spec_hash(r["spec"]) != r["spec_hash"]]
    assert not bad, bad[:5]
    assert len({r["spec_hash"] for r in records}) > 1


def test_import_search_spaces_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import search_spaces; "
            "import search_spaces.cost; print(search_spaces.space_size()); "
            "print(search_spaces.spec_hash(search_spaces.sample(0)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    size, digest = out.stdout.split()
    assert int(size) == FULL and digest == ss.spec_hash(ss.sample(0))
    # The guard works: importing the learner in the same setting fails.
    code = "import sys; sys.modules['torch'] = None; import search_spaces.learner"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode != 0 and "torch" in out.stderr


def _fields():
    for key, cell in space.SPACE.cells.items():
        if isinstance(cell, dict):
            for name, f in cell.items():
                yield f"{key}.{name}", f


def test_table_invariants():
    sp = space.SPACE
    assert sp.top_keys == ("version", "AugCell1", "AugCell2", "EmbedCell", "PairCell",
                           "LossCell", "Encoder", "Train")
    grids = [(p, f.grid) for p, f in _fields() if not isinstance(f, Edges)]
    grids += [(f"aug {a.name}", a.strengths) for a in sp.view.augs]
    for path, grid in grids:
        assert grid and len(set(grid)) == len(grid), path
        assert len({type(v) for v in grid}) == 1, path  # one type: canonical casts to it
        assert type(grid[0]) in (int, float, str), path
    for path, f in _fields():
        if isinstance(f, Choice):
            assert f.node in NODE_ENCODINGS, path
            if f.node in ("max", "log"):
                assert isinstance(f.grid[0], (int, float)) and min(f.grid) >= 0, path
            if f.node == "log":
                assert min(f.grid) > 0 and max(f.grid) > min(f.grid), path
        if isinstance(f, Edges):
            assert isinstance(sp.cells[path.split(".")[0]][f.steps], Choice), path
    assert sp.view.strength_node in ("max", "log")
    assert all(a.place in PLACES for a in sp.view.augs)
    assert len(sp.augs) == len(sp.view.augs) and len(sp.ops) == len(space.OPS)  # unique names
    for op in space.OPS:
        assert len(op.macs) == 3 and all(type(c) is int and c >= 0 for c in op.macs), op.name
    subsets = [f for _, f in _fields() if isinstance(f, Subset)]
    assert [f.noun for f in subsets] == ["contrast"]


def test_edge_sources_is_the_autocts_wiring():
    # node 1 = op(state 0); node i+1 = op_a(state j < i) + op_b(state i)
    assert space.edge_sources(0) == (1, range(1), False)
    for i in range(1, 6):
        assert space.edge_sources(2 * i - 1) == (i + 1, range(i), True)
        assert space.edge_sources(2 * i) == (i + 1, range(i, i + 1), False)


def test_learner_registries_use_the_table_names():
    pytest.importorskip("torch")
    from search_spaces.learner import augment, ops

    assert tuple(ops.OPS) == tuple(space.SPACE.ops) == ss.spec.ENCODER_OPS
    ordered = [a.name for a in space.AUGS if a.place == "ordered"]
    assert set(ordered) <= set(augment.INPUT_TRANSFORMS)


def test_legacy_names_of_spec_are_views_of_the_table():
    S = ss.spec
    assert S.TEMPERATURES is space.SPACE.cells["LossCell"]["temperature"].grid
    assert S.AUG_STRENGTHS == {a.name: a.strengths for a in space.AUGS}
    assert S.AUGMENTATIONS == tuple(space.SPACE.augs)
    assert set(S.ORDERED_AUGMENTATIONS + S.UNORDERED_AUGMENTATIONS) == set(S.AUGMENTATIONS)
    assert set(S.SPATIAL_OPS) == space.SPACE.spatial_ops
    assert S.TOP_KEYS == space.SPACE.top_keys and S.SPEC_VERSION == space.SPACE.version


# ---------------------------------------------------------------- one edit adds an op / choice


NEW_OP = Op("new_conv", spatial=False, macs=(5, 0, 0))


def _with(monkeypatch, grids: dict) -> None:
    monkeypatch.setattr(space, "SPACE", space.SPACE.replace(grids))


def test_one_table_row_adds_an_operation_everywhere(monkeypatch):
    from comparator.baselines import flat_features

    before_size, before_flat = ss.space_size(), flat_features(ss.preset("ts2vec")).size
    _with(monkeypatch, {"Encoder.cell": space.OPS + (NEW_OP,)})
    spec = ss.preset("ts2vec")
    spec["Encoder"]["cell"] = [[0, "new_conv"]]
    assert ss.validate(spec) is spec and ss.canonical(spec)["Encoder"]["cell"] == [[0, "new_conv"]]
    # window_macs: the op's coefficient a = 5 -> 5*H**2 per (node, step) and layer
    base = ss.preset("ts2vec")
    base["Encoder"]["cell"] = [[0, "identity"]]
    h, layers, t = 64, 10, 201
    assert window_macs(spec, 1, t) - window_macs(base, 1, t) == 5 * h * h * layers * t
    # sampled, and counted: 7 ops instead of 6 in every encoder cell
    seen = {op for s in range(300) for _, op in ss.sample(s, spatial=False)["Encoder"]["cell"]}
    assert "new_conv" in seen
    cells = lambda n: sum(n ** (2 * s - 1) * math.factorial(s - 1) for s in (1, 2, 3, 4))
    assert ss.space_size() * cells(6) == before_size * cells(7)
    # the flat encoding grows by one op column per edge position (7 positions)
    assert flat_features(spec).size == before_flat + 7


def test_one_grid_value_adds_a_choice_everywhere(monkeypatch):
    from comparator.baselines import flat_features

    before_size, before_flat = ss.space_size(), flat_features(ss.preset("ts2vec"))
    spec = ss.preset("ts2vec")
    spec["LossCell"]["temperature"] = 2.0
    with pytest.raises(ValueError, match=r"LossCell.temperature: got 2.0; allowed: \[0.05"):
        ss.validate(spec)
    _with(monkeypatch, {"LossCell.temperature": (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)})
    assert ss.validate(spec) is spec
    assert ss.space_size() * 5 == before_size * 6
    assert flat_features(spec).size == before_flat.size + 1
    rng = np.random.default_rng(0)
    assert 2.0 in {ss.sample(rng)["LossCell"]["temperature"] for _ in range(200)}


# ------------------------------------------------------------------- one validation per call


@pytest.fixture
def count_validations(monkeypatch):
    calls = []
    real = ss.spec.validate

    def counting(spec):
        calls.append(1)
        return real(spec)

    monkeypatch.setattr(ss.spec, "validate", counting)
    return calls


@pytest.mark.parametrize("fn", [ss.canonical, ss.to_json, ss.spec_hash,
                                lambda s: ss.mutate(s, 0)], ids=["canonical", "to_json",
                                                                 "spec_hash", "mutate"])
def test_canonical_hash_and_mutate_validate_once(count_validations, fn):
    spec = ss.sample(3)
    fn(spec)
    assert len(count_validations) == 1

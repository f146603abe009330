"""Shared fixtures of the search-space tests."""
from __future__ import annotations

import pytest

from search_spaces import preset, space
from search_spaces.space import Choice


def _reorder_keys(obj):
    """The same value with every dict's keys in reversed insertion order."""
    if isinstance(obj, dict):
        return {k: _reorder_keys(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reorder_keys(v) for v in obj]
    return obj


def _scrambled_ts2vec() -> dict:
    """A valid, non-canonical spelling of a spec: unordered augs out of place, contrasts
    reversed, ints on float grids, tuple edges, keys in reversed order."""
    spec = preset("ts2vec")
    spec["AugCell1"] = [{"strength": 1, "name": "crop"}, {"name": "jitter", "strength": 0.05},
                        {"name": "timestamp_masking", "strength": 0.5},
                        {"name": "resize", "strength": 0.2}]
    spec["AugCell2"] = [{"name": "timestamp_masking", "strength": 0.5}, {"name": "crop", "strength": 1}]
    spec["PairCell"]["contrasts"] = ["cross_scale", "temporal", "instance"]
    spec["LossCell"]["temperature"] = 1
    spec["EmbedCell"]["jitter"] = 0
    spec["Encoder"] = {"steps": 2, "layers": 4, "cell": [(0, "gated_tcn"), (0, "identity"),
                                                         (1, "spatial_attention")],
                       "hidden": 32, "repr_dim": 64}
    return _reorder_keys(spec)


def _scalar_leaves():
    """(path, grid) of every scalar grid field of the ts2vec preset, from the declared table:
    the Choice fields but ``Encoder.steps`` (its edges would no longer fit) first, then the op of
    the first edge and the strengths of the preset's augmentations."""
    out = [((key, name), f.grid) for key, cell in space.SPACE.cells.items()
           if isinstance(cell, dict) for name, f in cell.items()
           if isinstance(f, Choice) and (key, name) != ("Encoder", "steps")]
    assert len(out) == 15
    out += [(("Encoder", "cell", 0, 1), space.SPACE.op_names()),
            (("AugCell1", 0, "strength"), space.SPACE.augs["crop"].strengths),
            (("AugCell2", 1, "strength"), space.SPACE.augs["timestamp_masking"].strengths)]
    return out


@pytest.fixture
def scrambled_ts2vec() -> dict:
    return _scrambled_ts2vec()


@pytest.fixture(scope="session")
def scalar_leaves() -> list:
    return _scalar_leaves()


@pytest.fixture(scope="session")
def reorder_keys():
    return _reorder_keys

"""Shared fixtures of the search-space tests."""
from __future__ import annotations

import pytest

from search_spaces import preset
from search_spaces import spec as S


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
    """(path, grid) of every scalar grid field of the ts2vec preset."""
    out = [(("EmbedCell", "jitter"), S.EMBED_JITTER), (("EmbedCell", "masking"), S.EMBED_MASKING),
           (("EmbedCell", "norm"), S.EMBED_NORMS), (("PairCell", "pooling"), S.POOLINGS),
           (("PairCell", "kernel"), S.POOL_KERNELS),
           (("PairCell", "level_weighting"), S.LEVEL_WEIGHTINGS),
           (("LossCell", "loss"), S.LOSSES), (("LossCell", "similarity"), S.SIMILARITIES),
           (("LossCell", "temperature"), S.TEMPERATURES), (("Encoder", "layers"), S.ENCODER_LAYERS),
           (("Encoder", "hidden"), S.HIDDEN_WIDTHS), (("Encoder", "repr_dim"), S.REPR_DIMS),
           (("Train", "lr"), S.LEARNING_RATES), (("Train", "batch_size"), S.BATCH_SIZES),
           (("Train", "max_train_length"), S.MAX_TRAIN_LENGTHS),
           (("Encoder", "cell", 0, 1), S.ENCODER_OPS),
           (("AugCell1", 0, "strength"), S.AUG_STRENGTHS["crop"]),
           (("AugCell2", 1, "strength"), S.AUG_STRENGTHS["timestamp_masking"])]
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

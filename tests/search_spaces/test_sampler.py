"""The sampler and mutation of the search space: deterministic, valid, covering every choice."""
from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import canonical, mutate, preset, sample, spec_hash, validate
from search_spaces import spec as S

HEX16 = re.compile(r"[0-9a-f]{16}")


def _differing_cells(a: dict, b: dict) -> list:
    ca, cb = canonical(a), canonical(b)
    return [k for k in S.TOP_KEYS if ca[k] != cb[k]]



# ------------------------------------------------------------------------------------ sample


def test_sample_is_deterministic():
    for seed in (0, 1, 7, 2**31 + 5, 2**63):
        assert sample(seed) == sample(seed)
        assert sample(np.random.default_rng(seed)) == sample(np.random.default_rng(seed))
        assert sample(seed, spatial=False) == sample(seed, spatial=False)
    assert sample(np.int64(11)) == sample(11)
    # A Generator is advanced in place: consecutive draws differ, and replay reproduces them.
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    first = [sample(g1) for _ in range(5)]
    assert first == [sample(g2) for _ in range(5)]
    assert len({spec_hash(s) for s in first}) == 5


def test_sample_different_seeds_give_different_specs():
    hashes = [spec_hash(sample(seed)) for seed in range(100)]
    assert len(set(hashes)) == 100
    assert sample(np.random.default_rng(1)) != sample(np.random.default_rng(2))


@pytest.mark.parametrize("bad", [1.5, "3", None, True, [1], np.random.RandomState(0)])
def test_sample_and_mutate_reject_bad_rng(bad):
    with pytest.raises(ValueError, match="rng: got"):
        sample(bad)
    with pytest.raises(ValueError, match="rng: got"):
        mutate(preset("ts2vec"), bad)


def test_sample_without_spatial_never_yields_spatial_ops():
    rng = np.random.default_rng(123)
    n_spatial_allowed = 0
    for _ in range(300):
        spec = sample(rng, spatial=False)
        ops = {op for _, op in spec["Encoder"]["cell"]}
        assert ops <= set(S.TEMPORAL_OPS), ops
        assert not ops & {"diffusion_gcn", "spatial_attention"}
        assert not ss.uses_spatial_ops(spec)
        n_spatial_allowed += ss.uses_spatial_ops(sample(rng, spatial=True))
    assert n_spatial_allowed > 0  # the flag matters: with spatial=True they do appear


@pytest.fixture(scope="module")
def samples_2000():
    rng = np.random.default_rng(20240501)
    return [sample(rng) for _ in range(2000)]


def test_2000_samples_are_valid_and_distinct(samples_2000):
    hashes = set()
    for spec in samples_2000:
        assert validate(spec) is spec
        hashes.add(spec_hash(spec))
        for view in ("AugCell1", "AugCell2"):
            n_ordered = sum(a["name"] in S.ORDERED_AUGMENTATIONS for a in spec[view])
            assert n_ordered <= 3
    assert len(hashes) == 2000


def test_2000_samples_cover_every_choice(samples_2000, scalar_leaves):
    seen = {"op": set(), "aug": set(), "loss": set(), "contrast": set(), "steps": set(),
            "contrast_set": set()}
    values = {}
    for spec in samples_2000:
        seen["op"] |= {op for _, op in spec["Encoder"]["cell"]}
        for view in ("AugCell1", "AugCell2"):
            for a in spec[view]:
                seen["aug"].add(a["name"])
                values.setdefault(("strength", a["name"]), set()).add(a["strength"])
        seen["loss"].add(spec["LossCell"]["loss"])
        seen["contrast"] |= set(spec["PairCell"]["contrasts"])
        seen["contrast_set"].add(tuple(spec["PairCell"]["contrasts"]))
        seen["steps"].add(spec["Encoder"]["steps"])
        for path, _ in scalar_leaves[:15]:
            values.setdefault(path, set()).add(spec[path[0]][path[1]])
    assert seen["op"] == set(S.ENCODER_OPS)
    assert seen["aug"] == set(S.AUGMENTATIONS)
    assert seen["loss"] == set(S.LOSSES)
    assert seen["contrast"] == set(S.CONTRASTS)
    assert len(seen["contrast_set"]) == 2 ** len(S.CONTRASTS) - 1
    assert seen["steps"] == set(S.ENCODER_STEPS)
    for path, grid in scalar_leaves[:15]:
        assert values[path] == set(grid), path
    for name, grid in S.AUG_STRENGTHS.items():
        assert values[("strength", name)] == set(grid), name


# ------------------------------------------------------------------------------------ mutate


def test_mutate_returns_a_valid_different_spec_and_leaves_its_input_alone(scrambled_ts2vec):
    rng = np.random.default_rng(99)
    scrambled = json.loads(json.dumps(scrambled_ts2vec))  # list edges
    bases = [preset("ts2vec"), scrambled] + [sample(rng) for _ in range(150)]
    for i, spec in enumerate(bases):
        before = copy.deepcopy(spec)
        out = mutate(spec, i)
        assert spec == before
        assert validate(out) is out
        assert spec_hash(out) != spec_hash(spec)
        assert len(_differing_cells(spec, out)) == 1  # one cell is resampled
        assert mutate(spec, i) == out  # deterministic for an int seed
        assert mutate(spec, np.random.default_rng(i)) == mutate(spec, np.random.default_rng(i))
        assert spec == before


def test_mutate_chain_and_spatial_flag():
    spec = sample(5, spatial=False)
    rng = np.random.default_rng(5)
    hashes = [spec_hash(spec)]
    for _ in range(200):
        spec = mutate(spec, rng, spatial=False)
        assert not ss.uses_spatial_ops(spec)
        hashes.append(spec_hash(spec))
    assert all(a != b for a, b in zip(hashes, hashes[1:]))
    assert len(set(hashes)) > 150


def test_mutate_rejects_invalid_specs():
    spec = preset("ts2vec")
    spec["LossCell"]["temperature"] = 0.3
    with pytest.raises(ValueError, match="LossCell.temperature"):
        mutate(spec, 0)


def test_mutate_accepts_every_spec_validate_accepts_tuple_edges():
    spec = preset("ts2vec")
    spec["Encoder"]["cell"] = [(0, "ts2vec_conv")]
    validate(spec)
    for seed in range(20):
        validate(mutate(spec, seed))


def test_hash_equal_for_negative_zero_on_float_grids():
    a, b = preset("ts2vec"), preset("ts2vec")
    b["EmbedCell"]["jitter"] = -0.0
    validate(b)
    assert canonical(a) == canonical(b)
    assert spec_hash(a) == spec_hash(b)

"""Spec layer of the search space: the TS2Vec preset, validation messages, canonical form and
hash (insensitive where order carries no meaning, sensitive where it does), the sampler and
mutation (deterministic, valid, covering), and ``space_size`` checked by brute force on small
monkeypatched grids."""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import canonical, mutate, preset, sample, space_size, spec_hash, to_json, validate
from search_spaces import spec as S

HEX16 = re.compile(r"[0-9a-f]{16}")


def _reorder_keys(obj):
    """The same value with every dict's keys in reversed insertion order."""
    if isinstance(obj, dict):
        return {k: _reorder_keys(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reorder_keys(v) for v in obj]
    return obj


def _differing_cells(a: dict, b: dict) -> list:
    ca, cb = canonical(a), canonical(b)
    return [k for k in S.TOP_KEYS if ca[k] != cb[k]]


# ------------------------------------------------------------------------------------ preset


def test_ts2vec_preset_validates_and_matches_the_documented_settings():
    spec = preset("ts2vec")
    assert validate(spec) is spec
    assert spec["version"] == ss.SPEC_VERSION == 1
    enc = spec["Encoder"]
    assert enc == {"steps": 1, "layers": 10, "cell": [[0, "ts2vec_conv"]], "hidden": 64,
                   "repr_dim": 320}
    pair = spec["PairCell"]
    assert sorted(pair["contrasts"]) == ["instance", "temporal"]
    assert pair["pooling"] == "max" and pair["kernel"] == 2 and pair["level_weighting"] == "uniform"
    assert spec["LossCell"] == {"loss": "NT-Xent", "similarity": "dot", "temperature": 1.0}
    assert spec["Train"] == {"lr": 1e-3, "batch_size": 8, "max_train_length": 3000}
    assert spec["EmbedCell"] == {"jitter": 0.0, "masking": 0.1, "norm": "none"}  # repr dropout 0.1
    for view in ("AugCell1", "AugCell2"):
        assert spec[view] == [{"name": "crop", "strength": 1.0},
                              {"name": "timestamp_masking", "strength": 0.5}]
    assert not ss.uses_spatial_ops(spec)
    # Already canonical, and its hash is stable across processes and releases (cache keys).
    assert canonical(spec) == spec
    assert spec_hash(spec) == "a041bb56c181a305"


def test_preset_returns_an_independent_deep_copy_and_rejects_unknown_names():
    a = preset("ts2vec")
    a["Encoder"]["cell"][0][1] = "identity"
    a["AugCell1"].clear()
    a["LossCell"]["temperature"] = 0.1
    b = preset("ts2vec")
    assert b == ss.PRESETS["ts2vec"] == S.TS2VEC
    assert b["Encoder"]["cell"] == [[0, "ts2vec_conv"]] and len(b["AugCell1"]) == 2
    assert b is not preset("ts2vec")
    with pytest.raises(ValueError, match=r"preset: got 'simclr'; allowed: \['ts2vec'\]"):
        preset("simclr")


# --------------------------------------------------------------------------------- validate


def test_validate_error_names_path_value_and_allowed_grid():
    spec = preset("ts2vec")
    spec["LossCell"]["temperature"] = 0.3
    with pytest.raises(ValueError) as info:
        validate(spec)
    msg = str(info.value)
    assert "LossCell.temperature" in msg and "0.3" in msg
    assert str(list(S.TEMPERATURES)) in msg and "[0.05, 0.1, 0.2, 0.5, 1.0]" in msg
    assert msg == "LossCell.temperature: got 0.3; allowed: [0.05, 0.1, 0.2, 0.5, 1.0]"


@pytest.mark.parametrize("mutation, path", [
    (lambda s: s["PairCell"].__setitem__("kernel", 4), "PairCell.kernel"),
    (lambda s: s["AugCell2"][1].__setitem__("strength", 0.4), "AugCell2[1].strength"),
    (lambda s: s["Encoder"]["cell"][0].__setitem__(0, 1), "Encoder.cell[0][0]"),
    (lambda s: s["Encoder"]["cell"][0].__setitem__(1, "conv"), "Encoder.cell[0][1]"),
    (lambda s: s["Train"].__setitem__("lr", 0.01), "Train.lr"),
    (lambda s: s["EmbedCell"].__setitem__("norm", "rms"), "EmbedCell.norm"),
    (lambda s: s.__setitem__("version", 2), "version"),
])
def test_validate_error_paths(mutation, path):
    spec = preset("ts2vec")
    mutation(spec)
    with pytest.raises(ValueError) as info:
        validate(spec)
    msg = str(info.value)
    assert msg.startswith(path + ": got ") and "; allowed: " in msg, msg


def test_validate_returns_its_argument_for_sampled_specs():
    for seed in range(100):
        spec = sample(seed)
        before = copy.deepcopy(spec)
        assert validate(spec) is spec and spec == before
        # JSON round trip keeps validity and the hash.
        again = json.loads(json.dumps(spec))
        assert validate(again) == spec and spec_hash(again) == spec_hash(spec)


# -------------------------------------------------------------------------- canonical / hash


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


def test_canonical_is_idempotent_and_does_not_mutate_its_input():
    specs = [preset("ts2vec"), _scrambled_ts2vec()] + [sample(s) for s in range(200)]
    for spec in specs:
        before = copy.deepcopy(spec)
        before_json = json.dumps(spec, default=list)  # also catches int -> float in place
        c = canonical(spec)
        assert spec == before and json.dumps(spec, default=list) == before_json
        assert c is not spec
        assert canonical(c) == c
        assert json.dumps(canonical(c)) == json.dumps(c)  # also types and key order
        assert spec_hash(c) == spec_hash(spec)
        # The output shares nothing mutable with the input.
        c["AugCell1"].append({"name": "jitter", "strength": 0.3})
        c["Encoder"]["cell"][0][1] = "??"
        c["PairCell"]["contrasts"].clear()
        assert spec == before


def test_canonical_form_of_a_scrambled_spec():
    c = canonical(_scrambled_ts2vec())
    assert c["AugCell1"] == [{"name": "crop", "strength": 1.0}, {"name": "jitter", "strength": 0.05},
                             {"name": "resize", "strength": 0.2},
                             {"name": "timestamp_masking", "strength": 0.5}]
    assert c["AugCell2"] == [{"name": "crop", "strength": 1.0},
                             {"name": "timestamp_masking", "strength": 0.5}]
    assert type(c["AugCell1"][0]["strength"]) is float
    assert c["PairCell"]["contrasts"] == ["instance", "temporal", "cross_scale"]
    assert type(c["LossCell"]["temperature"]) is float and type(c["EmbedCell"]["jitter"]) is float
    assert c["Encoder"]["cell"] == [[0, "gated_tcn"], [0, "identity"], [1, "spatial_attention"]]
    assert all(type(e) is list for e in c["Encoder"]["cell"])
    assert c["version"] == 1


def test_to_json_and_hash_format():
    for spec in [preset("ts2vec"), _scrambled_ts2vec()] + [sample(s) for s in range(20)]:
        text = to_json(spec)
        assert json.loads(text) == canonical(spec)
        assert text == json.dumps(canonical(spec), sort_keys=True, separators=(",", ":"))
        assert " " not in text.replace('"', "")  # compact (no op or key holds a space)
        h = spec_hash(spec)
        assert HEX16.fullmatch(h)
        assert h == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_hash_ignores_position_of_crop_and_timestamp_masking():
    ordered = [{"name": "jitter", "strength": 0.05}, {"name": "resize", "strength": 0.2}]
    unordered = [{"name": "crop", "strength": 0.5}, {"name": "timestamp_masking", "strength": 0.3}]
    entries = ordered + unordered
    hashes, n = set(), 0
    for perm in itertools.permutations(entries):
        names = [e["name"] for e in perm]
        if names.index("jitter") > names.index("resize"):
            continue  # keep the meaningful relative order of the ordered transforms
        spec = preset("ts2vec")
        spec["AugCell1"] = copy.deepcopy(list(perm))
        spec["AugCell2"] = copy.deepcopy(list(perm))
        hashes.add(spec_hash(spec))
        n += 1
    assert n == 12 and len(hashes) == 1
    # Moving crop / timestamp_masking in one view only.
    base = preset("ts2vec")
    base["AugCell2"] = [{"name": "crop", "strength": 1.0}, {"name": "jitter", "strength": 0.1},
                        {"name": "timestamp_masking", "strength": 0.5}]
    moved = copy.deepcopy(base)
    moved["AugCell2"] = [moved["AugCell2"][2], moved["AugCell2"][1], moved["AugCell2"][0]]
    assert spec_hash(moved) == spec_hash(base)
    moved["AugCell1"] = moved["AugCell1"][::-1]
    assert spec_hash(moved) == spec_hash(base)


def test_hash_ignores_contrast_order():
    for k in (2, 3):
        for subset in itertools.combinations(S.CONTRASTS, k):
            hashes = set()
            for perm in itertools.permutations(subset):
                spec = preset("ts2vec")
                spec["PairCell"]["contrasts"] = list(perm)
                hashes.add(spec_hash(spec))
            assert len(hashes) == 1, subset


def test_hash_ignores_dict_key_order():
    for spec in [preset("ts2vec")] + [sample(s) for s in range(50)]:
        other = _reorder_keys(spec)
        assert list(other) != list(spec)
        assert spec_hash(other) == spec_hash(spec) and to_json(other) == to_json(spec)


# Fields whose grid is float and holds an integral value: the validator accepts both spellings.
INT_ON_FLOAT_GRIDS = [
    (("LossCell", "temperature"), 1),
    (("EmbedCell", "jitter"), 0),
    (("EmbedCell", "masking"), 0),
    (("AugCell1", 0, "strength"), 1),  # crop 1.0
]


@pytest.mark.parametrize("path, int_value", INT_ON_FLOAT_GRIDS)
def test_hash_ignores_int_vs_float_on_float_grids(path, int_value):
    spec = preset("ts2vec")
    spec["AugCell1"][0]["strength"] = 1.0
    ref = spec_hash(spec)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = float(int_value)
    float_hash = spec_hash(spec)
    node[path[-1]] = int_value
    assert validate(spec) is spec
    assert spec_hash(spec) == float_hash
    c = canonical(spec)
    leaf = c
    for key in path:
        leaf = leaf[key]
    assert type(leaf) is float and leaf == float(int_value)
    if path == ("LossCell", "temperature") or path[0] == "AugCell1":
        assert spec_hash(spec) == ref


def test_hash_int_vs_float_rescaling_strength():
    a, b = preset("ts2vec"), preset("ts2vec")
    a["AugCell1"].insert(1, {"name": "rescaling", "strength": 1.0})
    b["AugCell1"].insert(1, {"name": "rescaling", "strength": 1})
    assert spec_hash(a) == spec_hash(b)


@pytest.mark.parametrize("path, value", [
    (("PairCell", "kernel"), 2.0), (("Encoder", "steps"), 1.0), (("Encoder", "layers"), 10.0),
    (("Encoder", "hidden"), 64.0), (("Encoder", "repr_dim"), 320.0),
    (("Train", "batch_size"), 8.0), (("Train", "max_train_length"), 3000.0),
    (("Encoder", "cell", 0, 0), 0.0),
])
def test_int_grids_reject_floats(path, value):
    """The other direction of the previous test: where the grid is int, 2.0 is not 2."""
    spec = preset("ts2vec")
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match="got"):
        spec_hash(spec)


def test_tuple_edges_and_json_round_trip_keep_the_hash():
    spec = preset("ts2vec")
    spec["Encoder"] = {"steps": 3, "layers": 6, "hidden": 32, "repr_dim": 128,
                       "cell": [[0, "gated_tcn"], [0, "identity"], [1, "ts2vec_conv"],
                                [1, "temporal_attention"], [2, "diffusion_gcn"]]}
    tup = copy.deepcopy(spec)
    tup["Encoder"]["cell"] = [tuple(e) for e in tup["Encoder"]["cell"]]
    assert spec_hash(tup) == spec_hash(spec) == spec_hash(json.loads(json.dumps(tup)))


def test_hash_is_sensitive_to_the_order_of_ordered_augmentations():
    for a, b in itertools.combinations(S.ORDERED_AUGMENTATIONS, 2):
        sa, sb = S.AUG_STRENGTHS[a][0], S.AUG_STRENGTHS[b][0]
        x, y = preset("ts2vec"), preset("ts2vec")
        x["AugCell1"] = [{"name": "crop", "strength": 1.0}, {"name": a, "strength": sa},
                         {"name": b, "strength": sb}]
        y["AugCell1"] = [{"name": "crop", "strength": 1.0}, {"name": b, "strength": sb},
                         {"name": a, "strength": sa}]
        assert spec_hash(x) != spec_hash(y), (a, b)
    # The documented example: jitter then resize is not resize then jitter, in either view.
    x, y = preset("ts2vec"), preset("ts2vec")
    x["AugCell2"] = [{"name": "jitter", "strength": 0.1}, {"name": "resize", "strength": 0.3}]
    y["AugCell2"] = [{"name": "resize", "strength": 0.3}, {"name": "jitter", "strength": 0.1}]
    assert spec_hash(x) != spec_hash(y)
    # The two views are different places: moving a transform to the other view matters.
    z = preset("ts2vec")
    z["AugCell1"] = x["AugCell2"]
    assert spec_hash(z) != spec_hash(x)


def test_hash_is_sensitive_to_encoder_edge_sources_and_ops():
    spec = preset("ts2vec")
    spec["Encoder"] = {"steps": 4, "layers": 6, "hidden": 32, "repr_dim": 128,
                       "cell": [[0, "gated_tcn"], [0, "identity"], [1, "ts2vec_conv"],
                                [0, "temporal_attention"], [2, "diffusion_gcn"],
                                [0, "identity"], [3, "identity"]]}
    ref = spec_hash(spec)
    seen = {ref}
    for k, alternatives in ((3, (1,)), (5, (1, 2))):  # edges whose source has a choice
        for src in alternatives:
            other = copy.deepcopy(spec)
            other["Encoder"]["cell"][k][0] = src
            h = spec_hash(other)
            assert h not in seen, (k, src)
            seen.add(h)
    # Swapping the ops of the two inputs of node 2 changes the cell (op_a(s0) + op_b(s1)).
    other = copy.deepcopy(spec)
    cell = other["Encoder"]["cell"]
    cell[1][1], cell[2][1] = cell[2][1], cell[1][1]
    assert spec_hash(other) != ref


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


def test_hash_is_sensitive_to_every_grid_value():
    hashes = {spec_hash(preset("ts2vec"))}
    n = 1
    for path, grid in _scalar_leaves():
        for value in grid:
            spec = preset("ts2vec")
            node = spec
            for key in path[:-1]:
                node = node[key]
            if node[path[-1]] == value:
                continue
            node[path[-1]] = value
            hashes.add(spec_hash(spec))
            n += 1
    assert len(hashes) == n


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


def test_2000_samples_cover_every_choice(samples_2000):
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
        for path, _ in _scalar_leaves()[:15]:
            values.setdefault(path, set()).add(spec[path[0]][path[1]])
    assert seen["op"] == set(S.ENCODER_OPS)
    assert seen["aug"] == set(S.AUGMENTATIONS)
    assert seen["loss"] == set(S.LOSSES)
    assert seen["contrast"] == set(S.CONTRASTS)
    assert len(seen["contrast_set"]) == 2 ** len(S.CONTRASTS) - 1
    assert seen["steps"] == set(S.ENCODER_STEPS)
    for path, grid in _scalar_leaves()[:15]:
        assert values[path] == set(grid), path
    for name, grid in S.AUG_STRENGTHS.items():
        assert values[("strength", name)] == set(grid), name


# ------------------------------------------------------------------------------------ mutate


def test_mutate_returns_a_valid_different_spec_and_leaves_its_input_alone():
    rng = np.random.default_rng(99)
    scrambled = json.loads(json.dumps(_scrambled_ts2vec()))  # list edges
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

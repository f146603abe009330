"""Spec layer of the search space: the TS2Vec preset, validation messages, canonical form and
hash (insensitive where order carries no meaning, sensitive where it does)."""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re

import pytest

import search_spaces as ss
from search_spaces import canonical, preset, sample, spec_hash, to_json, validate
from search_spaces import spec as S

HEX16 = re.compile(r"[0-9a-f]{16}")


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


def test_canonical_is_idempotent_and_does_not_mutate_its_input(scrambled_ts2vec):
    specs = [preset("ts2vec"), scrambled_ts2vec] + [sample(s) for s in range(200)]
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


def test_canonical_form_of_a_scrambled_spec(scrambled_ts2vec):
    c = canonical(scrambled_ts2vec)
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


def test_to_json_and_hash_format(scrambled_ts2vec):
    for spec in [preset("ts2vec"), scrambled_ts2vec] + [sample(s) for s in range(20)]:
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


def test_hash_ignores_dict_key_order(reorder_keys):
    for spec in [preset("ts2vec")] + [sample(s) for s in range(50)]:
        other = reorder_keys(spec)
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


def test_hash_is_sensitive_to_every_grid_value(scalar_leaves):
    hashes = {spec_hash(preset("ts2vec"))}
    n = 1
    for path, grid in scalar_leaves:
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

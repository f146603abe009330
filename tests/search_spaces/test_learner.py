"""The ContrastiveLearner life cycle on real ETTh1 data: build, fit, encode, scale, save, load;
profiles and their deprecated names; every kind of bad file refused with a one-line error."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import search_spaces as ss
from search_spaces import learner
from search_spaces.learner import ContrastiveLearner, storage

TINY = {"n_iters": 3, "max_length": 64}


@pytest.fixture(scope="module")
def series(etth1):
    return etth1[None, :1500, -2:].copy()  # (1, 1500, 2): two real variables


@pytest.fixture(scope="module")
def trained(series):
    model = ContrastiveLearner(ss.preset("ts2vec"), 2, seed=1)
    model.fit(series, TINY, scaling={"mean": [1.0, 2.0], "std": [3.0, 4.0],
                                     "channels": ["MULL", "OT"]})
    return model


def test_the_network_is_the_seeded_build_and_the_caller_rng_is_untouched():
    spec = ss.preset("ts2vec")
    torch.manual_seed(7)
    expected = learner.build_model(spec, 3).state_dict()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model = ContrastiveLearner(spec, 3, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    got = model.net.state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert model.repr_dim == 320 and model.record is None and model.scaling is None


def test_object_and_function_train_alike(series):
    spec = ss.preset("ts2vec")
    model = ContrastiveLearner(spec, 2, seed=3)
    record = model.fit(series, TINY)
    other, again = learner.fit(spec, series, TINY, seed=3)
    assert record["loss_curve"] == again["loss_curve"] and record["profile"]["n_iters"] == 3
    assert "budget" not in record and model.record is record
    x = series[:, :80]
    np.testing.assert_array_equal(model.encode(x), other.encode(x))
    assert not model.net.training


def test_save_and_load_round_trip(trained, series, tmp_path):
    path = tmp_path / "enc.pt"
    trained.save(path)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was replaced
    loaded = ContrastiveLearner.load(path)
    x = series[:, :120]
    np.testing.assert_array_equal(loaded.encode(x), trained.encode(x))
    np.testing.assert_array_equal(loaded.encode(x, causal=True, sliding_padding=20),
                                  trained.encode(x, causal=True, sliding_padding=20))
    assert loaded.spec == trained.spec and loaded.seed == 1 and loaded.n_features == 2
    assert loaded.scaling == trained.scaling and loaded.scaling["channels"] == ["MULL", "OT"]
    assert loaded.record["loss_curve"] == trained.record["loss_curve"]
    again = ContrastiveLearner.from_bytes(trained.to_bytes())
    np.testing.assert_array_equal(again.encode(x), trained.encode(x))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == storage.FORMAT and payload["format_version"] == 1
    assert payload["ctsnas_version"] == storage.ctsnas_version() != "unknown"


def test_scale_applies_the_stored_scaling(trained):
    raw = np.array([[[4.0, 2.0], [1.0, np.nan]]])
    out = trained.scale(raw)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [1.0, 0.0])
    assert out[0, 1, 0] == 0 and np.isnan(out[0, 1, 1])
    np.testing.assert_allclose(trained.scale(raw[0]), out[0])  # (T, C) too
    with pytest.raises(ValueError, match=r"^x: got shape \(2, 3\)"):
        trained.scale(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="^scaling: got None"):
        ContrastiveLearner(ss.preset("ts2vec"), 2).scale(raw)


@pytest.mark.parametrize("scaling,match", [
    ([1, 2], "^scaling: got"), ({"mean": [0, 0]}, "^scaling: got"),
    ({"mean": [0], "std": [1, 1]}, r"^scaling\.mean: .*2 finite values"),
    ({"mean": [0, 0], "std": [1, 0]}, r"^scaling\.std: .*> 0"),
    ({"mean": [0, np.nan], "std": [1, 1]}, r"^scaling\.mean"),
    ({"mean": [0, 0], "std": [1, 1], "channels": ["a"]}, r"^scaling\.channels"),
    ({"mean": [0, 0], "std": [1, 1], "unit": "K"}, "^scaling: got"),
])
def test_bad_scaling_is_refused_before_training(series, scaling, match):
    model = ContrastiveLearner(ss.preset("ts2vec"), 2)
    with pytest.raises(ValueError, match=match):
        model.fit(series, TINY, scaling=scaling)
    assert model.record is None
    with pytest.raises(ValueError, match=match):
        model.scaling = scaling


def _version_2(trained) -> bytes:
    payload = torch.load(__import__("io").BytesIO(trained.to_bytes()), weights_only=True)
    payload["format_version"] = 2
    return storage.to_bytes(payload)


def _flip_weights(trained) -> bytes:
    payload = torch.load(__import__("io").BytesIO(trained.to_bytes()), weights_only=True)
    payload["state_dict"]["input_fc.weight"][0, 0] += 1.0
    return storage.to_bytes(payload)


@pytest.mark.parametrize("make,match", [
    (None, "does not exist"),
    (lambda t: t.to_bytes()[:5000], "not a readable ctsnas encoder file"),  # truncated
    (lambda t: b"x" * 2000, "not a readable ctsnas encoder file"),
    (lambda t: '{"spec": 1}'.encode(), "not a readable ctsnas encoder file"),
    (lambda t: storage.to_bytes(t.net.state_dict()), "not a ctsnas encoder file"),
    (_version_2, r"has format version 2 \(written by ctsnas .*\); allowed: format version 1"),
    (_flip_weights, "corrupted"),
])
def test_bad_files_give_one_line_errors_naming_the_path(trained, tmp_path, make, match):
    path = tmp_path / "enc.pt"
    if make is not None:
        path.write_bytes(make(trained))
    with pytest.raises(ValueError, match=match) as info:
        ContrastiveLearner.load(path)
    message = str(info.value)
    assert message.startswith(f"path: {path}") and "\n" not in message and "allowed" in message
    with pytest.raises(ValueError, match="is a directory"):
        ContrastiveLearner.load(tmp_path)


def test_profiles_and_their_deprecated_names():
    assert list(learner.PROFILES) == ["smoke", "screen", "small", "paper"]
    assert learner.PROFILES["screen"] == {"n_iters": 25, "max_length": 500, "max_seconds": 20.0}
    with pytest.warns(DeprecationWarning, match="'seed' is deprecated; use 'screen'"):
        assert learner.resolve_profile("seed") == learner.PROFILES["screen"]
    with pytest.warns(DeprecationWarning, match="resolve_budget is deprecated"):
        assert learner.resolve_budget("small") == learner.PROFILES["small"]
    assert learner.BUDGETS is learner.PROFILES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert learner.resolve_profile({"n_iters": 2})["max_length"] is None
    with pytest.raises(ValueError, match=r"^profile: got 'seeds'; allowed: \['smoke', "):
        learner.resolve_profile("seeds")


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="^seed: got -1"):
        ContrastiveLearner(ss.preset("ts2vec"), 1, seed=-1)
    with pytest.raises(ValueError, match="^n_features: got 0"):
        ContrastiveLearner(ss.preset("ts2vec"), 0)
    with pytest.raises(ValueError, match="^series: got 3 channels; allowed: C = 2"):
        ContrastiveLearner(ss.preset("ts2vec"), 2).fit(np.zeros((1, 50, 3)), TINY)

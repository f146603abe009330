"""The contrastive trainer and encoder on real ETTh1 data."""
from __future__ import annotations

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import learner
from search_spaces.learner.trainer import split_sections

TINY = {"n_iters": 3, "max_length": 64}


@pytest.fixture(scope="module")
def train_uni(etth1):
    return etth1[None, :2000, -1:].copy()  # (1, 2000, 1): OT


def test_same_seed_same_result_other_seed_differs(train_uni):
    spec = ss.preset("ts2vec")
    enc_a, rec_a = learner.fit(spec, train_uni, TINY, seed=3)
    enc_b, rec_b = learner.fit(spec, train_uni, TINY, seed=3)
    enc_c, rec_c = learner.fit(spec, train_uni, TINY, seed=4)
    assert rec_a["loss_curve"] == rec_b["loss_curve"] != rec_c["loss_curve"]
    x = train_uni[:, :100]
    assert np.array_equal(enc_a.encode(x), enc_b.encode(x))
    assert not np.array_equal(enc_a.encode(x), enc_c.encode(x))


def test_record_fields(train_uni):
    _, rec = learner.fit(ss.preset("ts2vec"), train_uni, "smoke", seed=0)
    assert rec["status"] == "ok" and rec["stopped"] == "iterations"
    assert rec["profile"] == learner.PROFILES["smoke"] and "budget" not in rec
    assert rec["n_iters"] == len(rec["loss_curve"]) == learner.PROFILES["smoke"]["n_iters"]
    assert rec["n_params"] > 600_000  # TS2Vec at hidden 64, D 320 has about 640k
    assert rec["seconds"] > 0 and rec["crop_length"] == learner.PROFILES["smoke"]["max_length"]
    assert rec["train_length"] >= rec["crop_length"]


def test_contrastive_training_lowers_the_loss(train_uni):
    _, rec = learner.fit(ss.preset("ts2vec"), train_uni, {"n_iters": 40, "max_length": 128}, seed=0)
    curve = rec["loss_curve"]
    assert np.mean(curve[-8:]) < 0.8 * np.mean(curve[:8])


def test_divergence_is_recorded_not_raised(train_uni):
    _, rec = learner.fit(ss.preset("ts2vec"), train_uni * 1e30, TINY, seed=0)
    assert rec["status"] == "diverged" and rec["stopped"] == "diverged"
    assert not np.isfinite(rec["loss_curve"][-1])


def test_time_cap_stops_training(train_uni):
    _, rec = learner.fit(ss.preset("ts2vec"), train_uni, {"n_iters": 1000, "max_length": 64,
                                                      "max_seconds": 0.01}, seed=0)
    assert rec["stopped"] == "time" and rec["n_iters"] < 1000


def test_missing_values_train_and_encode(etth1):
    x = etth1[None, :1500].copy()
    x[0, 100:300, 2] = np.nan
    x[0, 500:520] = np.nan
    enc, rec = learner.fit(ss.preset("ts2vec"), x, TINY, seed=0)
    assert rec["status"] == "ok"
    z = enc.encode(x[:, :600])
    assert z.shape == (1, 600, 320) and np.isfinite(z).all()


def test_causal_sliding_encoding_ignores_the_future(train_uni):
    enc, _ = learner.fit(ss.preset("ts2vec"), train_uni, TINY, seed=0)
    x = train_uni[:, :300]
    z = enc.encode(x, causal=True, sliding_padding=20, batch_size=64)
    changed = x.copy()
    changed[:, 150:] += 5.0
    z2 = enc.encode(changed, causal=True, sliding_padding=20, batch_size=7)
    assert z.shape == (1, 300, 320)
    np.testing.assert_allclose(z[:, :150], z2[:, :150], rtol=1e-5, atol=1e-5)
    assert not np.allclose(z[:, 150:], z2[:, 150:])


def test_sliding_window_equals_encoding_the_window_alone(train_uni):
    enc, _ = learner.fit(ss.preset("ts2vec"), train_uni, TINY, seed=0)
    x = train_uni[:, :120]
    z = enc.encode(x, causal=True, sliding_padding=30)
    alone = enc.encode(x[:, 60 - 30:61])[:, -1]
    np.testing.assert_allclose(z[:, 60], alone, rtol=1e-4, atol=1e-5)


def test_multivariate_spatial_spec_trains(etth1):
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(steps=2, layers=2, cell=[[0, "gated_tcn"], [0, "diffusion_gcn"],
                                                    [1, "spatial_attention"]])
    enc, rec = learner.fit(spec, etth1[None, :800], TINY, seed=0)
    assert rec["status"] == "ok" and enc.net.node_layout
    assert enc.encode(etth1[None, :50]).shape == (1, 50, 320)


def test_split_sections_follows_ts2vec():
    arr = np.arange(11, dtype=np.float32).reshape(1, 11, 1)
    out = split_sections(arr, 4)  # 11 // 4 = 2 sections of 6 and 5 (+1 NaN) steps
    assert out.shape == (2, 6, 1) and np.isnan(out[1, 5]) and out[1, 0, 0] == 6
    assert split_sections(arr, 6).shape == (1, 11, 1)  # one section: kept whole
    arr[0, 6:] = np.nan
    assert split_sections(arr, 4).shape == (1, 6, 1)  # an all-NaN section is dropped


@pytest.mark.parametrize("series,match", [
    (np.zeros((10, 2)), "series: got an array of shape"),
    (np.zeros((1, 1, 2)), "T >= 2"),
    (np.full((1, 10, 2), np.nan), "every value is NaN"),
    (np.array([[[np.inf], [1.0]]]), "inf"),
])
def test_bad_series_is_refused(series, match):
    with pytest.raises(ValueError, match=match):
        learner.fit(ss.preset("ts2vec"), series, TINY)


@pytest.mark.parametrize("profile,match", [
    ("huge", r"^profile: got 'huge'; allowed: \['smoke', 'screen', 'small', 'paper'\]$"),
    ({"iters": 3}, "profile.iters"), ({"n_iters": 0}, "profile.n_iters"),
    (3, "profile: got 3"),
])
def test_bad_profile_is_refused(train_uni, profile, match):
    with pytest.raises(ValueError, match=match):
        learner.fit(ss.preset("ts2vec"), train_uni, profile)


def test_encode_checks_its_input(train_uni):
    enc, _ = learner.fit(ss.preset("ts2vec"), train_uni, TINY, seed=0)
    with pytest.raises(ValueError, match="C = 1"):
        enc.encode(np.zeros((1, 10, 3)))
    with pytest.raises(ValueError, match="sliding_padding"):
        enc.encode(train_uni[:, :10], sliding_padding=-1)


def test_forward_last_equals_the_full_forward(etth1_windows):
    """Receptive-field pruning computes the same last-step representation, for any spec."""
    import torch
    for seed in range(40):
        spec = ss.sample(seed)
        x = torch.from_numpy(etth1_windows["multi" if seed % 2 else "uni"][:, :37])
        model = learner.build_model(spec, x.shape[2]).eval()
        with torch.no_grad():
            pruned, full = model.forward_last(x), model(x)[:, -1]
        assert pruned.shape == full.shape
        assert (pruned - full).abs().max() <= 1e-5 * full.abs().max() + 1e-6, seed


def test_a_loss_with_nothing_to_contrast_trains_nothing_without_crashing(train_uni):
    """One training section (B = 1) and instance contrast only: every loss term is 0."""
    spec = ss.preset("ts2vec")
    spec["PairCell"]["contrasts"] = ["instance"]
    _, rec = learner.fit(spec, train_uni[:, :150], {"n_iters": 3, "max_length": 200}, seed=0)
    assert rec["status"] == "ok" and rec["loss_curve"] == [0.0, 0.0, 0.0]

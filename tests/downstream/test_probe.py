"""The TS2Vec forecasting probe on real ETTh1: sample alignment, the raw-lookback reference
figures, and leakage (nothing after the validation split changes a validation score)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import downstream as ds
import search_spaces as ss
from search_spaces import learner
from downstream.probes import lookback_features, pred_samples
from nas.engine.evaluate import score_spec

HORIZONS = [24, 48, 168, 336, 720]


@pytest.fixture(scope="module")
def etth1_task(data_dir):
    return ds.make_task(ds.load("ETTh1", data_dir), univariate=True)


def test_pred_samples_align_feature_t_with_the_next_h_steps():
    y = np.arange(40, dtype=float).reshape(20, 2)  # y[t] = (2t, 2t+1)
    feats = np.arange(20, dtype=float)[:, None]
    X, Y = pred_samples(feats, y, (5, 15), horizon=3, drop=1)
    assert X[:, 0].tolist() == list(range(6, 12))  # t in [start+drop, end-H)
    t = 6
    assert Y[0].tolist() == [2 * (t + 1), 2 * (t + 1) + 1, 2 * (t + 2), 2 * (t + 2) + 1,
                             2 * (t + 3), 2 * (t + 3) + 1]
    assert Y.max() <= y[14].max()  # no target crosses the split's end
    y[9, 0] = np.nan
    X2, _ = pred_samples(feats, y, (5, 15), horizon=3, drop=1)
    assert X2[:, 0].tolist() == [9, 10, 11]  # targets of t = 6, 7, 8 include y[9] = NaN


def test_lookback_features_are_causal(etth1_task):
    f = lookback_features(etth1_task, 500, length=200)
    x = etth1_task.x[:, -1]
    assert f.shape == (500, 200)
    np.testing.assert_array_equal(f[300], x[101:301])
    assert (f[10, :189] == 0).all() and np.array_equal(f[10, 189:], x[:11])


def test_raw_lookback_reference_matches_the_known_figures(etth1_task):
    """Ridge on the raw 200-step window, ETTh1 univariate: test MSE 0.027, 0.041, 0.075,
    0.099, 0.167 (issue #3; TS2Vec's own protocol)."""
    result = ds.probe_lookback(etth1_task, HORIZONS, test=True)
    mse = [result["horizons"][h]["test"]["mse"] for h in HORIZONS]
    np.testing.assert_allclose(mse, [0.027, 0.041, 0.075, 0.099, 0.167], rtol=0.05)
    assert all(result["horizons"][h]["alpha"] in ds.RIDGE_ALPHAS for h in HORIZONS)
    assert result["val_mse"] == pytest.approx(
        np.mean([result["horizons"][h]["val"]["mse"] for h in HORIZONS]))


def _val_only(result):
    return {h: (r["alpha"], r["val"]) for h, r in result["horizons"].items()}


# about 15 s each, under -m slow to keep the default run under 10 minutes; there
# test_validation_probe_never_reads_test_rows checks the rows the probe reads
@pytest.mark.slow
@pytest.mark.parametrize("features", ["repr", "repr+raw"])
def test_changing_rows_after_validation_leaves_validation_scores_bit_identical(features):
    data = ds.load("co2")  # 2,284 weeks: encoding the whole series stays cheap
    data = dataclasses.replace(data, values=data.values.copy())  # the loader's is read-only
    task = ds.make_task(data, univariate=True)
    end = task.splits["val"][1]
    data.values[end:] = np.random.default_rng(1).normal(0, 100, data.values[end:].shape)
    changed = ds.make_task(data, univariate=True)
    assert not np.array_equal(task.x[end:], changed.x[end:])
    horizons = [24, 168]
    spec = ss.preset("ts2vec")
    a = score_spec(spec, task, horizons, {"n_iters": 2, "max_length": 128}, seed=0,
                   features=features)
    b = score_spec(spec, changed, horizons, {"n_iters": 2, "max_length": 128}, seed=0,
                   features=features)
    assert a["status"] == b["status"] == "ok"
    assert _val_only(a) == _val_only(b) and a["val_mse"] == b["val_mse"]
    assert "test" not in a["horizons"][24]
    la, lb = (ds.probe_lookback(t, horizons, test=True) for t in (task, changed))
    assert _val_only(la) == _val_only(lb)
    assert la["horizons"][24]["test"] != lb["horizons"][24]["test"]


def test_validation_probe_never_reads_test_rows(etth1_task):
    class Spy:
        def encode(self, x, causal, sliding_padding, batch_size):
            self.shape, self.causal = x.shape, causal
            return np.random.default_rng(0).normal(size=(1, x.shape[1], 4))

    spy = Spy()
    ds.probe_encoder(spy, etth1_task, [24])
    assert spy.shape[1] == etth1_task.splits["val"][1] and spy.causal


def test_strided_probe_encodes_only_what_it_fits_and_matches_full_encoding(data_dir):
    from seeds.suite import SLICES, load_slice

    task = load_slice(SLICES[12], data_dir)  # illness, univariate: 966 rows
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(layers=2, hidden=32, repr_dim=64)
    encoder, _ = learner.fit(spec, task.x[None, :task.splits["train"][1]], "smoke", seed=0)
    end = task.splits["val"][1]
    full = ds.encode_task(encoder, task, end)
    steps = np.array([3, 200, 201, 500, end - 1])
    part = ds.encode_task(encoder, task, end, steps=steps)
    np.testing.assert_allclose(part[steps], full[steps], rtol=1e-5, atol=1e-6)
    assert np.isnan(np.delete(part, steps, axis=0)).all()
    one = ds.probe_encoder(encoder, task, [12], stride=1)
    four = ds.probe_encoder(encoder, task, [12], stride=4)
    tr = task.splits["train"]
    n_train = len(range(tr[0] + ds.PADDING, tr[1] - 12))
    X, Y = pred_samples(full, task.y, tr, 12, ds.PADDING, stride=4)
    assert len(X) == len(range(0, n_train, 4))
    np.testing.assert_array_equal(Y[1], pred_samples(full, task.y, tr, 12, ds.PADDING)[1][4])
    # validation samples are all kept; on this short series (464 training samples) the
    # strided Ridge is fitted on 116 samples only, which is why seeds pick the stride per task
    assert four["horizons"][12]["val"]["n_samples"] == one["horizons"][12]["val"]["n_samples"]
    assert np.isfinite(four["val_mse"]) and four["val_mse"] != one["val_mse"]
    with pytest.raises(ValueError, match="stride: got 0"):
        ds.probe_encoder(encoder, task, [12], stride=0)

"""The Titans forecaster of ``downstream/titans`` on a forecasting task (real ETTh1), with the
tiny Titans configuration: the argument checks (mode, horizon against the splits and the
lookback, split, a task whose inputs are not its targets, features of the wrong length) of
``check_mode``, ``check_horizon``, ``task_windows`` and ``evaluate_titans``; and a frozen real
encoder (a tiny TS2Vec from the project's learner) as input: causal features, no leakage through
them into a mode-B stream, ``evaluate_titans`` end to end, and the raw-lookback Ridge reference
rows scoring the same samples but the first.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import downstream as ds
import search_spaces as ss
from downstream.titans import (MODES, TitansConfig, TitansForecaster, causal_features,
                               check_horizon, check_mode, errors_mode_a, errors_stream,
                               evaluate_titans, reference_rows, task_windows)
from search_spaces import learner

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TitansConfig(width=16, depth=1, segment_len=8, longterm_tokens=2, persist_tokens=2,
                   heads=2, dim_head=8, ff_mult=1)
STREAM_L, H = 16, 4  # lookback and horizon of the stream samples


# ------------------------------------------------------------------------------------------
# argument checks


@pytest.fixture(scope="module")
def etth1_data(data_dir):
    return ds.load("ETTh1", data_dir)


@pytest.fixture(scope="module")
def etth1_task(etth1_data):
    """Multivariate ETTh1: the 7 variables in and out, 7 calendar covariates in x."""
    return ds.make_task(etth1_data)


def test_check_mode():
    assert [check_mode(m) for m in MODES] == ["A", "B", "C"]
    for bad in ("D", "a", "", None, 1):
        with pytest.raises(ValueError, match=r"^mode: got .*; allowed: \['A', 'B', 'C'\]"):
            check_mode(bad)


def test_check_horizon(etth1_task):
    task = etth1_task
    for bad in (0, -4, 1.5, True, "96", None):
        with pytest.raises(ValueError, match=r"^horizon: got .*; allowed: a positive int"):
            check_horizon(task, bad)
    assert check_horizon(task, 96) == 96
    assert type(check_horizon(task, np.int64(192))) is int
    # the longest accepted H leaves one sample in the shortest split (val / test: 2880 rows)
    longest = task.splits["val"][1] - task.splits["val"][0]
    assert check_horizon(task, longest) == longest
    windows = task_windows(task, longest)
    assert all(len(windows.starts(b)) >= 1 for b in task.splits.values())
    assert len(windows.starts(task.splits["val"])) == 1
    with pytest.raises(ValueError, match=r"^horizon: H=2881 is too long for the val split"):
        check_horizon(task, longest + 1)
    # the lookback counts in the first split
    train = task.splits["train"][1]
    assert check_horizon(task, 100, lookback=train - 100) == 100
    with pytest.raises(ValueError, match=r"^horizon: H=101 is too long for the train split"):
        check_horizon(task, 101, lookback=train - 100)


def test_task_windows(etth1_task, etth1_data):
    task = etth1_task
    assert task.n_covariates == 7 and task.inputs == task.targets
    data = task_windows(task, 24, lookback=48)
    # the variables only, the calendar covariates left out: the values are the targets
    assert data.values.shape == (len(task.x), 7) and data.y.shape == (len(task.x), 7)
    np.testing.assert_allclose(data.values.numpy(), task.y, rtol=1e-5, atol=1e-5)
    assert data.lookback == 48 and data.horizon == 24 and data.features is None
    one = task_windows(ds.make_task(etth1_data, target="OT", univariate=True), 24)
    assert one.values.shape[1] == 1 and one.y.shape[1] == 1
    other = ds.make_task(etth1_data, target="OT", univariate=False)  # 7 in, OT out
    with pytest.raises(ValueError, match=r"^target: got \['OT'\] with inputs \['HUFL'"):
        task_windows(other, 24)
    with pytest.raises(ValueError, match=r"^features: got 10 rows; allowed: 14400"):
        task_windows(task, 24, features=np.zeros((10, 3)))


def test_evaluate_titans_refuses_bad_arguments_before_training(etth1_task):
    with pytest.raises(ValueError, match=r"^mode: got 'D'"):
        evaluate_titans(etth1_task, 96, modes=("A", "D"), config=CFG)
    with pytest.raises(ValueError, match=r"^split: got 'train'; allowed: \['val', 'test'\]"):
        evaluate_titans(etth1_task, 96, split="train", config=CFG)
    with pytest.raises(ValueError, match=r"^horizon: got 0"):
        evaluate_titans(etth1_task, 0, config=CFG)


# ------------------------------------------------------------------------------------------
# a frozen encoder as input


@pytest.fixture(scope="module")
def small_task(etth1_task):
    """The first 160 rows of multivariate ETTh1 (real), split 96 / 16 / 48."""
    n = 160
    return dataclasses.replace(etth1_task, x=etth1_task.x[:n].copy(), y=etth1_task.y[:n].copy(),
                               splits={"train": (0, 96), "val": (96, 112), "test": (112, n)})


@pytest.fixture(scope="module")
def encoder(small_task):
    """A tiny TS2Vec trained by the project's learner on the training rows (one step)."""
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(layers=2, hidden=32, repr_dim=64)
    enc, _ = learner.fit(spec, small_task.x[None, :small_task.splits["train"][1]],
                         {"n_iters": 1, "max_length": 64}, seed=0)
    return enc


def _rewrite_task(task, cut: int):
    rng = np.random.default_rng(7)
    x, y = task.x.copy(), task.y.copy()
    x[cut:] = rng.normal(0.0, 50.0, x[cut:].shape)
    y[cut:] = rng.normal(0.0, 50.0, y[cut:].shape)
    return dataclasses.replace(task, x=x, y=y)


def test_encoder_features_are_causal_and_carry_no_future_into_the_stream(small_task, encoder,
                                                                         titans_model):
    """Features by a frozen encoder (``causal_features``) as the input of a mode-B stream:
    rows >= cut rewritten (inputs, covariates included, and labels) change no feature row
    before cut and no error of a sample whose label ends before cut."""
    cut, bounds = 124, (112, 136)
    features = causal_features(encoder, small_task)
    assert features.shape == (160, 64) and np.isfinite(features).all()
    changed_task = _rewrite_task(small_task, cut)
    changed = causal_features(encoder, changed_task)
    np.testing.assert_array_equal(features[:cut], changed[:cut])  # row t sees rows <= t
    assert not np.allclose(features[cut:], changed[cut:])

    def run(task, f):
        data = task_windows(task, H, STREAM_L, f)
        return data.starts(bounds), errors_stream(titans_model(7, H, n_inputs=64), data,
                                                  bounds, "B")

    ts, clean = run(small_task, features)
    _, rewritten = run(changed_task, changed)
    comparable = ts + H <= cut
    assert comparable.sum() == cut - H - bounds[0] + 1
    np.testing.assert_array_equal(clean[0][comparable], rewritten[0][comparable])
    assert (clean[0][~comparable] != rewritten[0][~comparable]).all()
    # the features are read: the same model on features one row late scores otherwise
    model = titans_model(7, H, n_inputs=64)
    late = np.vstack([features[:1], features[:-1]])
    aligned = errors_mode_a(model, task_windows(small_task, H, STREAM_L, features), bounds)
    shifted = errors_mode_a(model, task_windows(small_task, H, STREAM_L, late), bounds)
    assert (np.abs(aligned[0] - shifted[0]) > 1e-6).all()


def test_evaluate_titans_with_encoder_features(small_task, encoder):
    features = causal_features(encoder, small_task)
    kwargs = {"split": "val", "features": features, "config": CFG, "epochs": 1,
              "lookback": STREAM_L, "seed": 0}
    out = evaluate_titans(small_task, H, modes=("A", "C", "B"), **kwargs)
    assert out["inputs"] == "features" and out["horizon"] == H and out["lookback"] == STREAM_L
    assert out["config"] == CFG.to_dict() and list(out["modes"]) == ["A", "C", "B"]
    assert len(out["train"]["val_mse"]) == 1 and out["train"]["best_epoch"] == 0
    n = len(task_windows(small_task, H, STREAM_L).starts(small_task.splits["val"]))
    assert n == 112 - H + 1 - 96
    expected = sum(p.numel() for p in TitansForecaster(7, H, 64, CFG).parameters())
    assert out["parameters"] == expected
    for row in out["modes"].values():
        assert row["n_samples"] == n and len(row["curve"]) == n
        assert np.isfinite(row["mse"]) and row["mse"] == pytest.approx(row["curve"][-1])
    mses = [out["modes"][m]["mse"] for m in ("A", "B", "C")]
    assert len(set(mses)) == 3
    # B starts from the trained weights, also after C changed them
    alone = evaluate_titans(small_task, H, modes=("B",), **kwargs)
    assert alone["modes"]["B"]["mse"] == out["modes"]["B"]["mse"]


@pytest.mark.parametrize("split", ["val", "test"])
def test_reference_rows_score_titans_samples_but_the_first(small_task, split):
    """The raw-lookback Ridge's sample t - 1 (feature at t - 1, label rows [t, t + H)) is
    Titans' sample t; the split's first Titans sample has no Ridge twin."""
    ridge = reference_rows(small_task, H, split, lookback=STREAM_L)["raw_ridge"]
    n = len(task_windows(small_task, H, STREAM_L).starts(small_task.splits[split]))
    assert ridge["n_samples"] == n - 1
    assert np.isfinite(ridge["mse"])


def test_rlinear_ridge_is_a_ridge_on_mean_removed_windows(etth1_task):
    """ETTh1 H = 96 on its standard splits: the RLinear-style reference equals sklearn's Ridge
    (at the chosen alpha) fitted on each channel's training window minus its mean, and beats
    the raw-lookback Ridge (0.383 against 0.501)."""
    from sklearn.linear_model import Ridge

    from downstream.longterm import rlinear_ridge
    from downstream.probes import RIDGE_ALPHAS

    out = rlinear_ridge(etth1_task, 96)
    assert out["alpha"] in RIDGE_ALPHAS
    data = task_windows(etth1_task, 96)

    def centred(split):
        """-> window minus its mean (B * C, L), label minus it (B, H, C), the mean (B, 1, C)."""
        ts = data.starts(etth1_task.splits[split])
        x, _ = data.inputs(ts)
        mean = x.mean(1, keepdim=True)
        flat = (x - mean).transpose(1, 2).reshape(-1, 96).numpy()
        return flat, (data.labels(ts) - mean).numpy(), mean.numpy()

    x, y, _ = centred("train")
    ridge = Ridge(alpha=out["alpha"]).fit(x, y.transpose(0, 2, 1).reshape(-1, 96))
    xt, yt, mt = centred("test")
    pred = ridge.predict(xt).reshape(len(yt), 7, 96).transpose(0, 2, 1)
    mse = float(((pred - yt) ** 2).mean())
    assert out["n_samples"] == len(yt)
    assert out["mse"] == pytest.approx(mse, rel=1e-4)
    raw = reference_rows(etth1_task, 96)
    assert out["mse"] == pytest.approx(raw["rlinear_ridge"]["mse"])
    assert out["mse"] < raw["raw_ridge"]["mse"] - 0.1
    with pytest.raises(ValueError, match=r"^split: got 'train'; allowed: \['val', 'test'\]"):
        rlinear_ridge(etth1_task, 96, "train")


def test_rlinear_ridge_leaves_out_missing_labels(etth1_task):
    """Missing labels (NaN in y, as in the weekly CO2 series) leave their channel's training
    samples out and are skipped in scoring; a split with no complete label is refused."""
    from downstream.longterm import rlinear_ridge

    y = etth1_task.y.copy()
    y[1000:1010, 2] = np.nan  # training rows
    y[-5:, 0] = np.nan  # the last test rows
    out = rlinear_ridge(dataclasses.replace(etth1_task, y=y), 96)
    assert np.isfinite(out["mse"]) and out["n_samples"] == 2785
    assert out["mse"] == pytest.approx(rlinear_ridge(etth1_task, 96)["mse"], abs=2e-3)
    y[etth1_task.splits["val"][0]:etth1_task.splits["val"][1]] = np.nan
    with pytest.raises(ValueError, match=r"^val: got no sample with a complete label"):
        rlinear_ridge(dataclasses.replace(etth1_task, y=y), 96)

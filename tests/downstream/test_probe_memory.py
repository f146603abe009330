"""The Ridge probe's alpha grid (issue 14, item 1): one factorisation for all 13 alphas gives
sklearn's Ridge at every alpha and TS2Vec's selection, keeps only the best alpha's model, and
its peak memory is what :func:`downstream.estimate_probe_bytes` says, on real ETTh1/illness.

Tolerance: both solve the same float64 normal equations, sklearn by a Cholesky factorisation
per alpha, ``fit_ridge`` by one eigendecomposition of the Gram matrix; they differ only in
rounding (the order of floating-point summation), about 1e-12 relative here, so predictions
and coefficients are compared at rtol 1e-8 (far above rounding, far below any real change:
the next alpha of the grid moves them by 1e-3 or more).
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import downstream as ds
from downstream import probes
from downstream.probes import lookback_features, pred_samples

RTOL, ATOL = 1e-8, 1e-10


def _samples(task, horizon, train=None):
    features = lookback_features(task, task.splits["test"][1])
    train = train or task.splits["train"]
    return (pred_samples(features, task.y, train, horizon, ds.PADDING)
            + pred_samples(features, task.y, task.splits["val"], horizon)
            + pred_samples(features, task.y, task.splits["test"], horizon))


def _ts2vec_fit_ridge(X_tr, Y_tr, X_va, Y_va):
    """TS2Vec's ``tasks/_eval_protocols.fit_ridge``: one sklearn Ridge per alpha, RMSE + MAE."""
    scores, models = [], []
    for alpha in ds.RIDGE_ALPHAS:
        model = Ridge(alpha=alpha).fit(X_tr, Y_tr)
        pred = model.predict(X_va)
        scores.append(np.sqrt(((pred - Y_va) ** 2).mean()) + np.abs(pred - Y_va).mean())
        models.append(model)
    best = int(np.argmin(scores))
    return models[best], ds.RIDGE_ALPHAS[best]


@pytest.fixture(scope="module")
def etth1_uni(data_dir):
    return ds.make_task(ds.load("ETTh1", data_dir), univariate=True)


@pytest.fixture(scope="module")
def etth1_multi(data_dir):
    return ds.make_task(ds.load("ETTh1", data_dir))


@pytest.mark.parametrize("regime", ["features <= samples", "features > samples"])
def test_every_alpha_equals_sklearn_ridge(etth1_uni, etth1_multi, regime, monkeypatch):
    """Univariate ETTh1 (8,416 samples x 200 features: Gram X^T X) and multivariate ETTh1 cut to
    300 training samples x 1,400 features (kernel form X X^T)."""
    if regime == "features <= samples":
        X_tr, Y_tr, X_va, Y_va, X_te, _ = _samples(etth1_uni, 24)
    else:
        X_tr, Y_tr, X_va, Y_va, X_te, _ = _samples(etth1_multi, 24, train=(0, 524))
    assert (X_tr.shape[1] <= len(X_tr)) == (regime == "features <= samples")
    for alpha in ds.RIDGE_ALPHAS:
        monkeypatch.setattr(probes, "RIDGE_ALPHAS", (alpha,))
        model, chosen = ds.fit_ridge(X_tr, Y_tr, X_va, Y_va)
        ref = Ridge(alpha=alpha).fit(X_tr, Y_tr)
        assert chosen == model.alpha == alpha
        np.testing.assert_allclose(model.predict(X_te), ref.predict(X_te), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("horizon", [24, 168])
def test_selection_follows_ts2vec_protocol(etth1_uni, horizon):
    X_tr, Y_tr, X_va, Y_va, X_te, _ = _samples(etth1_uni, horizon)
    model, alpha = ds.fit_ridge(X_tr, Y_tr, X_va, Y_va)
    ref, ref_alpha = _ts2vec_fit_ridge(X_tr, Y_tr, X_va, Y_va)
    assert alpha == ref_alpha
    np.testing.assert_allclose(model.predict(X_te), ref.predict(X_te), rtol=RTOL, atol=ATOL)
    assert ds.RIDGE_ALPHAS == (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def test_float32_features_are_solved_in_float64(etth1_uni):
    X_tr, Y_tr, X_va, Y_va, X_te, _ = _samples(etth1_uni, 24)
    model, alpha = ds.fit_ridge(X_tr.astype(np.float32), Y_tr, X_va.astype(np.float32), Y_va)
    ref, ref_alpha = _ts2vec_fit_ridge(X_tr.astype(np.float32).astype(np.float64), Y_tr,
                                       X_va.astype(np.float32).astype(np.float64), Y_va)
    assert alpha == ref_alpha and model.predict(X_te).dtype == np.float64
    np.testing.assert_allclose(model.predict(X_te.astype(np.float32)),
                               ref.predict(X_te.astype(np.float32).astype(np.float64)),
                               rtol=1e-6, atol=1e-8)


def test_non_finite_features_are_refused(etth1_uni):
    X_tr, Y_tr, X_va, Y_va, _, _ = _samples(etth1_uni, 24)
    X_tr[5, 3] = np.nan
    with pytest.raises(ValueError, match="X_train: got non-finite values"):
        ds.fit_ridge(X_tr, Y_tr, X_va, Y_va)


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name,univariate,horizons", [
    ("illness", False, [90]),       # 386 samples x 1,400 features, 630 outputs: kernel form
    ("ETTh1", True, [24, 168]),     # 8,416 samples x 200 features: Gram X^T X
])
def test_estimate_is_within_a_factor_2_of_the_measured_peak(data_dir, name, univariate,
                                                            horizons):
    """On illness H=90 the former design (13 fitted models kept: 13 x 630 x 1,400 float64
    coefficients = 92 MB) would measure over 2.5x the 37 MB estimate; this test would then fail."""
    task = ds.make_task(ds.load(name, data_dir), univariate=univariate)
    estimate = ds.estimate_task_probe_bytes(task, horizons, test=True)
    peak = _traced_peak(lambda: ds.probe_lookback(task, horizons, test=True))
    assert 0.5 <= estimate / peak <= 2, (estimate, peak)


def test_the_model_keeps_no_coefficient_matrix(data_dir):
    """Kernel form: the model holds the centred samples (M, D) and weights (M, P), not the 13
    or even one (P, D) coefficient matrices."""
    task = ds.make_task(ds.load("illness", data_dir))
    X_tr, Y_tr, X_va, Y_va, _, _ = _samples(task, 90)
    model, _ = ds.fit_ridge(X_tr, Y_tr, X_va, Y_va)
    (m, d), p = X_tr.shape, Y_tr.shape[1]
    held = sum(a.nbytes for a in (model.x_mean, model.basis, model.weights, model.y_mean))
    assert held == 8 * (d + m * d + m * p + p)
    assert m * d + m * p < p * d


def test_estimate_formula_and_its_errors():
    # los_loop multivariate, H=12, validation only: the case of issue 14 (1.5 GB, not 12 GB)
    est = ds.estimate_probe_bytes(1199, 41_400, [12], 207, rows=1612)
    assert 1.4 * 2 ** 30 < est < 1.6 * 2 ** 30
    assert ds.estimate_probe_bytes(100, 10, [1, 5], 2) == 8 * (
        100 * 10 + 2 * 100 * 10 + 4 * 10 * 10 + 2 * 100 * 10 + 10 * 10)
    with pytest.raises(ValueError, match=r"samples: got 0; allowed: an int >= 1"):
        ds.estimate_probe_bytes(0, 10, [1], 1)
    with pytest.raises(ValueError, match=r"horizons: got \[\]"):
        ds.estimate_probe_bytes(10, 10, [], 1)
    with pytest.raises(ValueError, match=r"rows: got 2.5"):
        ds.estimate_probe_bytes(10, 10, [1], 1, rows=2.5)


def test_max_bytes_refuses_the_los_loop_reference_before_any_work(data_dir, monkeypatch):
    """Multivariate los_loop (207 variables, 41,400 lookback features): about 1.7 GiB."""
    task = ds.make_task(ds.load("los_loop", data_dir))

    def no_work(*args, **kwargs):
        raise AssertionError("features were built for a refused probe")

    monkeypatch.setattr(probes, "lookback_features", no_work)
    with pytest.raises(ds.ProbeMemoryError, match=r"^max_bytes: got 1.00 GiB, below the "
                       r"probe's estimated peak memory of 1.7\d GiB \(207 targets x H=12, "
                       r"41400 features, rows up to 2016\); allowed: a larger limit") as info:
        ds.probe_lookback(task, [12], test=True, max_bytes=2 ** 30)
    assert info.value.limit == 2 ** 30 and isinstance(info.value, ValueError)
    assert info.value.estimate == ds.estimate_task_probe_bytes(task, [12], test=True)


def test_max_bytes_lets_a_probe_within_the_limit_run(data_dir):
    task = ds.make_task(ds.load("illness", data_dir))
    estimate = ds.check_probe_memory(task, [24], 200 * 7, None)
    result = ds.probe_lookback(task, [24], max_bytes=estimate + 1)
    assert np.isfinite(result["val_mse"])
    features = lookback_features(task, task.splits["val"][1])
    with pytest.raises(ds.ProbeMemoryError):
        ds.probe(task, [24], features, max_bytes=estimate // 2)
    assert ds.estimate_task_probe_bytes(task, [24], 320, stride=4) < \
        ds.estimate_task_probe_bytes(task, [24], 320)
    for bad in (0, -5, float("nan"), "1G", True):
        with pytest.raises(ValueError, match=rf"^max_bytes: got {bad!r}"):
            ds.probe_lookback(task, [24], max_bytes=bad)

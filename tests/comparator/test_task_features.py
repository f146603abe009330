"""Task features on real data: meta-features and the shipped reference encoder."""
from __future__ import annotations

import numpy as np
import pytest

from comparator.task_features import (
    META_NAMES,
    load_reference,
    meta_features,
    reference_embedding,
    task_features,
)


def test_meta_features_describe_real_series(etth1):
    f = meta_features(etth1[:, -1:], 24, True)
    assert f.shape == (len(META_NAMES),) and np.isfinite(f).all()
    named = dict(zip(META_NAMES, f))
    assert named["acf_1"] > 0.9  # hourly oil temperature is smooth
    assert named["univariate"] == 1 and named["mean_abs_corr"] == 0
    multi = dict(zip(META_NAMES, meta_features(etth1, 24, False)))
    assert multi["log_variables"] == pytest.approx(np.log(7)) and multi["mean_abs_corr"] > 0
    noise = dict(zip(META_NAMES, meta_features(
        np.random.default_rng(0).normal(size=(2000, 1)), 24, True)))
    assert abs(noise["acf_1"]) < 0.1 and noise["spectral_entropy"] > named["spectral_entropy"]
    with pytest.raises(ValueError, match="x: got shape"):
        meta_features(np.zeros(10), 24, True)
    with pytest.raises(ValueError, match="horizon: got 0"):
        meta_features(etth1, 0, True)


def test_reference_embedding_is_deterministic_and_task_sensitive(etth1):
    ref = load_reference()  # shipped weights, loaded with weights_only=True
    a = reference_embedding(ref, etth1[:3000, -1:])
    assert a.shape == (2 * ref.repr_dim,) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, reference_embedding(ref, etth1[:3000, -1:]))
    noise = np.random.default_rng(0).normal(size=(3000, 1)).astype(np.float32)
    assert np.abs(reference_embedding(ref, noise) - a).max() > 1e-2
    full = task_features(etth1[:3000], 24, False, ref)
    assert full.shape == (len(META_NAMES) + 2 * ref.repr_dim,)


def _pearson_lag(v: np.ndarray, lag: int) -> float:
    """The former hand-written autocorrelation: Pearson on the observed lagged pairs."""
    if len(v) <= lag + 1:
        return 0.0
    a, b = v[:-lag], v[lag:]
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or a[keep].std() == 0 or b[keep].std() == 0:
        return 0.0
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def test_autocorrelation_matches_the_former_numbers(etth1):
    from comparator.task_features import ACF_LAGS, _acf
    series = [etth1[:, j].astype(np.float64) for j in range(etth1.shape[1])]
    gappy = series[0].copy()
    gappy[100:400] = np.nan
    gappy[::17] = np.nan
    series += [gappy, np.r_[np.ones(40), np.arange(40.0)], np.ones(30), np.arange(50.0)]
    for v in series:
        for lag in ACF_LAGS:
            assert _acf(v, lag) == pytest.approx(_pearson_lag(v, lag), abs=1e-6), lag
    assert _acf(np.arange(10.0), 64) == 0.0 and _acf(np.r_[np.ones(70), 2.0], 64) == 0.0


def test_the_shipped_reference_is_a_saved_learner(etth1, tmp_path):
    from comparator.task_features import REFERENCE_SPEC, save_reference
    from search_spaces.learner import ContrastiveLearner
    ref = load_reference()
    assert isinstance(ref, ContrastiveLearner) and ref.spec == REFERENCE_SPEC
    assert ref.n_features == 1 and ref.scaling["channels"] == ["co2"]
    save_reference(ref, tmp_path)
    again = load_reference(tmp_path)
    x = etth1[:2000, -1:]
    np.testing.assert_array_equal(reference_embedding(again, x), reference_embedding(ref, x))
    with pytest.raises(ValueError, match=f"^path: {tmp_path / 'none'}/reference_encoder.pt "
                                         "does not exist"):
        load_reference(tmp_path / "none")

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

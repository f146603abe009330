"""Probe features ``repr+raw``: the representation columns then the raw lookback window's, one
Ridge, on the real co2 series."""
from __future__ import annotations

import numpy as np
import pytest

import downstream as ds
import search_spaces as ss
from downstream.probes import lookback_features, probe_features
from search_spaces import learner

HORIZONS = [4, 12]


@pytest.fixture(scope="module")
def co2():
    task = ds.make_task(ds.load("co2"))
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(layers=2, hidden=32, repr_dim=64)
    encoder, _ = learner.fit(spec, task.x[None, :task.splits["train"][1]], "smoke", seed=0)
    return task, encoder


def test_repr_raw_is_the_repr_columns_then_the_raw_window(co2):
    task, encoder = co2
    end = task.splits["val"][1]
    rep = probe_features(encoder, task, end, "repr")
    both = probe_features(encoder, task, end, "repr+raw")
    raw = lookback_features(task, end, ds.PADDING)
    assert rep.shape == (end, 64) and raw.shape == (end, ds.PADDING)
    assert both.shape == (end, rep.shape[1] + raw.shape[1])
    np.testing.assert_array_equal(both[:, :64], rep.astype(np.float64))
    np.testing.assert_array_equal(both[:, 64:], raw)


def test_repr_raw_validation_mse_is_finite_and_differs_from_both(co2):
    task, encoder = co2
    rep = ds.probe_encoder(encoder, task, HORIZONS)
    both = ds.probe_encoder(encoder, task, HORIZONS, features="repr+raw")
    raw = ds.probe_lookback(task, HORIZONS)
    assert np.isfinite(both["val_mse"])
    assert both["val_mse"] != rep["val_mse"] and both["val_mse"] != raw["val_mse"]
    assert "test" not in both["horizons"][4]


def test_unknown_features_are_refused(co2):
    task, encoder = co2
    with pytest.raises(ValueError, match=r"features: got 'raw'; allowed: \['repr', 'repr\+raw'\]"):
        ds.probe_encoder(encoder, task, HORIZONS, features="raw")

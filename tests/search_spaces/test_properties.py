"""Property tests over random specs (hypothesis, derandomised): every sampled spec validates,
survives a JSON round trip with a stable hash, builds, and takes one finite training step on
real ETTh1 windows, univariate and multivariate."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import search_spaces as ss
from search_spaces import learner

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
#: Specs built and trained once each: 80 in the default run, 400 under ``-m slow``.
TRAIN_SETTINGS = settings(SETTINGS, max_examples=80)


@TRAIN_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), multivariate=st.booleans())
def test_random_spec_round_trip_builds_and_trains(seed, multivariate, etth1_windows):
    _round_trip_builds_and_trains(seed, multivariate, etth1_windows)


@pytest.mark.slow
@settings(SETTINGS, max_examples=400)
@given(seed=st.integers(2**32, 2**33), multivariate=st.booleans())
def test_many_more_random_specs_round_trip_build_and_train(seed, multivariate, etth1_windows):
    _round_trip_builds_and_trains(seed, multivariate, etth1_windows)


def _round_trip_builds_and_trains(seed, multivariate, etth1_windows):
    spec = ss.sample(seed)
    assert ss.validate(spec) is spec
    again = json.loads(json.dumps(spec))
    assert again == spec
    assert ss.spec_hash(again) == ss.spec_hash(spec) == ss.spec_hash(ss.canonical(spec))
    assert ss.canonical(ss.canonical(spec)) == ss.canonical(spec)

    x = etth1_windows["multi" if multivariate else "uni"]
    model = learner.build_model(spec, x.shape[2])
    assert learner.count_parameters(model) > 0
    encoder, record = learner.fit(spec, x, {"n_iters": 1}, seed=0)
    assert record["status"] == "ok", record
    assert record["n_iters"] == 1 and math.isfinite(record["loss_curve"][0])
    z = encoder.encode(x[:1, :16])
    assert z.shape == (1, 16, spec["Encoder"]["repr_dim"]) and np.isfinite(z).all()

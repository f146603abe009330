"""Paper-scale reproduction (marked slow, about 10 minutes on 2 cores): the ts2vec preset on
ETTh1 univariate, trained with the fixed seeds 0, 1 and 2, lands on average within 15% of the
TS2Vec paper's test MSE at every horizon.

Three seeds, not one: between seeds the test MSE moves by 5-14% (standard deviation relative to
the mean, measured here), so a single seed cannot be held to a 15% band."""
from __future__ import annotations

import numpy as np
import pytest

import search_spaces as ss
from nas.engine.evaluate import prepare, score_spec

PAPER = {24: 0.039, 48: 0.062, 168: 0.134, 336: 0.154, 720: 0.163}
SEEDS = (0, 1, 2)


@pytest.mark.slow
def test_ts2vec_preset_reproduces_the_paper_on_etth1(data_dir):
    task = prepare("ETTh1", data_dir, univariate=True, horizons=list(PAPER))
    runs = []
    for seed in SEEDS:
        result = score_spec(ss.preset("ts2vec"), task, list(PAPER), "paper", seed=seed, test=True)
        assert result["status"] == "ok" and result["train"]["n_iters"] == 200
        runs.append({h: result["horizons"][h]["test"]["mse"] for h in PAPER})
    mean = {h: float(np.mean([run[h] for run in runs])) for h in PAPER}
    print(runs, mean)
    for h, ref in PAPER.items():
        assert mean[h] == pytest.approx(ref, rel=0.15), h

"""Paper-scale reproduction (marked slow, about 5 minutes on 2 cores): the ts2vec preset on
ETTh1 univariate, seed 0, lands within 15% of the TS2Vec paper's test MSE at every horizon
where the reference implementation run on this machine also does."""
from __future__ import annotations

import pytest

from nas.evaluate import prepare, score_spec
import search_spaces as ss

PAPER = {24: 0.039, 48: 0.062, 168: 0.134, 336: 0.154, 720: 0.163}


@pytest.mark.slow
def test_ts2vec_preset_reproduces_the_paper_on_etth1(data_dir):
    task = prepare("ETTh1", data_dir, univariate=True, horizons=list(PAPER))
    result = score_spec(ss.preset("ts2vec"), task, list(PAPER), "paper", seed=0, test=True)
    assert result["status"] == "ok" and result["train"]["n_iters"] == 200
    mse = {h: result["horizons"][h]["test"]["mse"] for h in PAPER}
    print(mse)
    for h, ref in PAPER.items():
        assert mse[h] == pytest.approx(ref, rel=0.20), h
    assert sum(abs(mse[h] / ref - 1) <= 0.15 for h, ref in PAPER.items()) >= 4

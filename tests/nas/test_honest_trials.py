"""Honest trials: a spec whose training learns nothing (an identity encoder cell, cross-scale
contrast only, one training section: one item per contrast group, so the loss is exactly 0.0
and has no gradient) is recorded as ``degenerate`` and never wins; the end of a search reports
the training gain of the top rows and the reference rows' test metrics."""
from __future__ import annotations

import json
import math

import pytest

import search_spaces as ss
from nas.cli.report import format_leaderboard
from nas.engine.evaluate import is_degenerate, prepare
from nas.engine.results import leaderboard
from nas.engine.strategies.base import fitness
from nas.engine.trial import run_trial

HORIZONS = [4, 12]
#: Profile smoke with the crop lifted, so co2's 1,598 training steps are one section.
ONE_SECTION_SMOKE = {"n_iters": 4, "max_length": None, "max_seconds": 60.0}


def degenerate_spec() -> dict:
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(steps=1, layers=2, cell=[[0, "identity"]], hidden=32, repr_dim=64)
    spec["PairCell"]["contrasts"] = ["cross_scale"]
    spec["Train"]["max_train_length"] = 3000
    ss.validate(spec)
    return spec


@pytest.fixture(scope="module")
def co2_task():
    import dataclasses

    return dataclasses.asdict(prepare("co2", None, None, False, HORIZONS))


def test_is_degenerate_reads_the_loss_curve():
    assert is_degenerate([0.0, 0.0, 0.0]) and is_degenerate([0.0])
    assert is_degenerate([2.5, 2.5, 2.5])
    assert not is_degenerate([2.5, 2.4, 2.5]) and not is_degenerate([2.5])
    assert not is_degenerate([])


def test_the_identity_cross_scale_spec_is_degenerate_and_never_ranks_first(co2_task):
    row = run_trial(1, degenerate_spec(), co2_task, HORIZONS, ONE_SECTION_SMOKE, seed=0)
    assert row["status"] == "degenerate", row["error"]
    assert math.isfinite(row["val_mse"]) and "degenerate" in row["error"]
    assert fitness(row) == math.inf
    other = {**row, "trial": 0, "spec_hash": "x" * 16, "status": "ok", "error": None,
             "val_mse": row["val_mse"] * 10}
    failed = {**row, "trial": 2, "status": "failed", "val_mse": None, "metrics": None}
    board = leaderboard([row, failed, other])
    assert [r["trial"] for r in board] == [0, 1, 2]
    assert [r["rank"] for r in board] == [1, None, None]


def test_a_normal_smoke_trial_is_ok_and_repr_raw_reaches_the_trial(co2_task):
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(layers=2, hidden=32, repr_dim=64)
    a = run_trial(0, spec, co2_task, HORIZONS, "smoke", seed=0)
    b = run_trial(0, spec, co2_task, HORIZONS, "smoke", seed=0, features="repr+raw")
    assert a["status"] == b["status"] == "ok"
    assert a["val_mse"] != b["val_mse"]


def test_leaderboard_printout_shows_gain_and_reference_test_metrics():
    metrics = {"4": {"val": {"mse": 0.1, "mae": 0.2}}}
    rows = [{"trial": 0, "spec_hash": "a" * 16, "status": "ok", "val_mse": 0.1,
             "metrics": metrics, "n_params": 10, "seconds": 1.0},
            {"trial": 1, "spec_hash": "b" * 16, "status": "degenerate", "val_mse": 0.05,
             "metrics": metrics, "n_params": 10, "seconds": 1.0}]
    test = {"mse": 0.3, "mae": 0.4, "mse_raw": 3.0}
    summary = {"config": {"horizons": [4], "features": "repr+raw"}, "n_trials": 2,
               "n_failed": 1, "run_dir": "r", "references": {}, "leaderboard":
               leaderboard(rows), "training_gain": {"0": {"gain": 0.0123, "random_val_mse": 1}},
               "best_test": {"4": {"test": test, "references": {
                   "raw_lookback": {"mse": 0.25}, "random_encoder": {"mse": 0.5}}}}}
    text = format_leaderboard(summary)
    assert "0.0123" in text and "raw_lookback MSE 0.2500" in text
    assert "random_encoder MSE 0.5000" in text and "repr+raw" in text
    first = [line for line in text.splitlines() if line.strip().startswith("1 ")]
    assert first and "aaaa" in first[0] and "degenerate" in text
    json.dumps(summary)


def test_a_search_ranks_the_degenerate_spec_last_and_reports_gain_and_references(tmp_path):
    import ray

    from nas.engine.runner import search

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = search({"data": "co2", "horizons": HORIZONS, "profile": ONE_SECTION_SMOKE,
                          "trials": 2, "extra_specs": [degenerate_spec()], "workers": 2,
                          "features": "repr+raw"}, tmp_path / "run", progress=False)
    finally:
        ray.shutdown()
    board = summary["leaderboard"]
    assert [(r["trial"], r["status"], r["rank"]) for r in board] == [(0, "ok", 1),
                                                                     (1, "degenerate", None)]
    assert summary["config"]["features"] == "repr+raw"
    assert set(summary["training_gain"]) == {"0"}
    gain = summary["training_gain"]["0"]
    assert gain["gain"] == pytest.approx(gain["random_val_mse"] - board[0]["val_mse"])
    # trial 0 is the ts2vec preset at the run's seed: its untrained run, taken from the best
    # spec's test references, is the one references.json scores on validation
    assert gain["random_val_mse"] == pytest.approx(
        summary["references"]["random_encoder"]["val_mse"], rel=1e-6)
    refs = summary["best_test"]["4"]["references"]
    assert set(refs) == {"raw_lookback", "random_encoder"}
    assert refs["raw_lookback"]["mse"] > 0 and refs["raw_lookback"]["mse"] != \
        summary["best_test"]["4"]["test"]["mse"]
    saved = json.loads((tmp_path / "run" / "best_test.json").read_text())
    assert saved["12"]["references"]["random_encoder"]["n_samples"] > 0


def test_features_are_part_of_the_run_plan(tmp_path):
    from nas.engine.runner import PLAN_KEYS, check_config, merge_stored
    from nas.engine.store import RunStore

    config = check_config({"data": "co2", "trials": 2, "features": "repr+raw"})
    store = RunStore(tmp_path)
    store.set_config({k: config[k] for k in PLAN_KEYS})
    store.close()
    assert merge_stored(tmp_path, {}, resume=True)["features"] == "repr+raw"
    with pytest.raises(ValueError, match="features: got 'repr' but the run"):
        merge_stored(tmp_path, {"features": "repr"}, resume=True)
    with pytest.raises(ValueError, match=r"features: got 'raw'; allowed"):
        check_config({"data": "co2", "trials": 2, "features": "raw"})
    assert check_config({"data": "co2", "trials": 2})["features"] == "repr"

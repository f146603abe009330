"""``ctsnas forecast --model titans`` and ``ctsnas search --downstream titans`` end to end, on a
short real series: the first 340 weeks of the embedded Mauna Loa CO2 series (standard split
70 / 10 / 20 %: 237 / 35 / 68 rows), lookback 96, H = 8, one training epoch."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import ray

import search_spaces as ss
from nas.cli import main
from nas.cli.report import format_leaderboard
from nas.engine.store import RunStore
from search_spaces.learner import ContrastiveLearner

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H = 8
N_VAL, N_TEST = 35 - H + 1, 68 - H + 1  # samples whose labels lie inside the split


def forecast(capsys, *argv):
    code = main(["forecast", "--quiet", "--model", "titans", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_titans_scores_the_three_modes_beside_the_ridge_and_writes_the_curves(co2_csv, tmp_path,
                                                                             capsys):
    png = tmp_path / "titans.png"
    code, out, _ = forecast(capsys, "--data", co2_csv, "--horizon", H, "--mode", "A,B,C",
                            "--epochs", 1, "--split", "val", "--curve", png, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["input"] == "raw values" and result["lookback"] == 96
    assert list(result["modes"]) == ["A", "B", "C"]
    for row in result["modes"].values():
        assert row["n_samples"] == N_VAL and math.isfinite(row["mse"])
        assert row["curve"][-1] == [N_VAL, pytest.approx(row["mse"], rel=1e-6)]
    modes = result["modes"]
    assert modes["B"]["mse"] != modes["A"]["mse"]  # the memory state is carried in B
    assert modes["C"]["mse"] != modes["B"]["mse"]  # and the weights learn online in C
    assert len(result["train"]["val_mse"]) == 1 and result["train"]["best_epoch"] == 0
    assert result["references"]["raw_ridge"]["n_samples"] == N_VAL - 1
    assert png.stat().st_size > 1000 and result["curve_png"] == str(png)


def test_titans_reads_a_saved_encoders_representations(co2_csv, tmp_path, capsys):
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    ContrastiveLearner(ss.preset("ts2vec"), 8, seed=3).save(good)  # 7 calendar + 1 variable
    ContrastiveLearner(ss.preset("ts2vec"), 3, seed=3).save(bad)
    code, out, _ = forecast(capsys, "--data", co2_csv, "--horizon", H, "--epochs", 1,
                            "--encoder", good, "--split", "val", "--curve", tmp_path / "c.png")
    assert code == 0
    assert "input: frozen good.pt" in out and "mode A (fresh memory)" in out
    assert f"{N_VAL} samples" in out and "raw-lookback Ridge" in out
    code, out, err = forecast(capsys, "--data", co2_csv, "--horizon", H, "--encoder", bad)
    assert code == 2 and out == "" and "--encoder:" in err and "takes 3 input channels" in err


@pytest.mark.parametrize("argv,message", [
    (["--mode", "D"], "--mode: got 'D'; allowed: one or more of ['A', 'B', 'C']"),
    (["--mode", "A,A"], "--mode: got 'A,A'"),
    (["--arch", "ts2vec"], "--arch: got 'ts2vec' with model titans"),
    (["--memory-read", "index"], "--memory-read: got 'index' with model titans"),
    (["--no-label-delay"], "--no-label-delay: got True with model titans"),
    (["--horizon", 5000], "--horizon: H=5000 is too long for the train split"),
    (["--epochs", 0], "--epochs: got 0; allowed: an int >= 1"),
    (["--split", "train"], "--split: got 'train'"),
])
def test_bad_titans_input_is_one_line_exit_2(co2_csv, capsys, argv, message):
    code, out, err = forecast(capsys, "--data", co2_csv, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_titans_with_the_linear_skip_beside_both_ridges(co2_csv, capsys):
    code, out, _ = forecast(capsys, "--data", co2_csv, "--horizon", H, "--epochs", 1,
                            "--split", "val", "--linear-skip", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["config"]["linear_skip"] is True
    plain = main(["forecast", "--quiet", "--model", "titans", "--data", str(co2_csv),
                  "--horizon", str(H), "--epochs", "1", "--split", "val", "--json"])
    assert plain == 0
    without = json.loads(capsys.readouterr().out)
    assert result["parameters"] == without["parameters"] + 96 * H + H  # the (L -> H) map
    assert result["modes"]["A"]["mse"] != without["modes"]["A"]["mse"]
    for ref in ("raw_ridge", "rlinear_ridge"):
        assert math.isfinite(result["references"][ref]["mse"])
    assert result["references"]["rlinear_ridge"]["n_samples"] == N_VAL


@pytest.mark.parametrize("model,argv,message", [
    ("ogd", ["--mode", "A"], "--mode: got 'A' with model ogd; allowed: only with model titans"),
    ("timellm", ["--linear-skip"],
     "--linear-skip: got True with model timellm; allowed: only with model titans"),
    ("fsnet", ["--linear-skip"], "--linear-skip: got True with model fsnet"),
])
def test_titans_options_are_refused_for_the_other_models(co2_csv, capsys, model, argv, message):
    code = main(["forecast", "--quiet", "--model", model, "--data", str(co2_csv), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_titans_trial_is_scored_by_the_mode_a_validation_mse(co2_csv):
    """What a search worker runs for ``--downstream titans`` (no Ray): contrastive training,
    then Titans over the frozen encoder, 3 epochs, on the validation split."""
    from nas.engine.evaluate import prepare
    from nas.engine.trial import run_trial

    task = prepare(str(co2_csv), horizons=[H])
    row = run_trial(0, ss.preset("ts2vec"), dataclasses.asdict(task), [H], "smoke", 0,
                    downstream="titans")
    assert row["status"] == "ok", row["error"]
    val = row["metrics"][str(H)]["val"]
    assert set(val) == {"mse", "mae", "epoch_seconds"} and "test" not in row["metrics"][str(H)]
    assert math.isclose(row["val_mse"], val["mse"]) and np.isfinite(val["mae"])


@pytest.mark.slow
def test_a_titans_search_scores_trials_by_the_mode_a_validation_mse(co2_csv, tmp_path, capsys):
    run = tmp_path / "run"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code = main(["search", "--data", str(co2_csv), "--downstream", "titans", "--trials", "1",
                     "--profile", "smoke", "--horizons", str(H), "--quiet", "--json",
                     "--run-dir", str(run)])
    finally:
        ray.shutdown()
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    store = RunStore(run)
    try:
        config, rows = store.get_config(), store.trials()
    finally:
        store.close()
    assert config["downstream"] == "titans" and rows[0]["status"] == "ok"
    val = rows[0]["metrics"][str(H)]["val"]
    assert math.isclose(rows[0]["val_mse"], val["mse"]) and val["epoch_seconds"] > 0
    refs = summary["references"]
    assert set(refs) == {"raw_lookback", "raw_titans", "random_encoder"}
    # trial 0 (the ts2vec preset, the run's seed): its gain reuses the untrained run of the
    # test references
    assert summary["training_gain"]["0"]["random_val_mse"] == pytest.approx(
        refs["random_encoder"]["val_mse"], rel=1e-6)
    assert refs["raw_lookback"]["horizons"][str(H)]["val"]["n_samples"] == N_VAL - 1
    test = summary["best_test"][str(H)]
    assert test["test"]["n_samples"] == N_TEST and np.isfinite(test["test"]["mse"])
    assert set(test["references"]) == {"raw_lookback", "raw_titans", "random_encoder"}
    text = format_leaderboard(summary)
    assert "objective: Titans mode-A validation MSE" in text and "raw_titans" in text


@pytest.mark.parametrize("extra,message", [
    (["--univariate"], "--univariate: got True with --downstream titans"),
    (["--features", "repr+raw"], "--features: got 'repr+raw' with --downstream titans"),
])
def test_titans_search_options_are_checked_before_ray_starts(co2_csv, tmp_path, capsys,
                                                             monkeypatch, extra, message):
    from nas.engine import runner

    monkeypatch.setattr(runner, "init_ray", lambda config: pytest.fail("Ray was started"))
    argv = ["search", "--data", str(co2_csv), "--trials", "1", "--run-dir",
            str(tmp_path / "r"), "--quiet", "--downstream", "titans"]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err

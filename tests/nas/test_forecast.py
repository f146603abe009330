"""``ctsnas forecast`` and ``ctsnas search --downstream fsnet`` end to end, on a short real
series: the first 340 weeks of the embedded Mauna Loa CO2 series as a CSV, its missing weeks
interpolated (online split 20% / 5% / 75%: 68 / 17 / 255 rows), lookback 60, H = 4, at most
one warm-up epoch."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import ray
import torch

import search_spaces as ss
from nas.cli import main
from nas.cli.report import format_leaderboard
from nas.engine.store import RunStore
from search_spaces.learner import ContrastiveLearner


def forecast(capsys, *argv):
    code = main(["forecast", "--quiet", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_forecast_prints_metrics_beside_references_and_writes_the_curve(co2_csv, tmp_path,
                                                                        capsys):
    png = tmp_path / "curve.png"
    code, out, _ = forecast(capsys, "--model", "nomem", "--data", co2_csv, "--horizon", 4,
                            "--epochs", 1, "--split", "val", "--curve", png, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["model"] == "nomem" and result["backbone"] == "untrained ts2vec"
    assert result["n_samples"] == 17 - 4 + 1 and result["label_delay"] is True
    assert math.isfinite(result["mse"]) and math.isfinite(result["mae"])
    assert math.isclose(result["curve"][-1][1], result["mse"], rel_tol=1e-9)
    assert result["curve"][-1][0] == result["n_samples"]
    refs = result["references"]
    assert refs["raw_ridge"]["n_samples"] == refs["last_value"]["n_samples"] == 14
    assert png.stat().st_size > 1000 and result["curve_png"] == str(png)


def test_a_saved_encoder_is_the_pretrained_backbone_and_must_match_the_inputs(co2_csv, tmp_path,
                                                                             capsys):
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    ContrastiveLearner(ss.preset("ts2vec"), 8, seed=3).save(good)  # 7 calendar + 1 variable
    ContrastiveLearner(ss.preset("ts2vec"), 3, seed=3).save(bad)
    code, out, _ = forecast(capsys, "--model", "ogd", "--data", co2_csv, "--horizon", 4,
                            "--epochs", 0, "--encoder", good, "--split", "val", "--curve",
                            tmp_path / "c.png")
    assert code == 0
    assert "ogd over the pretrained good.pt backbone" in out
    assert "raw Ridge (static)" in out and "last value" in out
    code, _, err = forecast(capsys, "--model", "ogd", "--data", co2_csv, "--horizon", 4,
                            "--encoder", bad)
    assert code == 2 and err.startswith("ctsnas: error: --encoder: ") and "takes 3 input" in err


@pytest.mark.parametrize("argv,message", [
    (["--model", "fsnett"], "--model: got 'fsnett'; allowed: ['fsnet', 'fsnet-index'"),
    (["--model", "ogd", "--memory-read", "index"], "--memory-read: got 'index' for model"),
    (["--model", "fsnet", "--memory-read", "weights"], "--memory-read: got 'weights'"),
    (["--model", "fsnet", "--horizon", "10"], "--horizon: H=10 is too long for the train"),
    (["--model", "fsnet", "--horizon", "4", "--split", "train"],
     "--split: got 'train'; allowed: ['val', 'test']"),
])
def test_bad_forecast_input_is_one_line_exit_2(co2_csv, capsys, argv, message):
    code, out, err = forecast(capsys, "--data", co2_csv, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


@pytest.mark.usefixtures("one_torch_thread")
def test_an_fsnet_trial_is_scored_by_the_online_validation_stream(co2_csv):
    """What a search worker runs for ``--downstream fsnet`` (no Ray): contrastive training on
    the online training split, then FSNet over the encoder on the validation stream."""
    from nas.engine.forecast import online_search_task
    from nas.engine.trial import run_trial

    task = online_search_task({"data": str(co2_csv), "horizons": [4]})
    row = run_trial(0, ss.preset("ts2vec"), dataclasses.asdict(task), [4], "smoke", 0,
                    downstream="fsnet")
    assert row["status"] == "ok", row["error"]
    val = row["metrics"]["4"]["val"]
    assert val["n_samples"] == 17 - 4 + 1 and math.isclose(row["val_mse"], val["mse"])
    assert "test" not in row["metrics"]["4"] and np.isfinite(val["mae"])


@pytest.mark.slow
def test_an_online_search_scores_trials_by_the_fsnet_validation_stream(co2_csv, tmp_path,
                                                                      capsys):
    run = tmp_path / "run"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code = main(["search", "--data", str(co2_csv), "--downstream", "fsnet", "--trials", "1",
                     "--profile", "smoke", "--horizons", "4", "--quiet", "--json",
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
    assert config["downstream"] == "fsnet" and rows[0]["status"] == "ok"
    val = rows[0]["metrics"]["4"]["val"]
    assert val["n_samples"] == 17 - 4 + 1 and math.isclose(rows[0]["val_mse"], val["mse"])
    refs = summary["references"]
    assert set(refs) == {"raw_lookback", "last_value", "random_encoder"}
    assert refs["random_encoder"]["val_mse"] != rows[0]["val_mse"]
    # trial 0 (the ts2vec preset, the run's seed): its gain reuses the untrained run of the
    # test references
    assert summary["training_gain"]["0"]["random_val_mse"] == pytest.approx(
        refs["random_encoder"]["val_mse"], rel=1e-6)
    test = summary["best_test"]["4"]
    assert test["test"]["n_samples"] == 255 - 4 + 1 and np.isfinite(test["test"]["mse"])
    assert set(test["references"]) == {"raw_lookback", "last_value", "random_encoder"}
    assert (run / "best_encoder.pt").is_file()
    text = format_leaderboard(summary)
    assert "objective: FSNet cumulative online MSE" in text and "last_value" in text
    assert f"H=4: MSE {test['test']['mse']:.4f}" in text


@pytest.mark.parametrize("extra,message", [
    (["--univariate"], "--univariate: got True with --downstream fsnet"),
    (["--features", "repr+raw"], "--features: got 'repr+raw' with --downstream fsnet"),
    (["--downstream", "tsmixer"],
     "--downstream: got 'tsmixer'; allowed: ['probe', 'fsnet', 'titans']"),
])
def test_online_search_options_are_checked_before_ray_starts(co2_csv, tmp_path, capsys,
                                                             monkeypatch, extra, message):
    from nas.engine import runner

    monkeypatch.setattr(runner, "init_ray", lambda config: pytest.fail("Ray was started"))
    argv = ["search", "--data", str(co2_csv), "--trials", "1", "--run-dir",
            str(tmp_path / "r"), "--quiet"]
    if "--downstream" not in extra:
        argv += ["--downstream", "fsnet"]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")
def test_fsnet_adapts_every_convolution_of_a_searched_cell_and_updates_the_rest(etth1):
    """A cell with gated_tcn (kernel-2 convs), a spatial op and ts2vec_conv, node layout (C=3):
    each conv with kernel > 1 gets an adapter (2 per gated_tcn, 2 per ts2vec_conv, 2 in the
    output block), the graph op stays plain and still learns online."""
    from downstream.online import FSNetConv1d, OnlineForecaster, Windows, run_stream, variant
    from downstream.online import warm_up
    from search_spaces.learner import build_model

    spec = ss.preset("ts2vec")
    spec["Encoder"].update(steps=2, layers=2, hidden=32, repr_dim=64, cell=[
        [0, "gated_tcn"], [0, "diffusion_gcn"], [1, "ts2vec_conv"]])
    ss.validate(spec)
    torch.manual_seed(0)
    encoder = build_model(spec, 3)
    assert encoder.node_layout
    model = OnlineForecaster(encoder, 64, 3, 4, variant("fsnet"))
    layers = [m for m in model.modules() if isinstance(m, FSNetConv1d)]
    assert len(layers) == 2 * 2 + 2 * 2 + 2
    gcn = next(m for m in model.modules() if type(m).__name__ == "DiffusionGCN")
    before = {k: v.clone() for k, v in gcn.state_dict().items()}
    data = Windows(etth1[:400, :3], etth1[:400, :3], lookback=24, horizon=4)
    optimizer, losses = warm_up(model, data, (0, 200), epochs=1)
    result = run_stream(model, optimizer, data, (200, 400))
    assert np.isfinite(result.mse) and result.n_samples == 200 - 4 + 1
    assert any(not torch.equal(v, gcn.state_dict()[k]) for k, v in before.items())
    assert all(layer.g_long.abs().sum() > 0 for layer in layers)

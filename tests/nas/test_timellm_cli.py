"""``ctsnas forecast --model timellm`` end to end on a short real series (the first 340 weeks of
the embedded Mauna Loa CO2 series; standard split 237 / 35 / 68 rows), lookback 96, H = 8,
one epoch, a tiny local GPT-2 with random weights or no language model."""
from __future__ import annotations

import json
import math

import pytest

from downstream.timellm import build_tiny_llm
from nas.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H = 8
N_TEST = 68 - H + 1


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("llm") / "gpt2", "co2", width=32, layers=1,
                          heads=2)


def forecast(capsys, *argv):
    code = main(["forecast", "--quiet", "--model", "timellm", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_timellm_with_tapr_trains_scores_and_resumes_from_its_checkpoint(co2_csv, tiny_llm,
                                                                         tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--data", co2_csv, "--horizon", H, "--tapr", "--llm", tiny_llm, "--json"]
    code, out, _ = forecast(capsys, *argv, "--epochs", 1)
    assert code == 0
    first = json.loads(out)
    assert first["model"] == "timellm+tapr" and first["llm_random_init"] is True
    assert "random weights" in first["llm"] and first["input"] == "raw values"
    assert first["test"]["n_samples"] == N_TEST and math.isfinite(first["test"]["mse"])
    assert first["references"]["raw_ridge"]["n_samples"] == N_TEST - 1
    assert len(first["train"]["val_mse"]) == 1
    code, out, _ = forecast(capsys, *argv, "--epochs", 2)  # resumes: one more epoch
    second = json.loads(out)
    assert second["work_dir"] == first["work_dir"]
    assert second["train"]["val_mse"][0] == first["train"]["val_mse"][0]
    assert len(second["train"]["val_mse"]) == 2 and second["train"]["step"] == 2 * first[
        "train"]["step"]


def test_the_no_lm_ablation_says_so_and_the_random_lm_is_flagged(co2_csv, tiny_llm, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = forecast(capsys, "--data", co2_csv, "--horizon", H, "--llm", "none",
                            "--epochs", 1)
    assert code == 0
    assert "timellm-nollm" in out and "language model: none (one attention layer" in out
    assert "random weights" not in out and "raw-lookback Ridge" in out


@pytest.mark.parametrize("argv,message", [
    (["--gram", "--horizon", H], "--gram: got a training split of 237 rows on co2_340; allowed: at least 416"),
    (["--llm", "/nonexistent", "--horizon", H], "--llm: got '/nonexistent'; allowed: a local directory"),
    (["--mode", "A"], "--mode: got 'A' with model timellm"),
    (["--arch", "ts2vec"], "--arch: got 'ts2vec' with model timellm"),
    (["--split", "val"], "--split: got 'val' with model timellm"),
    (["--epochs", 0], "--epochs: got 0; allowed: an int >= 1"),
    (["--horizon", 5000], "--horizon: H=5000 is too long"),
])
def test_bad_timellm_input_is_one_line_exit_2(co2_csv, tmp_path, monkeypatch, capsys, argv,
                                              message):
    monkeypatch.chdir(tmp_path)
    code, out, err = forecast(capsys, "--data", co2_csv, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_timellm_options_are_refused_for_other_models(co2_csv, capsys):
    code = main(["forecast", "--quiet", "--model", "titans", "--data", str(co2_csv), "--llm",
                 "none"])
    assert code == 2 and "--llm: got 'none' with model titans" in capsys.readouterr().err

"""`ctsnas evaluate` and `ctsnas datasets`: real runs on the embedded co2 series, and bad input
refused (exit 2, clear message) before any training."""
from __future__ import annotations

import json

import pytest

from nas.engine import evaluate as ev
from nas.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_co2_smoke_json(capsys):
    code, out, _ = run(capsys, "evaluate", "--data", "co2", "--profile", "smoke",
                       "--horizons", "4,12", "--json")
    assert code == 0
    result = json.loads(out)
    model = result["model"]
    assert model["status"] == "ok" and set(model["horizons"]) == {"4", "12"}
    for h in ("4", "12"):
        for split in ("val", "test"):
            m = model["horizons"][h][split]
            assert 0 < m["mse"] < 1 and m["mse_raw"] > m["mse"]  # ppm^2 vs standardised
    assert set(result["references"]) == {"raw_lookback", "random_encoder"}
    assert model["encode_seconds"] > 0 and model["ridge_seconds"] > 0


def test_evaluate_prints_a_table(capsys):
    code, out, _ = run(capsys, "evaluate", "--data", "co2", "--profile", "smoke",
                       "--horizons", "4", "--no-references")
    assert code == 0 and "val: row" in out and "test: row" in out and "model" in out


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input was checked")
    monkeypatch.setattr(ev.learner, "fit", refuse)


@pytest.mark.parametrize("argv,message", [
    (["--data", "nowhere"], "neither a dataset name nor a file"),
    (["--data", "co2", "--profile", "huge"], "profile: got 'huge'"),
    (["--data", "co2", "--arch", "simclr"], "arch: got 'simclr'"),
    (["--data", "co2", "--target", "ch4"], "target: got 'ch4'"),
    (["--data", "co2", "--horizons", "24,x"], "--horizons: got '24,x'"),
    (["--data", "co2", "--horizons", "300"], "H=300 is too long for the val split"),
])
def test_bad_input_is_refused_before_training(capsys, no_training, argv, message):
    code, _, err = run(capsys, "evaluate", *argv)
    assert code == 2 and message in err


def test_bad_spec_file_is_refused(capsys, no_training, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"version": 1}')
    code, _, err = run(capsys, "evaluate", "--data", "co2", "--arch", str(path))
    assert code == 2 and "spec.AugCell1: got 'missing'" in err


def test_datasets_lists_where_it_looked(capsys, tmp_path):
    code, out, _ = run(capsys, "datasets", "--data-dir", str(tmp_path))
    assert code == 0 and str(tmp_path) in out and "co2" in out and "missing" in out

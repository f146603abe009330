"""`ctsnas evaluate` and `ctsnas datasets`: real runs on the embedded co2 series, and bad input
refused (exit 2, clear message) before any training."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from nas.engine import evaluate as ev
from nas.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def co2_smoke():
    """``ctsnas evaluate --data co2 --profile smoke --horizons 4,12 --json``: its exit code and
    printed result (one training shared by the tests below)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["evaluate", "--data", "co2", "--profile", "smoke", "--horizons", "4,12",
                     "--json"])
    return code, json.loads(printed.getvalue())


def test_evaluate_co2_smoke_json(co2_smoke):
    code, result = co2_smoke
    assert code == 0
    model = result["model"]
    assert model["status"] == "ok" and set(model["horizons"]) == {"4", "12"}
    for h in ("4", "12"):
        for split in ("val", "test"):
            m = model["horizons"][h][split]
            assert 0 < m["mse"] < 1 and m["mse_raw"] > m["mse"]  # ppm^2 vs standardised
    assert set(result["references"]) == {"raw_lookback", "random_encoder"}
    assert model["encode_seconds"] > 0 and model["ridge_seconds"] > 0


def test_evaluate_prints_a_table(capsys, monkeypatch, co2_smoke):
    """Without --json the same result is printed as a table (the real result of the fixture,
    returned by a stand-in for the training that already ran)."""
    monkeypatch.setattr(ev, "evaluate", lambda *args, **kwargs: co2_smoke[1])
    code, out, _ = run(capsys, "evaluate", "--data", "co2", "--horizons", "4,12")
    assert code == 0 and "val: row" in out and "test: row" in out and "model" in out
    assert "raw_lookback" in out


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



@pytest.fixture(scope="module")
def trained_co2(tmp_path_factory):
    """``ctsnas train`` on co2 (smoke): the saved encoder's path and the printed JSON."""
    path = tmp_path_factory.mktemp("train") / "co2.pt"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "--data", "co2", "--arch", "ts2vec", "--profile", "smoke",
                     "--out", str(path), "--horizons", "4,12", "--json"])
    assert code == 0 and path.is_file()
    return path, json.loads(printed.getvalue())


def test_train_prints_its_record_and_validation_probe(trained_co2):
    path, result = trained_co2
    assert result["out"] == str(path) and result["status"] == "ok"
    assert result["train"]["n_iters"] == 4 and "loss_curve" not in result["train"]
    assert set(result["horizons"]) == {"4", "12"}
    assert all("test" not in r for r in result["horizons"].values())  # validation only


def test_evaluate_encoder_reproduces_the_training_probe_without_training(
        trained_co2, capsys, no_training):
    path, trained = trained_co2
    code, out, _ = run(capsys, "evaluate", "--data", "co2", "--encoder", str(path),
                       "--horizons", "4,12", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["input_scaling_matches"] is True and result["seed"] == 0
    assert result["spec_hash"] == trained["spec_hash"]
    assert set(result["references"]) == {"raw_lookback", "random_encoder"}
    for h in ("4", "12"):
        got, want = result["model"]["horizons"][h], trained["horizons"][h]
        assert got["val"]["mse"] == pytest.approx(want["val"]["mse"], rel=1e-6)
        assert got["alpha"] == want["alpha"] and 0 < got["test"]["mse"] < 1
    code, out, _ = run(capsys, "evaluate", "--data", "co2", "--encoder", str(path),
                       "--horizons", "4", "--no-references")
    assert code == 0 and "not retrained" in out and "raw_lookback" not in out


def test_train_refuses_bad_input_before_training(capsys, no_training, tmp_path):
    for argv, message in [
        (["--out", str(tmp_path / "missing" / "x.pt")], "--out: got"),
        (["--out", str(tmp_path)], "--out: got"),
        (["--out", str(tmp_path / "x.pt"), "--profile", "huge"], "--profile: got 'huge'"),
        (["--out", str(tmp_path / "x.pt"), "--horizons", "300"], "H=300 is too long"),
    ]:
        code, _, err = run(capsys, "train", "--data", "co2", *argv)
        assert code == 2 and message in err, err
    assert not (tmp_path / "x.pt").exists()


def test_evaluate_encoder_refuses_bad_input_before_work(trained_co2, capsys, no_training,
                                                       tmp_path, data_dir, monkeypatch):
    path, _ = trained_co2
    monkeypatch.setattr(ev.ds, "probe_encoder", no_training_probe)
    code, _, err = run(capsys, "evaluate", "--data", "ETTh1", "--data-dir", str(data_dir),
                       "--encoder", str(path))
    assert code == 2 and err.count("\n") == 1
    assert f"--encoder: {path} expects C = 8 input channels; got 14 for ETTh1" in err
    code, _, err = run(capsys, "evaluate", "--data", "co2", "--encoder", str(tmp_path / "no.pt"))
    assert code == 2 and f"--encoder: {tmp_path / 'no.pt'} does not exist" in err
    code, _, err = run(capsys, "evaluate", "--data", "co2", "--encoder", str(path),
                       "--profile", "smoke")
    assert code == 2 and "--profile: got 'smoke'; allowed: omitted with --encoder" in err
    with pytest.raises(SystemExit) as info:  # argparse: --arch and --encoder are exclusive
        main(["evaluate", "--data", "co2", "--encoder", str(path), "--arch", "ts2vec"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def no_training_probe(*args, **kwargs):
    raise AssertionError("probing started before the input was checked")

"""A search saves its best spec's encoder (best_encoder.pt), ``ctsnas evaluate --encoder``
reproduces the search's test metrics from it without training, and a finished run resumed
does not retrain (real local Ray, the embedded co2 series, profile smoke)."""
from __future__ import annotations

import json
import sys

import pytest
import ray
from ray import cloudpickle

from nas.cli import main
from nas.engine import evaluate as ev
from nas.engine.runner import search
from search_spaces.learner import ContrastiveLearner

cloudpickle.register_pickle_by_value(sys.modules[__name__])

BASE = {"data": "co2", "horizons": [4, 12], "profile": "smoke", "seed": 0, "workers": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def refuse_trial(*args, **kwargs):
    raise AssertionError("a finished run retrained a spec")


def _probe_only(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("evaluate --encoder trained")
    monkeypatch.setattr(ev.learner, "fit", refuse)


def test_search_saves_the_best_encoder_and_evaluate_reproduces_its_test_mse(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    summary = search({**BASE, "trials": 2}, run, progress=False)
    path = run / "best_encoder.pt"
    assert summary["best_encoder"] == str(path)
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    model = ContrastiveLearner.load(path)
    assert model.spec == json.loads((run / "best_spec.json").read_text())
    assert model.record["status"] == "ok" and model.record["profile"]["n_iters"] == 4
    assert model.scaling["channels"][-1] == "co2" and model.seed == 0

    best_test = json.loads((run / "best_test.json").read_text())
    _probe_only(monkeypatch)
    code = main(["evaluate", "--data", "co2", "--encoder", str(path), "--horizons", "4,12",
                 "--json", "--no-references"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert result["input_scaling_matches"] is True
    for h in ("4", "12"):
        got = result["model"]["horizons"][h]
        assert got["test"]["mse"] == pytest.approx(best_test[h]["test"]["mse"], rel=1e-6)
        assert got["val"]["mse"] == pytest.approx(best_test[h]["val"]["mse"], rel=1e-6)
    monkeypatch.undo()

    stamps = {p: p.stat().st_mtime_ns for p in (path, run / "best_test.json")}
    again = search({"trials": 2}, run, resume=True, progress=False, trial_fn=refuse_trial)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["best_test"] == summary["best_test"]
    assert again["best_encoder"] == str(path)

    path.unlink()  # one of the two missing: the best spec is retrained, both rewritten
    third = search({"trials": 2}, run, resume=True, progress=False)
    assert path.is_file() and third["best_test"] == summary["best_test"]
    assert ContrastiveLearner.load(path).record["loss_curve"] == model.record["loss_curve"]

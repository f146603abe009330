"""The training of the base Time-LLM of ``downstream/timellm`` (``downstream.timellm.train``),
over the tiny randomly initialised GPT-2 of the ``llm_dir`` fixture with lookback 32, patch 16 /
stride 8 and horizon 8, on ETTh1 rows [0, 200) (LULL, OT) split 80 / 30: a resume from a
checkpoint equals an uninterrupted run, without dropout and with it (torch's RNG is in the
checkpoint, a fixed bug); the checkpoint holds no LM weights; a checkpoint of other prefix
modules or of another horizon is refused with ValueError("checkpoint: ...") (the latter a fixed
bug); ``fit`` restores the best validation epoch; ``evaluate``'s sample counts and scores.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from downstream.longterm import SeriesWindows
from downstream.timellm import TimeLLM
from downstream.timellm import train as train_module
from downstream.timellm.modules import TAPRPrefix
from downstream.timellm.train import evaluate, fit, save_checkpoint, trainable_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")

L, H, PATCH, STRIDE = 32, 8, 16, 8  # PATCH, STRIDE: read by the timellm_model fixture
DESC = "ETTh1 electricity transformer temperature hourly"  # read by llm_dir and timellm_model
SPLITS = {"train": (0, 80), "val": (80, 110)}  # 41 training samples (2 batches), 23 validation
BATCH = 16


# --------------------------------------------------------------------- 1. checkpoints / resume

def _resume_runs(timellm_model, llm, ett, folder: Path, dropout: float) -> dict:
    """One epoch with a checkpoint, a fresh model resuming to two, and a fresh uninterrupted
    two-epoch run, all from the same seeds."""
    data, ckpt = SeriesWindows(ett, ett, L, H), folder / "timellm.pt"
    kwargs = {"batch_size": BATCH, "seed": 0}
    first = fit(timellm_model(llm, dropout=dropout), data, SPLITS, epochs=1, checkpoint=ckpt,
                **kwargs)
    saved = torch.load(ckpt, weights_only=False)
    resumed_model = timellm_model(llm, dropout=dropout)
    resumed = fit(resumed_model, data, SPLITS, epochs=2, checkpoint=ckpt, **kwargs)
    straight_model = timellm_model(llm, dropout=dropout)
    straight = fit(straight_model, data, SPLITS, epochs=2, **kwargs)
    return {"first": first, "saved": saved, "resumed": resumed, "straight": straight,
            "resumed_state": trainable_state(resumed_model),
            "straight_state": trainable_state(straight_model)}


@pytest.fixture(scope="module")
def resume_no_dropout(llm, ett, tmp_path_factory, timellm_model, one_thread_context) -> dict:
    with one_thread_context():
        return _resume_runs(timellm_model, llm, ett, tmp_path_factory.mktemp("resume"), dropout=0.0)


def _check_resume(runs: dict) -> None:
    first, resumed, straight = runs["first"], runs["resumed"], runs["straight"]
    assert len(first["val_mse"]) == 1 and first["step"] == 2
    assert len(resumed["val_mse"]) == len(resumed["train_mse"]) == 2 and resumed["step"] == 4
    assert resumed["train_mse"][0] == first["train_mse"][0]
    assert resumed["val_mse"][0] == first["val_mse"][0]
    assert resumed["train_mse"] == straight["train_mse"]
    assert resumed["val_mse"] == straight["val_mse"]
    assert resumed["best_epoch"] == straight["best_epoch"]
    assert runs["resumed_state"].keys() == runs["straight_state"].keys()
    for k, v in runs["resumed_state"].items():
        assert torch.equal(v, runs["straight_state"][k]), k


def test_resume_equals_an_uninterrupted_run(resume_no_dropout):
    _check_resume(resume_no_dropout)


def test_resume_equals_an_uninterrupted_run_with_dropout(llm, ett, tmp_path, timellm_model):
    _check_resume(_resume_runs(timellm_model, llm, ett, tmp_path, dropout=0.1))


def test_checkpoint_holds_no_language_model_weights(resume_no_dropout):
    saved = resume_no_dropout["saved"]

    def keys(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield k
                yield from keys(v)

    all_keys = [k for k in keys(saved) if isinstance(k, str)]
    assert "head.1.weight" in saved["model"] and "mapping.weight" in saved["model"]
    assert saved["best_state"].keys() == saved["model"].keys()
    assert not [k for k in all_keys if k.startswith("llm.")]


def _checkpoint_of(model: TimeLLM, path: Path) -> Path:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    history = {"train_mse": [1.0], "val_mse": [1.0], "best_epoch": 0, "step": 3,
               "seconds": 0.0}
    save_checkpoint(path, model, optimizer, history, np.random.default_rng(0))
    return path


def test_checkpoint_of_other_modules_is_refused(llm, ett, tmp_path, timellm_model):
    with_tapr = timellm_model(llm, prefix_modules={
        "tapr": TAPRPrefix(L, H, 32, channels=4, heads=2)})
    ckpt = _checkpoint_of(with_tapr, tmp_path / "tapr.pt")
    with pytest.raises(ValueError, match="^checkpoint:"):
        fit(timellm_model(llm), SeriesWindows(ett, ett, L, H), SPLITS, epochs=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="^checkpoint:"):  # and the other way round
        fit(with_tapr, SeriesWindows(ett, ett, L, H), SPLITS, epochs=1,
            checkpoint=_checkpoint_of(timellm_model(llm), tmp_path / "base.pt"))


def test_checkpoint_of_another_horizon_is_refused(llm, ett, tmp_path, timellm_model):
    ckpt = _checkpoint_of(timellm_model(llm, horizon=4), tmp_path / "h4.pt")
    with pytest.raises(ValueError, match="^checkpoint:"):
        fit(timellm_model(llm), SeriesWindows(ett, ett, L, H), SPLITS, epochs=1, checkpoint=ckpt)


# ----------------------------------------------------------------------- 2. best epoch, evaluate

def test_fit_restores_the_best_validation_epoch(llm, ett, monkeypatch, timellm_model):
    data, scripted = SeriesWindows(ett, ett, L, H), iter([0.3, 0.9])  # best: not the last
    states, real = [], []

    def scripted_evaluate(model, data, bounds, batch_size=64):
        states.append(copy.deepcopy(trainable_state(model)))
        real.append(evaluate(model, data, bounds, batch_size)["mse"])
        return {"mse": next(scripted)}

    monkeypatch.setattr(train_module, "evaluate", scripted_evaluate)
    model = timellm_model(llm, dropout=0.0)
    history = fit(model, data, SPLITS, epochs=2, patience=5, batch_size=BATCH)
    monkeypatch.undo()
    assert history["val_mse"] == [0.3, 0.9] and history["best_epoch"] == 0
    assert "_best_state" not in history
    final = trainable_state(model)
    assert all(torch.equal(v, states[0][k]) for k, v in final.items())
    assert not all(torch.equal(v, states[1][k]) for k, v in final.items())
    assert evaluate(model, data, SPLITS["val"])["mse"] == real[0]


def test_evaluate_counts_and_scores(llm, ett, timellm_model):
    data = SeriesWindows(ett, ett, L, H)
    model = timellm_model(llm).train()
    for bounds, n in ((SPLITS["val"], 110 - H + 1 - 80), ((0, 60), 60 - H + 1 - L)):
        out = evaluate(model, data, bounds)
        assert not model.training
        assert set(out) == {"mse", "mae", "n_samples"}
        assert out["n_samples"] == n == len(data.starts(bounds))
        ts = np.arange(max(bounds[0], L), bounds[1] - H + 1)
        with torch.no_grad():  # one batch, as evaluate's (n < 64)
            error = (model(data.inputs(ts)[0])[0] - data.labels(ts)).double().numpy()
        assert out["mse"] == pytest.approx(np.mean(error ** 2), rel=1e-6)
        assert out["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-6)

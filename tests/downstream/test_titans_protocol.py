"""The three test modes of ``downstream/titans`` on a stream of 40 real ETTh1 rows (samples
t = 16 ... 36, horizon 4), with the tiny Titans configuration: A = per-window fresh calls, B =
the neural-memory state carried with every weight bit-identical, C = B plus one Adam step on
sample t just before sample t + H is predicted (the calls are logged by a test-local subclass),
the errors of mode A with missing labels and the running-MSE curve of ``scores``; and no
leakage, exactly: rewriting every row >= CUT (values and labels) leaves every error of the
samples with t + H <= CUT, and every prediction of the samples t <= CUT, bit-identical in modes
A, B and C (one torch thread, same operations); with only the labels rewritten, mode C's first
changed prediction is the one at CUT + 1.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from downstream.titans import (MODES, SeriesWindows, TitansConfig, TitansForecaster,
                               detach_states, errors_mode_a, errors_stream, scores)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TitansConfig(width=16, depth=1, segment_len=8, longterm_tokens=2, persist_tokens=2,
                   heads=2, dim_head=8, ff_mult=1)
CHUNK = CFG.segment_len + CFG.longterm_tokens  # neural-memory chunk = attention window: 10

# the streams (modes B and C, and the leakage check): 40 real rows, samples t = 16 ... 36
STREAM_L, H = 16, 4
ROWS = 40
BOUNDS = (0, ROWS)
CUT = 28  # rows >= CUT are rewritten in the leakage check


class Recorder(TitansForecaster):
    """The forecaster, logging every call: whether grad was enabled (an online step), the
    window, the state object passed in, and the forecast. Nothing is changed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def forward(self, x, features=None, state=None):
        y, states = super().forward(x, features, state)
        self.calls.append({"grad": torch.is_grad_enabled(), "x": x.detach().clone(),
                           "state": state, "y": y.detach().clone()})
        return y, states


def _sample_of(data: SeriesWindows, bounds: tuple):
    """A map window bytes -> sample time t, to name the windows a Recorder saw."""
    ts = data.starts(bounds)
    windows = data.inputs(ts)[0]
    table = {w.numpy().tobytes(): int(t) for w, t in zip(windows, ts)}
    assert len(table) == len(ts)  # every window of the series is distinct
    return lambda x: table[x.numpy().tobytes()]


# ------------------------------------------------------------------------------------------
# test modes


@pytest.fixture(scope="module")
def stream_rows(etth1) -> np.ndarray:
    """40 real rows of ETTh1 (all 7 variables)."""
    return etth1[2000:2000 + ROWS].copy()


def _rewrite(rows: np.ndarray, values: bool = True, labels: bool = True) -> tuple:
    """(values, y) with rows >= CUT replaced by large random numbers."""
    rng = np.random.default_rng(123)
    v, y = rows.copy(), rows.copy()
    if values:
        v[CUT:] = rng.normal(0.0, 50.0, v[CUT:].shape)
    if labels:
        y[CUT:] = rng.normal(0.0, 50.0, y[CUT:].shape)
    return v, y


class Runs:
    """Mode runs on the stream rows, computed on first use (inside a test, so under one torch
    thread) and kept for the other tests of this module."""

    def __init__(self, rows: np.ndarray, make_model, state_copy):
        self.rows, self.cache = rows, {}
        self.make_model, self.state_copy = make_model, state_copy

    def get(self, mode: str, rewrite: str = "none") -> dict:
        key = (mode, rewrite)
        if key not in self.cache:
            values, y = {"none": (self.rows, self.rows),
                         "all": _rewrite(self.rows),
                         "labels": _rewrite(self.rows, values=False)}[rewrite]
            data = SeriesWindows(values, y, STREAM_L, H)
            model = self.make_model(7, H, cls=Recorder)
            before = self.state_copy(model)
            errs = (errors_mode_a(model, data, BOUNDS, batch_size=8) if mode == "A" else
                    errors_stream(model, data, BOUNDS, mode))
            preds = torch.cat([c["y"] for c in model.calls if not c["grad"]]).numpy()
            self.cache[key] = {"ts": data.starts(BOUNDS), "sq": errs[0], "ab": errs[1],
                               "has": errs[2], "preds": preds, "model": model,
                               "before": before, "data": data}
        return self.cache[key]


@pytest.fixture(scope="module")
def runs(stream_rows, titans_model, state_copy) -> Runs:
    return Runs(stream_rows, titans_model, state_copy)


def test_stream_samples(runs):
    run = runs.get("B")
    ts = run["ts"]
    assert ts[0] == STREAM_L and ts[-1] == ROWS - H and len(ts) == 21
    assert run["preds"].shape == (21, H, 7) and np.isfinite(run["preds"]).all()
    assert run["has"].all() and np.isfinite(run["sq"]).all()
    data, t = run["data"], 25
    np.testing.assert_array_equal(data.inputs([t])[0][0].numpy(), runs.rows[t - STREAM_L:t])
    np.testing.assert_array_equal(data.labels([t])[0].numpy(), runs.rows[t:t + H])


def test_mode_a_is_fresh_per_window_calls(runs):
    run = runs.get("A")
    model, data = run["model"], run["data"]
    sq, ab = [], []
    with torch.no_grad():
        for t in run["ts"]:
            pred, _ = model(*data.inputs([t]))  # no state: fresh memory
            diff = pred - data.labels([t])
            sq.append(float((diff ** 2).mean()))
            ab.append(float(diff.abs().mean()))
    np.testing.assert_allclose(run["sq"], sq, rtol=1e-5)
    np.testing.assert_allclose(run["ab"], ab, rtol=1e-5)
    # the batching is immaterial
    again = errors_mode_a(model, data, BOUNDS, batch_size=64)
    np.testing.assert_allclose(again[0], run["sq"], rtol=1e-5)
    assert all(torch.equal(v, run["before"][k]) for k, v in model.state_dict().items())


def test_mode_a_errors_skip_missing_labels(stream_rows, titans_model):
    y = stream_rows.copy()
    y[24:28] = np.nan  # sample 24: no label at all; samples 21-23 and 25-27: a part
    y[33, 2] = np.nan
    data = SeriesWindows(stream_rows, y, STREAM_L, H)
    model = titans_model(7, H)
    sq, ab, has = errors_mode_a(model, data, BOUNDS)
    ts = data.starts(BOUNDS)
    assert not has[ts == 24].any() and has[ts != 24].all()
    with torch.no_grad():
        preds, _ = model(*data.inputs(ts))
    for i, t in enumerate(ts):
        label = data.labels([t])[0]
        keep = torch.isfinite(label)
        if keep.any():
            expected = float(((preds[i] - label)[keep] ** 2).mean())
            np.testing.assert_allclose(sq[i], expected, rtol=1e-5)
    out = scores(sq, ab, has)
    assert out["n_samples"] == len(ts) - 1
    assert out["mse"] == pytest.approx(sq[has].mean(), rel=1e-12)


def test_scores_curve_is_the_running_mse_over_labelled_samples():
    sq, ab = np.array([1.0, 9.0, 3.0, 5.0]), np.array([1.0, 3.0, 2.0, 2.0])
    has = np.array([True, False, True, True])
    out = scores(sq, ab, has)
    np.testing.assert_allclose(out["curve"], [1.0, 1.0, 2.0, 3.0])
    assert out["mse"] == 3.0 and out["mae"] == pytest.approx(5 / 3) and out["n_samples"] == 3
    assert np.isnan(scores(sq, ab, np.zeros(4, bool))["mse"])


def test_mode_b_carries_the_state_with_every_weight_frozen(runs):
    run, a = runs.get("B"), runs.get("A")
    model, data = run["model"], run["data"]
    after = model.state_dict()
    assert after.keys() == run["before"].keys()
    assert all(torch.equal(after[k], run["before"][k]) for k in after)
    assert all(p.grad is None for p in model.parameters())
    # state carried from window to window: the same as a hand-written carried loop, ...
    state, preds = None, []
    with torch.no_grad():
        for t in run["ts"]:
            pred, state = model(*data.inputs([t]), state=state)
            state = detach_states(state)
            preds.append(pred[0].numpy())
    np.testing.assert_array_equal(run["preds"], np.stack(preds))
    # ... every call after the first gets the previous state (one chunk of 10 more each time)
    calls = model.calls[:len(run["ts"])]
    assert calls[0]["state"] is None and all(c["state"] is not None for c in calls[1:])
    assert [c["state"][0].seq_index for c in calls[1:]] == [
        CHUNK * i for i in range(1, len(run["ts"]))]
    # ... so B = A on the first sample (fresh memory in both) and differs on every later one
    np.testing.assert_allclose(run["preds"][0], a["preds"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run["sq"][0], a["sq"][0], rtol=1e-5)
    gaps = np.abs(run["preds"][1:] - a["preds"][1:]).max(axis=(1, 2))
    assert (gaps > 1e-4).all()
    assert (run["sq"][1:] != a["sq"][1:]).all()


def test_mode_c_steps_on_sample_t_just_before_sample_t_plus_h(runs):
    run, b = runs.get("C"), runs.get("B")
    model, data, ts = run["model"], run["data"], run["ts"]
    sample = _sample_of(data, BOUNDS)
    events = [("step" if c["grad"] else "pred", sample(c["x"][0])) for c in model.calls]
    expected = []
    for t in ts:
        if t - H >= ts[0]:
            expected.append(("step", int(t - H)))  # the label rows [t - H, t) are all observed
        expected.append(("pred", int(t)))
    assert events == expected
    n_steps = sum(e[0] == "step" for e in events)
    assert n_steps == int(np.sum(ts + H <= ts[-1])) == len(ts) - H
    # each step reads its window with the very state the sample was predicted with
    predicted_with = {sample(c["x"][0]): c["state"] for c in model.calls if not c["grad"]}
    for c in model.calls:
        if c["grad"]:
            assert c["state"] is predicted_with[sample(c["x"][0])]
    # the weights moved; the predictions before the first step are mode B's, bit for bit,
    # the first one after it is not
    after = model.state_dict()
    assert any(not torch.equal(after[k], run["before"][k]) for k in after)
    np.testing.assert_array_equal(run["preds"][:H], b["preds"][:H])
    np.testing.assert_array_equal(run["sq"][:H], b["sq"][:H])
    assert not np.array_equal(run["preds"][H], b["preds"][H])


def test_stream_refuses_mode_a(stream_rows, titans_model):
    data = SeriesWindows(stream_rows, stream_rows, STREAM_L, H)
    with pytest.raises(ValueError, match=r"mode: got 'A'; allowed: \['B', 'C'\]"):
        errors_stream(titans_model(7, H), data, BOUNDS, "A")


# ------------------------------------------------------------------------------------------
# leakage


@pytest.mark.parametrize("mode", MODES)
def test_rows_after_the_cut_reach_no_earlier_prediction(runs, mode):
    """Sample t reads rows < t, and in mode C the labels of samples t' with t' + H <= t, i.e.
    rows < t as well. Rows >= CUT rewritten (values and labels): every prediction for t <= CUT
    and every error of a sample whose label ends before CUT (t + H <= CUT) is bit-identical;
    the prediction at CUT + 1 (its window holds row CUT) and every error whose label reaches
    CUT change."""
    clean, changed = runs.get(mode), runs.get(mode, "all")
    ts = clean["ts"]
    np.testing.assert_array_equal(changed["ts"], ts)
    comparable = ts + H <= CUT
    assert comparable.sum() == CUT - H - STREAM_L + 1
    for key in ("sq", "ab", "has"):
        np.testing.assert_array_equal(clean[key][comparable], changed[key][comparable])
    before_cut = ts <= CUT
    np.testing.assert_array_equal(clean["preds"][before_cut], changed["preds"][before_cut])
    first_after = np.flatnonzero(ts == CUT + 1)[0]
    assert not np.array_equal(clean["preds"][first_after], changed["preds"][first_after])
    assert (clean["sq"][~comparable] != changed["sq"][~comparable]).all()


@pytest.mark.parametrize("mode", MODES)
def test_labels_reach_only_mode_c_and_only_once_complete(runs, mode):
    """Only the labels of rows >= CUT rewritten: A and B never read a label, so no prediction
    changes; in C, sample CUT - H + 1 is the first whose label holds row CUT, and its step comes
    just before sample CUT + 1 is predicted: the predictions up to CUT are bit-identical, the
    one at CUT + 1 is not."""
    clean, changed = runs.get(mode), runs.get(mode, "labels")
    ts = clean["ts"]
    if mode in ("A", "B"):
        np.testing.assert_array_equal(clean["preds"], changed["preds"])
        return
    before_cut = ts <= CUT
    np.testing.assert_array_equal(clean["preds"][before_cut], changed["preds"][before_cut])
    first_after = np.flatnonzero(ts == CUT + 1)[0]
    assert not np.array_equal(clean["preds"][first_after], changed["preds"][first_after])

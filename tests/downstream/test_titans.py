"""The Titans memory-as-context forecaster of ``downstream/titans`` (``titans-pytorch`` MAC) on
small pieces of real ETTh1, with a tiny configuration (width 16, one block, segments of 8 steps,
2 long-term memory tokens: memory chunks of 10 tokens).

What is checked:
  * shapes for C = 1 and C = 7, with and without RevIN, with per-step features of width D != C;
    RevIN makes the forecast follow an affine change of the input window;
  * the long-term memory tokens: ``_blocks`` is the package's own MAC forward (same numbers),
    returns one row per real step (also for lookbacks that are no multiple of the segment), the
    head reads the last real step, and the neural memory carries the first segment into the
    last step's output;
  * the neural memory memorises in ``eval()`` under ``torch.no_grad()``: a carried state changes
    the forecast, two fresh calls are bit-identical, the state is not changed in place;
  * the three test modes on tensors: A = per-window fresh calls, B = state carried with every
    weight bit-identical, C = B plus one Adam step on sample t just before sample t + H is
    predicted (the calls are logged by a test-local subclass);
  * no leakage, exactly: rewriting every row >= CUT (values and labels) leaves every error of the
    samples with t + H <= CUT, and every prediction of the samples t <= CUT, bit-identical in
    modes A, B and C (one torch thread, same operations); with only the labels rewritten, mode
    C's first changed prediction is the one at CUT + 1;
  * argument checks (mode, horizon, split, a task whose inputs are not its targets, features of
    the wrong length), ``fit`` (best validation epoch restored, early stop, diverged run), and a
    frozen real encoder (a tiny TS2Vec from the project's learner) as input: causal features,
    no leakage through them, and ``evaluate_titans`` end to end.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from titans_pytorch.neural_memory import NeuralMemState
from torch import nn

import downstream as ds
import search_spaces as ss
from downstream.titans import (MODES, SeriesWindows, TitansConfig, TitansForecaster,
                               causal_features, check_horizon, check_mode, detach_states,
                               errors_mode_a, errors_stream, evaluate_titans, fit,
                               reference_rows, scores, task_windows)
from search_spaces import learner

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TitansConfig(width=16, depth=1, segment_len=8, longterm_tokens=2, persist_tokens=2,
                   heads=2, dim_head=8, ff_mult=1)
CHUNK = CFG.segment_len + CFG.longterm_tokens  # neural-memory chunk = attention window: 10

# the streams (modes B and C, and the leakage check): 40 real rows, samples t = 16 ... 36
STREAM_L, H = 16, 4
ROWS = 40
BOUNDS = (0, ROWS)
CUT = 28  # rows >= CUT are rewritten in the leakage check


def _config(**overrides) -> TitansConfig:
    return dataclasses.replace(CFG, **overrides)


def _model(n_vars: int, horizon: int = H, n_inputs: int | None = None, seed: int = 0,
           cls=TitansForecaster, **overrides) -> TitansForecaster:
    torch.manual_seed(seed)
    return cls(n_vars, horizon, n_inputs, _config(**overrides))


def _windows(rows: np.ndarray, starts, length: int) -> torch.Tensor:
    """Real windows rows[s : s + length] -> (B, length, C) float32."""
    return torch.as_tensor(np.stack([rows[s:s + length] for s in starts]).astype(np.float32))


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


def _params(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------
# shapes, RevIN


@pytest.mark.parametrize("n_vars, revin, n_inputs, depth", [
    (1, True, None, 1), (7, True, None, 1), (1, False, None, 1), (7, False, None, 2),
    (1, True, 5, 1), (7, False, 12, 2)])
def test_forecast_and_state_shapes(etth1, n_vars, revin, n_inputs, depth):
    rows = etth1[:, -n_vars:]  # C = 1: the OT column
    x = _windows(rows, [0, 500, 4000], 32)
    model = _model(n_vars, 6, n_inputs, revin=revin, depth=depth)
    assert (model.revin is not None) == revin
    features = None
    if n_inputs is not None:
        features = torch.as_tensor(np.random.default_rng(0).normal(size=(3, 32, n_inputs)),
                                   dtype=torch.float32)
    y, states = model(x, features)
    assert y.shape == (3, 6, n_vars)
    assert torch.isfinite(y).all()
    # one state per block (every block has a neural memory), chunk-aligned: the 38 tokens of a
    # 32-step window (3 x 2 memory tokens interleaved) hold 3 full chunks of 10, the partial
    # chunk is dropped
    assert len(states) == depth == sum(mem is not None for *_, mem, _, _ in model.mac.layers)
    for s in states:
        assert isinstance(s, NeuralMemState)
        assert s.seq_index == 3 * CHUNK and s.cache_store_segment is None
        last_update, _ = s.states
        assert all(v.shape[0] == 3 for v in last_update.values())  # batch (x 1 memory head)
    # the state of a call feeds the next one
    y2, states2 = model(x, features, state=states)
    assert y2.shape == y.shape and [s.seq_index for s in states2] == [6 * CHUNK] * depth


def test_features_replace_the_values_as_token_inputs(etth1):
    """Without RevIN and with features, the values play no part; the features do."""
    x = _windows(etth1, [100, 2000], 32)
    rng = np.random.default_rng(1)
    f = torch.as_tensor(rng.normal(size=(2, 32, 5)), dtype=torch.float32)
    model = _model(7, 4, n_inputs=5, revin=False).eval()
    with torch.no_grad():
        y = model(x, f)[0]
        assert torch.equal(model(_windows(etth1, [3000, 7000], 32), f)[0], y)
        assert not torch.allclose(model(x, f.flip(1))[0], y, atol=1e-4)
    with pytest.raises(RuntimeError):  # features of the wrong width D
        model(x, f[..., :4])


@pytest.mark.parametrize("revin", [True, False])
def test_revin_makes_the_forecast_follow_an_affine_change_of_the_window(etth1, revin):
    """forecast(a x + b) = a forecast(x) + b per channel with RevIN (up to its eps = 1e-5 in
    the variance, hence scales >= 1 and a 1e-3 tolerance); not without it."""
    x = _windows(etth1, [0, 1500, 6000], 32)
    scale = torch.tensor([2.0, 1.0, 3.0, 1.0, 4.0, 1.5, 1.25])
    shift = torch.tensor([3.0, -1.0, 0.0, 5.0, -2.0, 1.0, 0.5])
    model = _model(7, 4, revin=revin).eval()
    with torch.no_grad():
        y = model(x)[0]
        moved = model(x * scale + shift)[0]
    gap = float((moved - (y * scale + shift)).abs().max())
    assert gap < 1e-3 if revin else gap > 0.1


# ------------------------------------------------------------------------------------------
# long-term memory tokens


def _package_forward(model: TitansForecaster, tokens: torch.Tensor) -> torch.Tensor:
    """The package's own ``MemoryAsContextTransformer.forward`` (non-cached path) on these
    token embeddings: it embeds token ids, so an embedding table holding the tokens is put on a
    copy; ``to_logits`` is the identity in the forecaster."""
    mac = copy.deepcopy(model.mac)
    b, n, w = tokens.shape
    mac.token_emb = nn.Embedding.from_pretrained(tokens.reshape(b * n, w))
    return mac(torch.arange(b * n).view(b, n))


@pytest.mark.parametrize("overrides, length", [
    ({}, 32), ({}, 30), ({}, 13), ({}, 9), ({}, 8), ({}, 5),
    ({"depth": 2, "residual_streams": 2}, 30), ({"memory_chunk": 4, "momentum": False}, 30)])
def test_blocks_are_the_package_forward_with_one_row_per_step(etth1, length, overrides):
    model = _model(7, 4, **overrides)
    with torch.no_grad():
        tokens = model.embed(_windows(etth1, [10, 3000], length))
        hidden, _ = model._blocks(tokens, None)
        reference = _package_forward(model, tokens)
    assert hidden.shape == (2, length, CFG.width)
    assert reference.shape == hidden.shape
    torch.testing.assert_close(hidden, reference, rtol=0, atol=1e-6)
    # the memory tokens sit after each segment: the rows of a prefix of the window are those
    # of the prefix alone (no step, and no memory token, sees a later step)
    for k in (length - 1, length // 2):
        if k > 0:
            prefix, _ = model._blocks(tokens[:, :k], None)
            torch.testing.assert_close(prefix, hidden[:, :k], rtol=1e-5, atol=1e-5)


def test_head_reads_the_last_real_step(etth1):
    """revin=False, so a change of one step reaches the forecast through the blocks only."""
    x = _windows(etth1, [200, 5000], 30)  # 30 steps: not a multiple of the segment (8)
    model = _model(7, 4, revin=False).eval()
    with torch.no_grad():
        y, _ = model(x)
        hidden, _ = model._blocks(model.embed(x), None)
        assert hidden.shape[1] == 30
        assert torch.equal(y, model.head(hidden[:, -1]).view(2, 4, 7))
        last = x.clone()
        last[:, -1] += 1.0
        y_last, _ = model(last)
        assert (y_last - y).abs().max() > 1e-3
        # the first step lies in the first segment; attention is segment-local, so only the
        # neural memory (chunks stored before the last segment) carries it to the last step
        first = x.clone()
        first[:, 0] += 1.0
        y_first, _ = model(first)
        assert (y_first - y).abs().max() > 1e-3
        changed, _ = model._blocks(model.embed(first), None)
        # ... while the rest of the first segment's rows see it through attention
        assert not torch.allclose(changed[:, 1:CFG.segment_len], hidden[:, 1:CFG.segment_len])


# ------------------------------------------------------------------------------------------
# the neural memory at test time


def test_memory_memorises_in_eval_under_no_grad(etth1):
    x = _windows(etth1, [300], 32)
    later = _windows(etth1, [301], 32)
    model = _model(7, 4).eval()
    before = _params(model)
    with torch.no_grad():
        fresh_a, states = model(x)
        fresh_b, _ = model(x)
        carried, _ = model(x, state=states)
        later_fresh, _ = model(later)
        later_carried, _ = model(later, state=states)
        again, _ = model(later, state=states)
    assert torch.equal(fresh_a, fresh_b)
    assert (carried - fresh_a).abs().max() > 1e-4
    assert (later_carried - later_fresh).abs().max() > 1e-4
    assert torch.equal(again, later_carried)  # the state passed in is not changed in place
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # memorised content: the carried update differs from the memory's initial weights
    init = model.mac.layers[0][4].init_weights(1)
    last_update, _ = states[0].states
    assert any(not torch.allclose(last_update[k], v) for k, v in init.items())


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

    def __init__(self, rows: np.ndarray):
        self.rows, self.cache = rows, {}

    def get(self, mode: str, rewrite: str = "none") -> dict:
        key = (mode, rewrite)
        if key not in self.cache:
            values, y = {"none": (self.rows, self.rows),
                         "all": _rewrite(self.rows),
                         "labels": _rewrite(self.rows, values=False)}[rewrite]
            data = SeriesWindows(values, y, STREAM_L, H)
            model = _model(7, H, cls=Recorder)
            before = _params(model)
            errs = (errors_mode_a(model, data, BOUNDS, batch_size=8) if mode == "A" else
                    errors_stream(model, data, BOUNDS, mode))
            preds = torch.cat([c["y"] for c in model.calls if not c["grad"]]).numpy()
            self.cache[key] = {"ts": data.starts(BOUNDS), "sq": errs[0], "ab": errs[1],
                               "has": errs[2], "preds": preds, "model": model,
                               "before": before, "data": data}
        return self.cache[key]


@pytest.fixture(scope="module")
def runs(stream_rows) -> Runs:
    return Runs(stream_rows)


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


def test_mode_a_errors_skip_missing_labels(stream_rows):
    y = stream_rows.copy()
    y[24:28] = np.nan  # sample 24: no label at all; samples 21-23 and 25-27: a part
    y[33, 2] = np.nan
    data = SeriesWindows(stream_rows, y, STREAM_L, H)
    model = _model(7, H)
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


def test_stream_refuses_mode_a(stream_rows):
    data = SeriesWindows(stream_rows, stream_rows, STREAM_L, H)
    with pytest.raises(ValueError, match=r"mode: got 'A'; allowed: \['B', 'C'\]"):
        errors_stream(_model(7, H), data, BOUNDS, "A")


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


# ------------------------------------------------------------------------------------------
# argument checks


@pytest.fixture(scope="module")
def etth1_data(data_dir):
    return ds.load("ETTh1", data_dir)


@pytest.fixture(scope="module")
def etth1_task(etth1_data):
    """Multivariate ETTh1: the 7 variables in and out, 7 calendar covariates in x."""
    return ds.make_task(etth1_data)


def test_check_mode():
    assert [check_mode(m) for m in MODES] == ["A", "B", "C"]
    for bad in ("D", "a", "", None, 1):
        with pytest.raises(ValueError, match=r"^mode: got .*; allowed: \['A', 'B', 'C'\]"):
            check_mode(bad)


def test_check_horizon(etth1_task):
    task = etth1_task
    for bad in (0, -4, 1.5, True, "96", None):
        with pytest.raises(ValueError, match=r"^horizon: got .*; allowed: a positive int"):
            check_horizon(task, bad)
    assert check_horizon(task, 96) == 96
    assert type(check_horizon(task, np.int64(192))) is int
    # the longest accepted H leaves one sample in the shortest split (val / test: 2880 rows)
    longest = task.splits["val"][1] - task.splits["val"][0]
    assert check_horizon(task, longest) == longest
    windows = task_windows(task, longest)
    assert all(len(windows.starts(b)) >= 1 for b in task.splits.values())
    assert len(windows.starts(task.splits["val"])) == 1
    with pytest.raises(ValueError, match=r"^horizon: H=2881 is too long for the val split"):
        check_horizon(task, longest + 1)
    # the lookback counts in the first split
    train = task.splits["train"][1]
    assert check_horizon(task, 100, lookback=train - 100) == 100
    with pytest.raises(ValueError, match=r"^horizon: H=101 is too long for the train split"):
        check_horizon(task, 101, lookback=train - 100)


def test_task_windows(etth1_task, etth1_data):
    task = etth1_task
    assert task.n_covariates == 7 and task.inputs == task.targets
    data = task_windows(task, 24, lookback=48)
    # the variables only, the calendar covariates left out: the values are the targets
    assert data.values.shape == (len(task.x), 7) and data.y.shape == (len(task.x), 7)
    np.testing.assert_allclose(data.values.numpy(), task.y, rtol=1e-5, atol=1e-5)
    assert data.lookback == 48 and data.horizon == 24 and data.features is None
    one = task_windows(ds.make_task(etth1_data, target="OT", univariate=True), 24)
    assert one.values.shape[1] == 1 and one.y.shape[1] == 1
    other = ds.make_task(etth1_data, target="OT", univariate=False)  # 7 in, OT out
    with pytest.raises(ValueError, match=r"^target: got \['OT'\] with inputs \['HUFL'"):
        task_windows(other, 24)
    with pytest.raises(ValueError, match=r"^features: got 10 rows; allowed: 14400"):
        task_windows(task, 24, features=np.zeros((10, 3)))


def test_evaluate_titans_refuses_bad_arguments_before_training(etth1_task):
    with pytest.raises(ValueError, match=r"^mode: got 'D'"):
        evaluate_titans(etth1_task, 96, modes=("A", "D"), config=CFG)
    with pytest.raises(ValueError, match=r"^split: got 'train'; allowed: \['val', 'test'\]"):
        evaluate_titans(etth1_task, 96, split="train", config=CFG)
    with pytest.raises(ValueError, match=r"^horizon: got 0"):
        evaluate_titans(etth1_task, 0, config=CFG)


# ------------------------------------------------------------------------------------------
# training


def test_fit_restores_the_best_validation_epoch(etth1):
    """With lr = 1 the validation MSE is best after the first epoch and worse after the second:
    with patience 1 the training stops there and the first epoch's weights come back."""
    rows = etth1[:300]
    data = SeriesWindows(rows, rows, 32, 4)
    splits = {"train": (0, 160), "val": (160, 240)}
    model = _model(7, 4)
    history = fit(model, data, splits, epochs=4, lr=1.0, patience=1, seed=0)
    val = history["val_mse"]
    assert len(val) == len(history["train_loss"]) == len(history["val_mae"]) == 2
    assert np.isfinite(val).all() and val[1] > val[0]  # the premise of this test
    assert history["best_epoch"] == int(np.argmin(val)) == 0
    restored = scores(*errors_mode_a(model, data, splits["val"]))
    assert restored["mse"] == val[0] and restored["mae"] == history["val_mae"][0]
    assert history["epoch_seconds"] > 0


def test_fit_refuses_no_training_sample_and_keeps_a_diverged_run(etth1):
    rows = etth1[:200].copy()
    with pytest.raises(ValueError, match=r"^horizon: H=4 leaves no training sample"):
        fit(_model(7, 4), SeriesWindows(rows, rows, 32, 4), {"train": (0, 35), "val": (35, 99)})
    values = rows.copy()
    values[50] = 1e38  # the RevIN statistics of every window holding it overflow: NaN
    data = SeriesWindows(values, rows, 32, 4)
    model = _model(7, 4)
    history = fit(model, data, {"train": (0, 120), "val": (120, 200)}, epochs=5, lr=1e-3,
                  patience=1)
    assert np.isnan(history["val_mse"]).all() and len(history["val_mse"]) == 2
    assert history["best_epoch"] is None
    assert any(torch.isnan(p).any() for p in model.parameters())  # the last weights stay


# ------------------------------------------------------------------------------------------
# a frozen encoder as input


@pytest.fixture(scope="module")
def small_task(etth1_task):
    """The first 160 rows of multivariate ETTh1 (real), split 96 / 16 / 48."""
    n = 160
    return dataclasses.replace(etth1_task, x=etth1_task.x[:n].copy(), y=etth1_task.y[:n].copy(),
                               splits={"train": (0, 96), "val": (96, 112), "test": (112, n)})


@pytest.fixture(scope="module")
def encoder(small_task):
    """A tiny TS2Vec trained by the project's learner on the training rows (one step)."""
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(layers=2, hidden=32, repr_dim=64)
    enc, _ = learner.fit(spec, small_task.x[None, :small_task.splits["train"][1]],
                         {"n_iters": 1, "max_length": 64}, seed=0)
    return enc


def _rewrite_task(task, cut: int):
    rng = np.random.default_rng(7)
    x, y = task.x.copy(), task.y.copy()
    x[cut:] = rng.normal(0.0, 50.0, x[cut:].shape)
    y[cut:] = rng.normal(0.0, 50.0, y[cut:].shape)
    return dataclasses.replace(task, x=x, y=y)


def test_encoder_features_are_causal_and_carry_no_future_into_the_stream(small_task, encoder):
    """Features by a frozen encoder (``causal_features``) as the input of a mode-B stream:
    rows >= cut rewritten (inputs, covariates included, and labels) change no feature row
    before cut and no error of a sample whose label ends before cut."""
    cut, bounds = 124, (112, 136)
    features = causal_features(encoder, small_task)
    assert features.shape == (160, 64) and np.isfinite(features).all()
    changed_task = _rewrite_task(small_task, cut)
    changed = causal_features(encoder, changed_task)
    np.testing.assert_array_equal(features[:cut], changed[:cut])  # row t sees rows <= t
    assert not np.allclose(features[cut:], changed[cut:])

    def run(task, f):
        data = task_windows(task, H, STREAM_L, f)
        return data.starts(bounds), errors_stream(_model(7, H, n_inputs=64), data, bounds, "B")

    ts, clean = run(small_task, features)
    _, rewritten = run(changed_task, changed)
    comparable = ts + H <= cut
    assert comparable.sum() == cut - H - bounds[0] + 1
    np.testing.assert_array_equal(clean[0][comparable], rewritten[0][comparable])
    assert (clean[0][~comparable] != rewritten[0][~comparable]).all()
    # the features are read: the same model on features one row late scores otherwise
    model = _model(7, H, n_inputs=64)
    late = np.vstack([features[:1], features[:-1]])
    aligned = errors_mode_a(model, task_windows(small_task, H, STREAM_L, features), bounds)
    shifted = errors_mode_a(model, task_windows(small_task, H, STREAM_L, late), bounds)
    assert (np.abs(aligned[0] - shifted[0]) > 1e-6).all()


def test_evaluate_titans_with_encoder_features(small_task, encoder):
    features = causal_features(encoder, small_task)
    kwargs = {"split": "val", "features": features, "config": CFG, "epochs": 1,
              "lookback": STREAM_L, "seed": 0}
    out = evaluate_titans(small_task, H, modes=("A", "C", "B"), **kwargs)
    assert out["inputs"] == "features" and out["horizon"] == H and out["lookback"] == STREAM_L
    assert out["config"] == CFG.to_dict() and list(out["modes"]) == ["A", "C", "B"]
    assert len(out["train"]["val_mse"]) == 1 and out["train"]["best_epoch"] == 0
    n = len(task_windows(small_task, H, STREAM_L).starts(small_task.splits["val"]))
    assert n == 112 - H + 1 - 96
    expected = sum(p.numel() for p in TitansForecaster(7, H, 64, CFG).parameters())
    assert out["parameters"] == expected
    for row in out["modes"].values():
        assert row["n_samples"] == n and len(row["curve"]) == n
        assert np.isfinite(row["mse"]) and row["mse"] == pytest.approx(row["curve"][-1])
    mses = [out["modes"][m]["mse"] for m in ("A", "B", "C")]
    assert len(set(mses)) == 3
    # B starts from the trained weights, also after C changed them
    alone = evaluate_titans(small_task, H, modes=("B",), **kwargs)
    assert alone["modes"]["B"]["mse"] == out["modes"]["B"]["mse"]


@pytest.mark.parametrize("split", ["val", "test"])
def test_reference_rows_score_titans_samples_but_the_first(small_task, split):
    """The raw-lookback Ridge's sample t - 1 (feature at t - 1, label rows [t, t + H)) is
    Titans' sample t; the split's first Titans sample has no Ridge twin."""
    ridge = reference_rows(small_task, H, split, lookback=STREAM_L)["raw_ridge"]
    n = len(task_windows(small_task, H, STREAM_L).starts(small_task.splits[split]))
    assert ridge["n_samples"] == n - 1
    assert np.isfinite(ridge["mse"])

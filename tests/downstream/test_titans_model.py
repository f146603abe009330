"""The Titans memory-as-context forecaster of ``downstream/titans`` (``titans-pytorch`` MAC) as a
model, on small pieces of real ETTh1 with a tiny configuration (width 16, one block, segments of
8 steps, 2 long-term memory tokens: memory chunks of 10 tokens): forecast and state shapes for
C = 1 and C = 7, with and without RevIN, with per-step features of width D != C (which replace
the values as token inputs); RevIN makes the forecast follow an affine change of the input
window; the long-term memory tokens (``_blocks`` is the package's own MAC forward, one row per
real step also for lookbacks that are no multiple of the segment, the head reads the last real
step, the neural memory carries the first segment into the last step's output); the neural
memory memorises in ``eval()`` under ``torch.no_grad()`` (a carried state changes the forecast,
two fresh calls are bit-identical, the state is not changed in place); and ``fit`` (best
validation epoch restored, early stop, no training sample refused, a diverged run kept).
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from titans_pytorch.neural_memory import NeuralMemState
from torch import nn

from downstream.titans import (SeriesWindows, TitansConfig, TitansForecaster, errors_mode_a, fit,
                               scores)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TitansConfig(width=16, depth=1, segment_len=8, longterm_tokens=2, persist_tokens=2,
                   heads=2, dim_head=8, ff_mult=1)
CHUNK = CFG.segment_len + CFG.longterm_tokens  # neural-memory chunk = attention window: 10


def _windows(rows: np.ndarray, starts, length: int) -> torch.Tensor:
    """Real windows rows[s : s + length] -> (B, length, C) float32."""
    return torch.as_tensor(np.stack([rows[s:s + length] for s in starts]).astype(np.float32))


# ------------------------------------------------------------------------------------------
# shapes, RevIN


@pytest.mark.parametrize("n_vars, revin, n_inputs, depth", [
    (1, True, None, 1), (7, True, None, 1), (1, False, None, 1), (7, False, None, 2),
    (1, True, 5, 1), (7, False, 12, 2)])
def test_forecast_and_state_shapes(etth1, titans_model, n_vars, revin, n_inputs, depth):
    rows = etth1[:, -n_vars:]  # C = 1: the OT column
    x = _windows(rows, [0, 500, 4000], 32)
    model = titans_model(n_vars, 6, n_inputs, revin=revin, depth=depth)
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


def test_features_replace_the_values_as_token_inputs(etth1, titans_model):
    """Without RevIN and with features, the values play no part; the features do."""
    x = _windows(etth1, [100, 2000], 32)
    rng = np.random.default_rng(1)
    f = torch.as_tensor(rng.normal(size=(2, 32, 5)), dtype=torch.float32)
    model = titans_model(7, 4, n_inputs=5, revin=False).eval()
    with torch.no_grad():
        y = model(x, f)[0]
        assert torch.equal(model(_windows(etth1, [3000, 7000], 32), f)[0], y)
        assert not torch.allclose(model(x, f.flip(1))[0], y, atol=1e-4)
    with pytest.raises(RuntimeError):  # features of the wrong width D
        model(x, f[..., :4])


@pytest.mark.parametrize("revin", [True, False])
def test_revin_makes_the_forecast_follow_an_affine_change_of_the_window(etth1, titans_model,
                                                                        revin):
    """forecast(a x + b) = a forecast(x) + b per channel with RevIN (up to its eps = 1e-5 in
    the variance, hence scales >= 1 and a 1e-3 tolerance); not without it."""
    x = _windows(etth1, [0, 1500, 6000], 32)
    scale = torch.tensor([2.0, 1.0, 3.0, 1.0, 4.0, 1.5, 1.25])
    shift = torch.tensor([3.0, -1.0, 0.0, 5.0, -2.0, 1.0, 0.5])
    model = titans_model(7, 4, revin=revin).eval()
    with torch.no_grad():
        y = model(x)[0]
        moved = model(x * scale + shift)[0]
    gap = float((moved - (y * scale + shift)).abs().max())
    assert gap < 1e-3 if revin else gap > 0.1


@pytest.mark.parametrize("revin", [True, False])
def test_linear_skip_adds_one_channel_shared_map_of_the_window(etth1, revin):
    """With ``linear_skip`` the forecast is the head's plus skip(window) per channel, on the
    RevIN-normalised window (then denormalised); off by default; the head starts at zero, so
    the first forecast is the skip's alone; both learn."""
    assert TitansForecaster(7, 4, config=CFG).skip is None
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, linear_skip=True, revin=revin)
    model = TitansForecaster(7, 4, config=cfg, lookback=32).eval()
    assert model.skip.weight.shape == (4, 32)
    x = _windows(etth1, [0, 1500, 6000], 32)
    with torch.no_grad():
        only_skip = model(x)[0]  # the head starts at zero
    values, stats = model.revin.normalise(x) if revin else (x, None)
    expected = torch.einsum("blc,hl->bhc", values, model.skip.weight) + model.skip.bias[:, None]
    if revin:
        expected = model.revin.denormalise(expected, stats)
    assert torch.allclose(only_skip, expected.detach(), atol=1e-5)
    model(x)[0].pow(2).mean().backward()
    assert model.skip.weight.grad.abs().sum() > 0 and model.head.weight.grad.abs().sum() > 0
    with torch.no_grad():
        nn.init.normal_(model.head.weight, std=0.1)
        assert not torch.allclose(model(x)[0], only_skip, atol=1e-3)  # the head adds its part
    with pytest.raises(ValueError, match=r"^x: got a window of 24 steps; allowed: 32 "):
        model(x[:, :24])


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
def test_blocks_are_the_package_forward_with_one_row_per_step(etth1, titans_model, length,
                                                               overrides):
    model = titans_model(7, 4, **overrides)
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


def test_head_reads_the_last_real_step(etth1, titans_model):
    """revin=False, so a change of one step reaches the forecast through the blocks only."""
    x = _windows(etth1, [200, 5000], 30)  # 30 steps: not a multiple of the segment (8)
    model = titans_model(7, 4, revin=False).eval()
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


def test_memory_memorises_in_eval_under_no_grad(etth1, titans_model, state_copy):
    x = _windows(etth1, [300], 32)
    later = _windows(etth1, [301], 32)
    model = titans_model(7, 4).eval()
    before = state_copy(model)
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
# training


def test_fit_restores_the_best_validation_epoch(etth1, titans_model):
    """With lr = 1 the validation MSE is best after the first epoch and worse after the second:
    with patience 1 the training stops there and the first epoch's weights come back."""
    rows = etth1[:300]
    data = SeriesWindows(rows, rows, 32, 4)
    splits = {"train": (0, 160), "val": (160, 240)}
    model = titans_model(7, 4)
    history = fit(model, data, splits, epochs=4, lr=1.0, patience=1, seed=0)
    val = history["val_mse"]
    assert len(val) == len(history["train_loss"]) == len(history["val_mae"]) == 2
    assert np.isfinite(val).all() and val[1] > val[0]  # the premise of this test
    assert history["best_epoch"] == int(np.argmin(val)) == 0
    restored = scores(*errors_mode_a(model, data, splits["val"]))
    assert restored["mse"] == val[0] and restored["mae"] == history["val_mae"][0]
    assert history["epoch_seconds"] > 0


def test_fit_refuses_no_training_sample_and_keeps_a_diverged_run(etth1, titans_model):
    rows = etth1[:200].copy()
    with pytest.raises(ValueError, match=r"^horizon: H=4 leaves no training sample"):
        fit(titans_model(7, 4), SeriesWindows(rows, rows, 32, 4),
            {"train": (0, 35), "val": (35, 99)})
    values = rows.copy()
    values[50] = 1e38  # the RevIN statistics of every window holding it overflow: NaN
    data = SeriesWindows(values, rows, 32, 4)
    model = titans_model(7, 4)
    history = fit(model, data, {"train": (0, 120), "val": (120, 200)}, epochs=5, lr=1e-3,
                  patience=1)
    assert np.isnan(history["val_mse"]).all() and len(history["val_mse"]) == 2
    assert history["best_epoch"] is None
    assert any(torch.isnan(p).any() for p in model.parameters())  # the last weights stay

"""FSNet's associative memory, interference trigger and fast adapter (downstream/online), each
checked against an explicit Python loop over the formulas of memory.py / adapter.py.

Tolerance: the loops sum the same few float32 terms in another order than the vectorised
code, so values are compared with torch.allclose (rtol 1e-5, atol 1e-6); structural claims
(which columns change, the identity calibration) are checked bit for bit.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from downstream.online import AssociativeMemory, FSNetConv1d, attach_fsnet, should_trigger
from downstream.online.adapter import SHORT_GAMMA

DIM, SLOTS, TAU = 28, 32, 0.75
TOL = {"rtol": 1e-5, "atol": 1e-6}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _memory(read: str = "attention", seed: int = 0) -> AssociativeMemory:
    torch.manual_seed(seed)
    return AssociativeMemory(DIM, SLOTS, tau=TAU, read=read)


def _query(seed: int = 1) -> torch.Tensor:
    return torch.randn(DIM, generator=torch.Generator().manual_seed(seed))


def _top2_by_loop(q: torch.Tensor, w: torch.Tensor, temperature: float = 0.5) -> tuple:
    """Top-2 of softmax(q @ W / temperature), every score and the softmax by hand."""
    scores = []
    for j in range(w.shape[1]):
        scores.append(sum(float(q[p]) * float(w[p, j]) for p in range(w.shape[0])) / temperature)
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    att = [e / sum(exps) for e in exps]
    order = sorted(range(len(att)), key=lambda j: -att[j])[:2]
    return [att[j] for j in order], order


def _weighted_sum(w: torch.Tensor, weights, idx) -> torch.Tensor:
    out = torch.zeros(w.shape[0])
    for weight, j in zip(weights, idx):
        out = out + float(weight) * w[:, int(j)]
    return out


def _changed_columns(before: torch.Tensor, after: torch.Tensor) -> list:
    return [j for j in range(before.shape[1]) if not torch.equal(before[:, j], after[:, j])]


# --- AssociativeMemory -------------------------------------------------------------------------

def test_slots_start_unit_norm():
    mem = _memory()
    assert mem.W.shape == (DIM, SLOTS)
    assert torch.allclose(mem.W.norm(dim=0), torch.ones(SLOTS), **TOL)


def test_attend_is_top2_of_tempered_softmax():
    mem, q = _memory(), _query()
    v, idx = mem.attend(q)
    v_loop, idx_loop = _top2_by_loop(q, mem.W)
    assert idx.tolist() == idx_loop
    assert torch.allclose(v, torch.tensor(v_loop, dtype=v.dtype), **TOL)
    # the temperature matters: at temperature 1 the weights are different
    v_t1, _ = _top2_by_loop(q, mem.W, temperature=1.0)
    assert not torch.allclose(v, torch.tensor(v_t1, dtype=v.dtype), **TOL)


def test_attention_read_is_weighted_by_attention_not_by_index():
    mem, q = _memory(), _query()
    v, idx = mem.attend(q)
    read = mem.read(v, idx)
    assert torch.allclose(read, _weighted_sum(mem.W, v.tolist(), idx.tolist()), **TOL)

    index_mem = AssociativeMemory(DIM, SLOTS, tau=TAU, read="index")
    index_mem.W = mem.W  # the very same buffer
    assert index_mem.W.data_ptr() == mem.W.data_ptr()
    index_read = index_mem.read(v, idx)
    by_index = _weighted_sum(mem.W, [float(j) for j in idx.tolist()], idx.tolist())
    assert torch.allclose(index_read, by_index, **TOL)
    assert not torch.allclose(read, index_read, **TOL)
    # the index read grows with the slot number (its norm is ~ the sum of indices here)
    assert index_read.norm() > read.norm()


def test_recall_writes_only_the_selected_slots():
    mem, q = _memory(), _query()
    w_old = mem.W.clone()
    v_loop, idx_loop = _top2_by_loop(q, w_old)
    q_old = _weighted_sum(w_old, v_loop, idx_loop)

    out = mem.recall(q)

    assert _changed_columns(w_old, mem.W) == sorted(idx_loop)
    for j in range(SLOTS):
        if j not in idx_loop:
            assert torch.equal(mem.W[:, j], w_old[:, j])
    for j in idx_loop:
        blend = TAU * w_old[:, j] + (1 - TAU) * q
        expected = blend / math.sqrt(sum(float(x) ** 2 for x in blend))
        assert torch.allclose(mem.W[:, j], expected, **TOL)
        assert abs(float(mem.W[:, j].norm()) - 1.0) < 1e-5
    assert torch.allclose(out, TAU * q + (1 - TAU) * q_old, **TOL)


def test_recall_passes_gradient_through_q_only():
    mem = _memory()
    q = _query().requires_grad_(True)
    out = mem.recall(q)
    out.sum().backward()
    # q_old is detached: d(tau q + (1 - tau) q_old)/dq = tau
    assert torch.allclose(q.grad, torch.full((DIM,), TAU), **TOL)
    assert not mem.W.requires_grad


def test_write_with_given_slots():
    mem, q = _memory(), _query()
    w_old = mem.W.clone()
    idx, v = torch.tensor([3, 17]), torch.tensor([0.6, 0.4])
    mem.write(q, v, idx, q_old=torch.zeros(DIM))
    assert _changed_columns(w_old, mem.W) == [3, 17]
    for j in (3, 17):
        expected = F.normalize(TAU * w_old[:, j] + (1 - TAU) * q, dim=0)
        assert torch.allclose(mem.W[:, j], expected, **TOL)


def test_index_read_writes_attention_weighted_old_read():
    mem, q = _memory(read="index"), _query()
    w_old = mem.W.clone()
    v_loop, idx_loop = _top2_by_loop(q, w_old)
    q_old = _weighted_sum(w_old, [float(j) for j in idx_loop], idx_loop)

    out = mem.recall(q)

    assert _changed_columns(w_old, mem.W) == sorted(idx_loop)
    for v_j, j in zip(v_loop, idx_loop):
        blend = TAU * w_old[:, j] + (1 - TAU) * v_j * q_old
        expected = blend / math.sqrt(sum(float(x) ** 2 for x in blend))
        assert torch.allclose(mem.W[:, j], expected, **TOL)
        assert abs(float(mem.W[:, j].norm()) - 1.0) < 1e-5
        # not the attention rule's write
        assert not torch.allclose(mem.W[:, j],
                                  F.normalize(TAU * w_old[:, j] + (1 - TAU) * q, dim=0), **TOL)
    assert torch.allclose(out, TAU * q + (1 - TAU) * q_old, **TOL)


@pytest.mark.parametrize("kwargs", [{"read": "foo"}, {"top_k": SLOTS + 1}, {"tau": 1.0},
                                    {"tau": 0.0}, {"temperature": 0.0}, {"slots": 0}])
def test_invalid_memory_arguments(kwargs):
    options = {"dim": DIM, "slots": SLOTS, **kwargs}
    with pytest.raises(ValueError):
        AssociativeMemory(**options)


# --- should_trigger ----------------------------------------------------------------------------

def _unit(angle: float) -> torch.Tensor:
    return torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)


@pytest.mark.parametrize("cosine, fires", [(-0.7, False), (-0.8, True), (1.0, False),
                                           (0.0, False), (-1.0, True)])
def test_trigger_threshold(cosine, fires):
    g_long = _unit(0.4)
    g_short = _unit(0.4 + math.acos(cosine)) * 3.0  # the scale must not matter
    assert abs(float(F.cosine_similarity(g_short, g_long, dim=0)) - cosine) < 1e-9
    assert should_trigger(g_short, g_long, tau=0.75) is fires


# --- FSNetConv1d and attach_fsnet ------------------------------------------------------------

def _layer(seed: int = 0) -> tuple:
    torch.manual_seed(seed)
    conv = nn.Conv1d(4, 8, 3, padding=2, dilation=2)
    return conv, FSNetConv1d(conv)


def _x(seed: int = 2) -> torch.Tensor:
    return torch.randn(5, 4, 20, generator=torch.Generator().manual_seed(seed))


def test_adapter_starts_at_identity():
    conv, layer = _layer()
    assert layer.conv is conv
    assert layer.q_dim == 4 * 3 + 2 * 8 and layer.memory.W.shape == (28, 32)
    x = _x()
    with torch.no_grad():
        expected = conv(x)
    assert torch.equal(layer(x), expected)
    assert torch.equal(layer.eval()(x), expected)


def _real_grad(layer: FSNetConv1d) -> torch.Tensor:
    """A real backward pass through the layer; returns the normalised weight gradient."""
    layer.zero_grad(set_to_none=True)
    out = layer(_x())
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    F.mse_loss(out, target).backward()
    return F.normalize(layer.conv.weight.grad.reshape(-1), dim=0)


def _set_emas(layer: FSNetConv1d, g_hat: torch.Tensor, cosine: float) -> None:
    """g_short = 0 (so after store_grad it points along g_hat) and a unit g_long at the given
    cosine with g_hat."""
    other = torch.randn(g_hat.numel(), generator=torch.Generator().manual_seed(4))
    other = F.normalize(other - (other @ g_hat) * g_hat, dim=0)
    layer.g_short.zero_()
    layer.g_long.copy_(cosine * g_hat + math.sqrt(1 - cosine ** 2) * other)


def _randomise_heads(layer: FSNetConv1d) -> None:
    """A trained adapter: non-zero calibrations, so a memory write moves its slots."""
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for head in layer.heads:
            head.bias.copy_(torch.randn(head.bias.shape, generator=gen) * 0.5)


def test_trigger_in_eval_mode_recalls_two_slots():
    _, layer = _layer()
    _randomise_heads(layer)
    layer.eval()
    g_hat = _real_grad(layer)
    _set_emas(layer, g_hat, cosine=-0.8)
    g_long_before = layer.g_long.clone()

    layer.store_grad()

    assert layer.trigger and layer.n_triggers == 1
    assert torch.allclose(layer.g_short, (1 - SHORT_GAMMA) * g_hat, **TOL)
    assert torch.allclose(layer.g_long, 0.9 * g_long_before + 0.1 * g_hat, **TOL)

    # the q the next forward recalls with, by hand (no_grad: q_ema is not updated)
    with torch.no_grad():
        rep = layer.controller(layer.g_long.view(layer.n_chunks, -1))
        q_new = torch.cat([head(rep).reshape(-1) for head in layer.heads])
        q = SHORT_GAMMA * layer.q_ema + (1 - SHORT_GAMMA) * q_new
    _, idx = _top2_by_loop(q, layer.memory.W)
    w_before = layer.memory.W.clone()
    with torch.no_grad():
        layer(_x(6))
    assert _changed_columns(w_before, layer.memory.W) == sorted(idx)
    assert not layer.trigger
    # the trigger is consumed: another forward leaves the memory alone
    w_after = layer.memory.W.clone()
    with torch.no_grad():
        layer(_x(7))
    assert torch.equal(layer.memory.W, w_after)


def test_no_trigger_above_threshold_or_in_train_mode():
    _, layer = _layer()
    _randomise_heads(layer)
    layer.eval()
    g_hat = _real_grad(layer)
    _set_emas(layer, g_hat, cosine=-0.7)
    layer.store_grad()
    assert not layer.trigger and layer.n_triggers == 0

    _, layer = _layer()
    _randomise_heads(layer)
    layer.train()
    g_hat = _real_grad(layer)
    _set_emas(layer, g_hat, cosine=-0.8)
    w_before = layer.memory.W.clone()
    layer.store_grad()
    assert not layer.trigger and layer.n_triggers == 0
    layer(_x(6))
    assert torch.equal(layer.memory.W, w_before)


def test_no_trigger_without_memory():
    torch.manual_seed(0)
    layer = FSNetConv1d(nn.Conv1d(4, 8, 3, padding=1), memory=False).eval()
    assert layer.memory is None
    g_hat = _real_grad(layer)
    _set_emas(layer, g_hat, cosine=-0.9)
    layer.store_grad()
    assert not layer.trigger and layer.n_triggers == 0


def test_attach_wraps_only_wide_convs():
    torch.manual_seed(0)
    wide_a = nn.Conv1d(4, 8, 3, padding=1)
    point = nn.Conv1d(8, 8, 1)
    wide_b = nn.Conv1d(8, 8, 5, padding=4, dilation=2)
    head = nn.Conv1d(8, 4, 1)
    net = nn.Sequential(wide_a, nn.GELU(), point, nn.Sequential(wide_b, nn.GELU(), head))
    x = _x()
    with torch.no_grad():
        before = net(x)

    assert attach_fsnet(net, memory=False) == 2

    assert isinstance(net[0], FSNetConv1d) and net[0].conv is wide_a
    assert net[2] is point and type(net[2]) is nn.Conv1d
    assert isinstance(net[3][0], FSNetConv1d) and net[3][0].conv is wide_b
    assert net[3][2] is head and type(net[3][2]) is nn.Conv1d
    assert all(m.memory is None for m in (net[0], net[3][0]))
    with torch.no_grad():
        assert torch.equal(net(x), before)


def test_attach_rejects_a_module_without_wide_conv():
    net = nn.Sequential(nn.Linear(4, 4), nn.Conv1d(4, 4, 1), nn.Conv1d(4, 4, 3, groups=4))
    with pytest.raises(ValueError, match="kernel > 1"):
        attach_fsnet(net)


def test_adapter_rejects_grouped_conv_and_bad_read():
    with pytest.raises(ValueError, match="groups"):
        FSNetConv1d(nn.Conv1d(4, 8, 3, groups=2))
    with pytest.raises(ValueError, match="memory_read"):
        FSNetConv1d(nn.Conv1d(4, 8, 3), memory_read="foo")

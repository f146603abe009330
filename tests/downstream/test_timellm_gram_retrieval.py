"""GRA-M's pattern-value retriever and knowledge gate (downstream/timellm/gram.py) over the
``small_bank`` fixture (200 items of real ETTh1): the top-k items, distances and weights equal a
brute-force numpy computation on the retriever's own embeddings (both value modes); with
identity-like encoders a bank window retrieves itself first with weight ~1 at temperature 0.1;
top-k and temperature semantics; the retrieval embedding; the ``rows`` exclusion in training and
gradients through a fresh candidate subset; the eval cache follows parameter updates and the
value mode; the shape embedding is the CLS output; the gate is in (0, 1) in residual form (gate
0 keeps the features exactly, gate 1 gives the attended ones) with the retrieval weights as
attention prior; the gate losses; dtype/device follow the input; one-line ValueErrors naming
the argument.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from downstream.timellm.gram import (GRAM, AdaptiveKnowledgeGate, MemoryBank,
                                     PatternValueRetriever, gate_losses, window_stats)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEQ, HOR, D_LLM = 48, 12, 16
BOUNDS = (1000, 6000)  # the training rows of the small_bank fixture


def _gram(bank: MemoryBank, seed: int = 0, **kwargs) -> GRAM:
    torch.manual_seed(seed)
    gram = GRAM(bank, SEQ, HOR, D_LLM, **kwargs)
    with torch.no_grad():
        gram.retriever.mix.fill_(0.8)  # unequal shape/value weighting
    return gram.eval()


def _features(n: int, p: int = 5, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(n, p, D_LLM, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- retrieval ----------------------------------------------------------------------------------

def _brute_force(retriever, x, raw, bank_windows, bank_stats, k, temperature):
    """Top-k by numpy on the retriever's own embeddings: (indices, distances, weights)."""
    with torch.no_grad():
        sq, sb = retriever.shape_embed(x).numpy(), retriever.shape_embed(bank_windows).numpy()
        vq = retriever.value_embed(window_stats(x if raw is None else raw)).numpy()
        vb = retriever.value_embed(bank_stats).numpy()
        a = float(torch.sigmoid(retriever.mix))
    d = np.sqrt(a * ((sq[:, None] - sb[None]) ** 2).sum(-1)
                + (1 - a) * ((vq[:, None] - vb[None]) ** 2).sum(-1))
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    dist = np.take_along_axis(d, idx, 1)
    w = np.exp(-(dist - dist[:, :1]) / temperature)
    return idx, dist, w / w.sum(1, keepdims=True)


@pytest.mark.parametrize("use_raw", [False, True])
def test_retrieval_equals_brute_force(etth1, small_bank, use_raw):
    gram = _gram(small_bank)
    rng = np.random.default_rng(5)
    starts = rng.integers(6000, 8640 - SEQ, size=6)  # queries from the held-out rows
    v = rng.integers(0, 7, size=6)
    raw = torch.tensor(np.stack([etth1[s:s + SEQ, c] for s, c in zip(starts, v)]))
    x = (raw - raw.mean(1, keepdim=True)) / torch.sqrt(raw.var(1, unbiased=False, keepdim=True)
                                                        + 1e-5)
    out = gram(x, _features(6), raw=raw if use_raw else None)
    stats = window_stats(small_bank.raw_windows() if use_raw else small_bank.windows)
    idx, dist, w = _brute_force(gram.retriever, x, raw if use_raw else None,
                                small_bank.windows, stats, 5, 0.1)
    assert out.indices.tolist() == idx.tolist()
    np.testing.assert_allclose(out.distances.detach().numpy(), dist, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.weights.detach().numpy(), w, rtol=1e-4, atol=1e-6)
    assert torch.equal(out.retrieved_futures, small_bank.futures[out.indices])


def _pattern_bank(m: int = 12, t: int = 32, h: int = 8) -> MemoryBank:
    steps = torch.arange(t, dtype=torch.float64)
    windows = torch.stack([torch.sin(2 * torch.pi * (i + 1) * steps / t + i) for i in range(m)])
    windows = ((windows - windows.mean(1, keepdim=True)) / windows.std(1, keepdim=True)).float()
    futures = torch.arange(m, dtype=torch.float32)[:, None].repeat(1, h)  # item i's future = i
    rows = torch.arange(m) * 100 + t
    return MemoryBank(windows, futures, rows, torch.zeros(m, dtype=torch.long),
                      torch.zeros(m), torch.ones(m), (0, 100 * m + t + h), t, h)


def test_identity_like_encoders_retrieve_the_query_itself_with_weight_near_one():
    bank = _pattern_bank()
    torch.manual_seed(0)
    gram = GRAM(bank, 32, 8, D_LLM).eval()
    retriever = gram.retriever
    retriever.shape_embed = lambda w: F.normalize(w, dim=-1)  # identity-like: T = width = 32
    retriever.value_embed = lambda s: F.normalize(s, dim=-1)
    out = gram(bank.windows, _features(12, p=3))
    assert out.indices[:, 0].tolist() == list(range(12))
    assert (out.distances[:, 0] < 1e-5).all() and (out.weights[:, 0] > 0.999).all()
    assert torch.equal(out.retrieved_futures[:, 0, 0], torch.arange(12.0))
    noisy = bank.windows + 0.05 * torch.randn(bank.windows.shape)
    assert gram(noisy, _features(12, p=3)).indices[:, 0].tolist() == list(range(12))


def test_top_k_and_temperature(small_bank):
    x = small_bank.windows[:4]
    sharp, soft = _gram(small_bank, top_k=3), _gram(small_bank, top_k=3, temperature=1.0)
    a, b = sharp(x, _features(4)), soft(x, _features(4))
    assert a.weights.shape == a.distances.shape == (4, 3)
    assert a.retrieved_futures.shape == (4, 3, HOR) and a.retrieval_embedding.shape == (4, 1, D_LLM)
    assert (a.distances[:, 1:] >= a.distances[:, :-1]).all()
    assert torch.equal(a.indices, b.indices)  # same encoders: same neighbours
    for out, tau in ((a, 0.1), (b, 1.0)):
        assert torch.allclose(out.weights, torch.softmax(-out.distances / tau, 1), atol=1e-6)
        assert torch.allclose(out.weights.sum(1), torch.ones(4))
    assert (a.weights[:, 0] > b.weights[:, 0]).all()  # lower temperature: sharper
    five = _gram(small_bank)(x, _features(4))
    assert five.weights.shape == (4, 5) and torch.equal(five.indices[:, :3], a.indices)


def test_retrieval_embedding_is_the_weighted_projection(small_bank):
    gram = _gram(small_bank)
    r = gram.retriever(small_bank.windows[:3])
    expected = (r.weights[..., None] * r.knowledge).sum(1, keepdim=True)
    assert torch.allclose(r.embedding, expected, atol=1e-6)
    with torch.no_grad():
        shape = gram.retriever.shape_embed(small_bank.windows[r.indices.reshape(-1)])
        direct = gram.retriever.project(torch.cat([r.futures.reshape(-1, HOR), shape], -1))
    assert torch.allclose(r.knowledge.reshape(-1, D_LLM), direct, atol=1e-5)


def test_rows_exclude_overlapping_items_in_training(small_bank, one_line_error):
    x, rows = small_bank.windows[:16], small_bank.rows[:16]
    gram = _gram(small_bank)
    assert (gram(x, _features(16)).indices[:, 0] == torch.arange(16)).all()  # itself, unmasked
    out = gram(x, _features(16), rows=rows)
    stats = window_stats(small_bank.windows)
    order = _brute_force(gram.retriever, x, None, small_bank.windows, stats, len(small_bank),
                         0.1)[0]
    allowed = np.abs(rows.numpy()[:, None] - small_bank.rows.numpy()[order]) >= SEQ + HOR
    expected = [row[ok][:5].tolist() for row, ok in zip(order, allowed)]
    assert out.indices.tolist() == expected  # the nearest admissible items, exactly
    gram.train()
    torch.manual_seed(1)
    out = gram(x, _features(16), rows=rows)
    assert ((rows[:, None] - small_bank.rows[out.indices]).abs() >= SEQ + HOR).all()
    tight = _gram(small_bank, train_candidates=5).train()
    with pytest.raises(ValueError) as err:
        for _ in range(20):  # 5 random candidates: some query soon meets a masked one
            tight(x, _features(16), rows=rows)
    one_line_error(err, "rows")


def test_training_scores_a_fresh_subset_with_gradients(small_bank):
    gram = _gram(small_bank, train_candidates=32).train()
    torch.manual_seed(0)
    out = gram(small_bank.windows[:8], _features(8), raw=small_bank.raw_windows()[:8])
    assert out.indices.max() < len(small_bank)
    loss = out.retrieval_embedding.square().mean() + out.gated_features.square().mean() \
        + gate_losses(out.gate, out.match)["total"]
    loss.backward()
    for name, p in gram.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    encoder_grad = sum(p.grad.abs().sum() for p in gram.retriever.shape_encoder.parameters())
    assert encoder_grad > 0 and gram.retriever.mix.grad.abs() > 0


def test_eval_cache_follows_parameter_updates(small_bank):
    gram = _gram(small_bank)
    x, feats = small_bank.windows[100:104], _features(4)
    with torch.inference_mode():
        gram(x, feats)
    first = gram(x, feats)  # the cache made under inference mode serves autograd
    cached = gram.retriever._cache[2]
    gram(x, feats)
    assert gram.retriever._cache[2] is cached  # reused while the encoders are unchanged
    (first.distances.sum() + first.gated_features.sum()).backward()
    with torch.no_grad():  # an SGD step, in place as optimisers do
        for p in gram.retriever.value_encoder.parameters():
            p.sub_(0.5 * p.grad)
    after = gram(x, feats)
    gram.retriever.refresh()
    fresh = gram(x, feats)
    assert torch.equal(after.indices, fresh.indices) and torch.equal(after.weights, fresh.weights)
    assert not torch.equal(after.distances, first.distances)


def test_eval_cache_follows_the_value_mode(small_bank):
    x, feats, raw = small_bank.windows[:4], _features(4), small_bank.raw_windows()[:4]
    gram = _gram(small_bank)
    with_raw, without = gram(x, feats, raw=raw), gram(x, feats)
    fresh = _gram(small_bank)(x, feats)  # same seed, never saw raw statistics
    assert torch.equal(without.distances, fresh.distances)
    assert not torch.equal(with_raw.distances, without.distances)


@pytest.mark.parametrize("seq_len,max_tokens", [(48, 64), (48, 16), (50, 16)])
def test_shape_embedding_is_the_cls_output(seq_len, max_tokens):
    bank = MemoryBank.build(np.random.default_rng(0).standard_normal((300, 2)), (0, 300),
                            seq_len, 4, max_items=20)
    torch.manual_seed(0)
    retriever = PatternValueRetriever(bank, D_LLM, max_tokens=max_tokens).eval()
    step = -(-seq_len // max_tokens)
    tokens = -(-seq_len // step)
    assert retriever.position.shape[0] == tokens + 1 and tokens <= max_tokens
    x = bank.windows[:3]
    padded = torch.cat([x[:, :1].expand(-1, tokens * step - seq_len), x], 1)  # left, replicate
    h = retriever.token(padded.reshape(3, tokens, step))
    h = torch.cat([retriever.cls.expand(3, -1, -1), h], 1) + retriever.position
    with torch.no_grad():
        expected = F.normalize(retriever.shape_encoder(h)[:, 0], dim=-1)
        assert torch.allclose(retriever.shape_embed(x), expected, atol=1e-6)
        assert torch.allclose(retriever.shape_embed(x).norm(dim=1), torch.ones(3))


# --- gate and losses ----------------------------------------------------------------------------

def test_gate_in_unit_interval_and_residual_form():
    torch.manual_seed(0)
    gate = AdaptiveKnowledgeGate(D_LLM)
    current, knowledge = _features(4, p=6), _features(4, p=3, seed=2)
    weights = torch.softmax(torch.randn(4, 3), 1)
    out, g, match = gate(current, knowledge, weights)
    assert out.shape == current.shape and g.shape == match.shape == (4, 6)
    assert ((g > 0) & (g < 1)).all() and ((match > 0) & (match < 1)).all()
    attended, attention, _ = gate.attend(current, knowledge, weights)
    assert torch.allclose(attention.sum(-1), torch.ones(4, 6))
    assert torch.allclose(out, current + g[..., None] * (attended - current), atol=1e-6)
    with torch.no_grad():
        gate.gate.bias.fill_(-1e4)
    closed, g0, _ = gate(current, knowledge, weights)
    assert (g0 == 0).all() and torch.equal(closed, current)
    with torch.no_grad():
        gate.gate.bias.fill_(1e4)
    opened, g1, _ = gate(current, knowledge, weights)
    assert (g1 == 1).all() and torch.allclose(opened, attended, atol=1e-6)


def test_gate_uses_the_retrieval_weights_as_a_prior():
    torch.manual_seed(0)
    gate = AdaptiveKnowledgeGate(D_LLM)
    current, knowledge = _features(2, p=4), _features(2, p=3, seed=2)
    one_hot = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    attended, attention, _ = gate.attend(current, knowledge, one_hot)
    assert torch.allclose(attention, one_hot[:, None].expand(-1, 4, -1), atol=1e-6)
    assert torch.isfinite(attended).all()
    _, free, _ = gate.attend(current, knowledge)
    assert not torch.allclose(free, attention, atol=1e-3)


def test_gate_losses(one_line_error):
    gate = torch.tensor([[0.5, 0.9], [0.2, 0.7]], requires_grad=True)
    match = torch.tensor([[0.4, 0.8], [0.3, 0.6]], requires_grad=True)
    losses = gate_losses(gate, match)
    values = {k: v.item() for k, v in losses.items()}
    assert set(losses) == {"gate_entropy", "gate_consistency", "total"}
    assert all(np.isfinite(v) for v in values.values())
    p = np.array([0.5, 0.9, 0.2, 0.7])
    entropy = np.mean(-p * np.log(p) - (1 - p) * np.log(1 - p))
    assert values["gate_entropy"] == pytest.approx(entropy)
    assert values["gate_consistency"] == pytest.approx(0.01)
    assert values["total"] == pytest.approx(values["gate_entropy"] + values["gate_consistency"])
    losses["gate_consistency"].backward()
    assert match.grad is None and gate.grad.abs().sum() > 0  # the target is detached
    same = gate_losses(match.detach(), match.detach())
    assert float(same["gate_consistency"]) == 0.0
    assert float(gate_losses(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))["gate_entropy"]) \
        < 1e-4
    with pytest.raises(ValueError) as err:
        gate_losses(gate, match[:, :1])
    one_line_error(err, "match")


# --- dtype, device, argument checks -------------------------------------------------------------

def test_float64_input_gives_float64_outputs(small_bank):
    gram = _gram(small_bank).double()
    x = small_bank.windows[:3].double()
    out = gram(x, _features(3, dtype=torch.float64), raw=small_bank.raw_windows()[:3].double())
    for name in ("retrieval_embedding", "gated_features", "gate", "match", "retrieved_futures",
                 "weights", "distances"):
        value = getattr(out, name)
        assert value.dtype == torch.float64 and value.device == x.device, name
    assert out.indices.dtype == torch.long
    assert gram.retriever.bank_rows.dtype == torch.long
    assert not [k for k in gram.state_dict() if "bank" in k or "stats" in k]  # saved apart


def test_one_line_value_errors(small_bank, one_line_error):
    gram = _gram(small_bank)
    x = small_bank.windows[:2]
    cases = [("x", lambda: gram(x[:, 1:], _features(2))),
             ("x", lambda: gram(x.double(), _features(2, dtype=torch.float64))),
             ("features", lambda: gram(x, _features(3))),
             ("features", lambda: gram(x, torch.zeros(2, 4, D_LLM + 1))),
             ("raw", lambda: gram(x, _features(2), raw=x[:1])),
             ("raw", lambda: gram(x, _features(2), raw=x.double())),
             ("rows", lambda: gram(x, _features(2), rows=small_bank.rows[:3])),
             ("bank", lambda: GRAM(small_bank, SEQ + 1, HOR, D_LLM)),
             ("top_k", lambda: GRAM(small_bank, SEQ, HOR, D_LLM, top_k=0)),
             ("top_k", lambda: GRAM(small_bank, SEQ, HOR, D_LLM, top_k=201)),
             ("temperature", lambda: GRAM(small_bank, SEQ, HOR, D_LLM, temperature=0.0)),
             ("d_llm", lambda: PatternValueRetriever(small_bank, 0)),
             ("d_match", lambda: AdaptiveKnowledgeGate(D_LLM, d_match=0))]
    for name, call in cases:
        with pytest.raises(ValueError) as err:
            call()
        one_line_error(err, name)

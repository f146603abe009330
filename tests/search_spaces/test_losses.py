"""Contrastive losses: the ts2vec configuration equals TS2Vec's hierarchical loss written out
from the paper (Yue et al., AAAI 2022, Eq. 1-3, Alg. 1), and every loss prefers aligned views."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import search_spaces as ss
from search_spaces import spec as S
from search_spaces.learner.losses import LOSS_FUNCTIONS, hierarchical_contrastive_loss


def paper_loss(z1, z2):
    """TS2Vec Eq. 1-3 with explicit loops: at each level the mean of instance and temporal
    losses over all anchors, max pooling by 2 until one step is left, averaged over levels."""
    levels = []
    while True:
        B, T, _ = z1.shape
        inst, temp = [], []
        for t in range(T):
            for i in range(B):
                for za, zb in ((z1, z2), (z2, z1)):
                    num = torch.exp(za[i, t] @ zb[i, t])
                    den = sum(torch.exp(za[i, t] @ zb[j, t]) for j in range(B)) + sum(
                        torch.exp(za[i, t] @ za[j, t]) for j in range(B) if j != i)
                    inst.append(-torch.log(num / den))
                    if T > 1:
                        num = torch.exp(za[i, t] @ zb[i, t])
                        den = sum(torch.exp(za[i, t] @ zb[i, s]) for s in range(T)) + sum(
                            torch.exp(za[i, t] @ za[i, s]) for s in range(T) if s != t)
                        temp.append(-torch.log(num / den))
        level = torch.stack(inst).mean() / 2
        if temp:
            level = level + torch.stack(temp).mean() / 2
        levels.append(level)
        if T == 1:
            break
        z1 = F.max_pool1d(z1.transpose(1, 2), 2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), 2).transpose(1, 2)
    return torch.stack(levels).mean()


@pytest.mark.parametrize("T", [1, 5, 8])
def test_ts2vec_configuration_matches_paper(T):
    torch.manual_seed(T)
    z1, z2 = torch.randn(3, T, 4) * 0.5, torch.randn(3, T, 4) * 0.5
    spec = ss.preset("ts2vec")
    ours = hierarchical_contrastive_loss(z1, z2, spec["PairCell"], spec["LossCell"])
    assert torch.allclose(ours, paper_loss(z1, z2), rtol=1e-5, atol=1e-6)


CONFIGS = list(itertools.product(S.LOSSES, S.SIMILARITIES, S.POOLINGS, (2, 7)))


@pytest.mark.parametrize("loss,sim,pool,kernel", CONFIGS)
def test_aligned_views_score_lower_than_shuffled(loss, sim, pool, kernel):
    torch.manual_seed(0)
    z = torch.randn(6, 24, 8)
    noisy = z + 0.05 * torch.randn_like(z)
    shuffled = noisy[torch.randperm(6)][:, torch.randperm(24)]
    pair = {"contrasts": list(S.CONTRASTS), "pooling": pool, "kernel": kernel,
            "level_weighting": "uniform"}
    cell = {"loss": loss, "similarity": sim, "temperature": 0.5}
    aligned = hierarchical_contrastive_loss(z, noisy, pair, cell)
    wrong = hierarchical_contrastive_loss(z, shuffled, pair, cell)
    assert torch.isfinite(aligned) and aligned < wrong


@pytest.mark.parametrize("name", sorted(LOSS_FUNCTIONS))
def test_single_item_groups_give_zero(name):
    z = torch.randn(5, 1, 3)
    assert LOSS_FUNCTIONS[name](z, z, "dot", 1.0).item() == 0.0


def test_level_weighting_changes_the_loss():
    torch.manual_seed(1)
    z1, z2 = torch.randn(4, 16, 8), torch.randn(4, 16, 8)
    base = {"contrasts": ["instance", "temporal"], "pooling": "avg", "kernel": 2}
    cell = {"loss": "InfoNCE", "similarity": "cosine", "temperature": 0.1}
    values = {w: hierarchical_contrastive_loss(z1, z2, {**base, "level_weighting": w}, cell).item()
              for w in S.LEVEL_WEIGHTINGS}
    assert len({round(v, 6) for v in values.values()}) == 3


def test_unknown_similarity_is_a_value_error():
    from search_spaces.learner.losses import similarity
    with pytest.raises(ValueError, match="LossCell.similarity"):
        similarity(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), "manhattan")


@pytest.mark.parametrize("sim,tau", [("dot", 1.0), ("dot", 0.2), ("cosine", 0.1)])
def test_gram_kernel_matches_generic_nt_xent_and_gradcheck(sim, tau):
    from search_spaces.learner.losses import GramNTXent, similarity
    torch.manual_seed(0)
    z = torch.randn(3, 8, 5, dtype=torch.float64, requires_grad=True)

    def generic(z):
        zz = F.normalize(z, dim=-1) if sim == "cosine" else z
        logits = similarity(zz, zz, "dot") / tau
        logits = logits.masked_fill(torch.eye(8, dtype=torch.bool), float("-inf"))
        idx = (torch.arange(8) + 4) % 8
        return (torch.logsumexp(logits, -1) - logits[:, torch.arange(8), idx]).mean()

    ours = LOSS_FUNCTIONS["NT-Xent"](z[:, :4], z[:, 4:], sim, tau)
    assert torch.allclose(ours, generic(z))
    g_ours, = torch.autograd.grad(ours, z)
    g_ref, = torch.autograd.grad(generic(z), z)
    assert torch.allclose(g_ours, g_ref, atol=1e-10)
    assert torch.autograd.gradcheck(lambda t: GramNTXent.apply(t, tau), (z,))
    for block in (1, 3, 5):  # blocks of rows smaller than, and not dividing, 2K = 8
        blocked = GramNTXent.apply(F.normalize(z, dim=-1) if sim == "cosine" else z, tau, block)
        assert torch.allclose(blocked, ours)
        assert torch.allclose(torch.autograd.grad(blocked, z)[0], g_ref, atol=1e-10)


def test_gram_kernel_is_stable_for_large_logits_and_single_rows():
    """Logits in the hundreds (unnormalised TS2Vec representations) and bands of one row, whose
    last row has no logit of its own band (all from earlier bands' columns)."""
    from search_spaces.learner.losses import GramNTXent
    torch.manual_seed(1)
    z = (30 * torch.randn(2, 10, 4, dtype=torch.float64)).requires_grad_()
    logits = (z @ z.transpose(1, 2)).masked_fill(torch.eye(10, dtype=torch.bool), float("-inf"))
    ref = (torch.logsumexp(logits, -1) - logits[:, torch.arange(10), (torch.arange(10) + 5) % 10]).mean()
    g_ref, = torch.autograd.grad(ref, z)
    for block in (1, 4, 10):
        loss = GramNTXent.apply(z, 1.0, block)
        g, = torch.autograd.grad(loss, z)
        assert torch.isfinite(loss) and torch.allclose(loss, ref)
        assert torch.allclose(g, g_ref, atol=1e-9)


def test_gram_kernel_takes_groups_in_chunks_under_the_workspace_budget(monkeypatch):
    """A budget below one group's triangle: the groups go one at a time, same loss and grad."""
    from search_spaces.learner import gram_ntxent
    torch.manual_seed(2)
    z = torch.randn(3, 12, 4, dtype=torch.float64, requires_grad=True)
    whole = gram_ntxent.GramNTXent.apply(z, 0.5, 5)
    g_whole, = torch.autograd.grad(whole, z)
    monkeypatch.setattr(gram_ntxent, "WORKSPACE_BYTES", 8)
    monkeypatch.setattr(gram_ntxent, "_WORKSPACE", {})
    parts = gram_ntxent.GramNTXent.apply(z, 0.5, 5)
    assert gram_ntxent._WORKSPACE[(torch.float64, "cpu")].numel() == gram_ntxent._triangle_numel(gram_ntxent._bands(12, 5), 12)
    assert torch.allclose(parts, whole)
    assert torch.allclose(torch.autograd.grad(parts, z)[0], g_whole, atol=1e-12)

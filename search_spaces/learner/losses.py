"""Contrastive losses of the PairCell / LossCell: hierarchical instance, temporal and cross-scale
contrast with InfoNCE, NT-Xent or triplet objectives.

All contrasts reduce to one shape: ``za, zb`` of shape (G, K, D) -- G independent groups of K
items -- where ``(za[g, k], zb[g, k])`` is a positive pair and every other item of the group is
a negative. Instance contrast groups by timestamp (G=T, K=B), temporal contrast by instance
(G=B, K=T), both as in TS2Vec (Yue et al., AAAI 2022, Eq. 1-2); cross-scale contrast pairs each
timestamp of view 1 with the series-level (max-pooled over time) representation of the same
instance in view 2 (G=T, K=B).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .gram_ntxent import GRAM_BLOCK_ROWS, GramNTXent  # noqa: F401  (re-exported)


def similarity(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """Pairwise similarity within groups: a (G, K, D), b (G, M, D) -> (G, K, M).

    ``dot``: a.b; ``cosine``: a.b / (|a||b|); ``neg_euclidean``: -|a-b|.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "dot":
        return a @ b.transpose(1, 2)
    if kind == "cosine":
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(1, 2)
    if kind == "neg_euclidean":
        return -torch.cdist(a, b)
    raise ValueError(f"LossCell.similarity: got {kind!r}; allowed: ['dot', 'cosine', 'neg_euclidean']")


def nt_xent(za, zb, sim: str, temperature: float) -> torch.Tensor:
    """NT-Xent (Chen et al., SimCLR 2020) in the TS2Vec form: for each of the 2K items, the
    other 2K-1 items of its group are candidates and the other view of the same item is the
    positive. za, zb: (G, K, D) -> scalar. Needs K >= 2 (returns 0 otherwise).

    Equal to TS2Vec's tril/triu construction, computed without copying the (G, 2K, 2K) logits:
    the self-similarity is set to -inf and the loss is logsumexp - positive logit. Dot and
    cosine similarity use the Gram-matrix kernel :class:`GramNTXent`.
    """
    G, K, _ = za.shape
    if K < 2:
        return za.new_zeros(())
    z = torch.cat([za, zb], dim=1)  # G x 2K x D
    if sim in ("dot", "cosine"):
        return GramNTXent.apply(F.normalize(z, dim=-1) if sim == "cosine" else z, temperature)
    logits = similarity(z, z, sim)  # G x 2K x 2K
    if temperature != 1.0:
        logits = logits / temperature
    logits.diagonal(dim1=1, dim2=2).fill_(float("-inf"))
    lse = torch.logsumexp(logits, dim=-1)  # G x 2K
    pos_a = logits.diagonal(offset=K, dim1=1, dim2=2)  # (i, K+i)
    pos_b = logits.diagonal(offset=-K, dim1=1, dim2=2)  # (K+i, i)
    return ((lse[:, :K] - pos_a).mean() + (lse[:, K:] - pos_b).mean()) / 2


def info_nce(za, zb, sim: str, temperature: float) -> torch.Tensor:
    """InfoNCE (van den Oord et al., CPC 2018): each item of view a picks its positive among the
    K items of view b (and symmetrically). za, zb: (G, K, D) -> scalar; 0 when K < 2."""
    G, K, _ = za.shape
    if K < 2:
        return za.new_zeros(())
    logits = similarity(za, zb, sim) / temperature  # G x K x K
    target = torch.arange(K, device=za.device).expand(G, K)
    return (F.cross_entropy(logits.reshape(G * K, K), target.reshape(-1))
            + F.cross_entropy(logits.transpose(1, 2).reshape(G * K, K), target.reshape(-1))) / 2


def triplet(za, zb, sim: str, temperature: float, margin: float = 1.0) -> torch.Tensor:
    """Triplet hinge (Schroff et al., FaceNet 2015) on similarities: mean over anchors and all
    negatives of relu(margin + (s(a, n) - s(a, p)) / temperature). za, zb: (G, K, D) -> scalar."""
    G, K, _ = za.shape
    if K < 2:
        return za.new_zeros(())
    s = similarity(za, zb, sim) / temperature  # G x K x K, positives on the diagonal
    pos = torch.diagonal(s, dim1=1, dim2=2).unsqueeze(-1)
    off = ~torch.eye(K, dtype=torch.bool, device=za.device)
    return F.relu(margin + s - pos)[:, off].mean()


LOSS_FUNCTIONS = {"InfoNCE": info_nce, "NT-Xent": nt_xent, "triplet": triplet}


def _contrast_terms(z1, z2, contrasts, loss_fn, sim, tau) -> list:
    """Loss terms at one level. z1, z2: (B, T, D)."""
    terms = []
    if "instance" in contrasts:
        terms.append(loss_fn(z1.transpose(0, 1), z2.transpose(0, 1), sim, tau))
    if "temporal" in contrasts and z1.size(1) > 1:
        terms.append(loss_fn(z1, z2, sim, tau))
    if "cross_scale" in contrasts:
        g2 = z2.max(dim=1).values.unsqueeze(0).expand(z1.size(1), -1, -1)  # T x B x D
        terms.append(loss_fn(z1.transpose(0, 1), g2, sim, tau))
    return terms


def _pool(z: torch.Tensor, kind: str, kernel: int) -> torch.Tensor:
    """Pool (B, T, D) over time with stride = kernel, dropping a short tail as TS2Vec does;
    a series shorter than the kernel is pooled to one step."""
    x = z.transpose(1, 2)
    kernel = min(kernel, x.size(-1))
    pool = F.max_pool1d if kind == "max" else F.avg_pool1d
    return pool(x, kernel_size=kernel).transpose(1, 2)


def _level_weight(level: int, scheme: str) -> float:
    if scheme == "fine_first":
        return 2.0 ** -level
    if scheme == "coarse_first":
        return 2.0 ** level
    return 1.0


def hierarchical_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, pair_cell: dict,
                                  loss_cell: dict) -> torch.Tensor:
    """Hierarchical contrastive loss (TS2Vec, Yue et al. 2022, Alg. 1) generalised to the
    PairCell / LossCell choices.

    At each level the chosen contrasts are computed and averaged; the representations are then
    pooled over time (``max`` or ``avg``, kernel k, stride k) until one step remains, where only
    the instance-type contrasts apply. Each contrast has weight 1/len(contrasts) within a level
    and levels are weighted by ``level_weighting`` (normalised).
    With max pooling of kernel 2, instance + temporal, NT-Xent, dot, temperature 1 and uniform
    weights this is exactly TS2Vec's ``hierarchical_contrastive_loss`` (alpha = 0.5).

    Args:
        z1, z2: (B, T, D) representations of the two views on their overlapping timestamps.

    Returns:
        A scalar tensor (NaN/inf if the representations diverged; the trainer checks).
    """
    loss_fn = LOSS_FUNCTIONS[loss_cell["loss"]]
    sim, tau = loss_cell["similarity"], float(loss_cell["temperature"])
    contrasts = pair_cell["contrasts"]
    total, weight_sum, level = z1.new_zeros(()), 0.0, 0
    while True:
        terms = _contrast_terms(z1, z2, contrasts, loss_fn, sim, tau)
        if terms:
            w = _level_weight(level, pair_cell["level_weighting"])
            total = total + w * torch.stack(terms).sum() / len(contrasts)
            weight_sum += w
        if z1.size(1) <= 1:
            break
        z1 = _pool(z1, pair_cell["pooling"], pair_cell["kernel"])
        z2 = _pool(z2, pair_cell["pooling"], pair_cell["kernel"])
        level += 1
    return total / max(weight_sum, 1e-12)

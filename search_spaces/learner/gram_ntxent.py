"""The NT-Xent kernel on dot-product logits used by every dot/cosine contrast (TS2Vec's
temporal contrast at T = 3000 is the largest matrix product of a training step).

For the 2K items of a group, S = Z Z^T / tau (Z: (2K, D)) is symmetric, so only its upper
triangle is formed: a band of rows at a time, columns from the band's first row on, the
band's own lower triangle and the self-similarity masked to -inf. Each row's softmax statistics
(max m_r and sum l_r of exp(S_r - m_r), accumulated online as in Milakov & Gimelshein 2018,
"Online normalizer calculation for softmax") come from its own band (columns c > r) and from
the earlier bands' columns (c < r). The loss is

    L = w * sum_r (lse_r - S_{r, partner(r)}),   lse_r = m_r + log l_r,   w = 1 / (G * 2K),

with partner(r) = (r + K) mod 2K (Chen et al., SimCLR 2020, Eq. 1; TS2Vec, Yue et al. 2022,
Eq. 1-2), and since S is a Gram matrix its gradient is

    dL/dZ = w * ((P + P^T) Z - 2 Y Z) / tau,   (P + P^T)_{rc} = exp(S_rc - lse_r) + exp(S_rc - lse_c),

where P is the row softmax and Y Z is Z with its two halves swapped. Each unordered pair {r, c}
is stored once, so a step costs 1.5 matrix products of size 2K x 2K x D instead of 3 (forward
logits, then P Z and P^T Z). The stored upper triangle lives in a workspace kept between calls:
a freshly allocated buffer of this size (up to 144 MB at 2K = 6000, G = 2) is page-faulted in on
every step, which costs more than the products it holds. The workspace is one per process
(and dtype): two threads must not run this kernel at the same time (training runs one trial
per process; Ray workers are processes).
"""
from __future__ import annotations

import torch

#: Rows of a band of the logits (:class:`GramNTXent`).
GRAM_BLOCK_ROWS = 256
#: Memory (bytes) for the stored triangles of the groups processed at once: 256 MB holds three
#: groups at 2K = 6000 (TS2Vec's temporal contrast at crop 3000) and bounds the workspace for
#: large batches, whose (G, 2K, 2K) logits TS2Vec would hold whole.
WORKSPACE_BYTES = 256 * 2**20

_WORKSPACE: dict = {}


def _workspace(numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A flat buffer of at least ``numel`` elements, reused between calls (one per dtype and
    device; grown when a larger one is asked for)."""
    key = (dtype, str(device))
    buf = _WORKSPACE.get(key)
    if buf is None or buf.numel() < numel:
        buf = _WORKSPACE[key] = torch.empty(numel, dtype=dtype, device=device)
    return buf


def _bands(K2: int, block: int) -> list:
    """(first row, end row, offset in the workspace per group) of each band."""
    out, offset = [], 0
    for a in range(0, K2, block):
        b = min(a + block, K2)
        out.append((a, b, offset))
        offset += (b - a) * (K2 - a)
    return out


def _triangle_numel(bands: list, K2: int) -> int:
    """Elements of one group's stored ``bands`` (:func:`_bands`; about K2^2 / 2)."""
    first, _, offset = bands[-1]
    return offset + (K2 - first) ** 2


def _update(m: torch.Tensor, l: torch.Tensor, s: torch.Tensor, dim: int) -> None:
    """Online softmax statistics: fold the logits ``s`` reduced over ``dim`` into the running
    max ``m`` and sum ``l`` (in place). Rows still without a finite logit keep m = finfo.min."""
    m_new = torch.maximum(m, s.amax(dim=dim))
    l.mul_((m - m_new).exp_())
    l.add_((s - m_new.unsqueeze(dim)).exp_().sum(dim=dim))
    m.copy_(m_new)


def _groups_loss(z: torch.Tensor, temperature: float, bands: list, needs_grad: bool) -> tuple:
    """Unnormalised loss sum and gradient (or None) of the groups of ``z`` (g, 2K, D) over the
    row ``bands`` (:func:`_bands`): sum_r (lse_r - S_{r, partner(r)}) and (P + P^T) Z - 2 Y Z,
    both over all g groups."""
    G, K2, _ = z.shape
    K = K2 // 2
    ws = _workspace(G * _triangle_numel(bands, K2), z.dtype, z.device)
    m = torch.full((G, K2), torch.finfo(z.dtype).min, dtype=z.dtype, device=z.device)
    l = torch.zeros_like(m)
    rows = bands[0][1]  # the widest band; the last one may be narrower
    lower = torch.ones(rows, rows, dtype=torch.bool, device=z.device).tril_()  # incl. diagonal
    stored = []
    for a, b, offset in bands:
        s = ws[G * offset:G * (offset + (b - a) * (K2 - a))].view(G, b - a, K2 - a)
        torch.bmm(z[:, a:b], z[:, a:].transpose(1, 2), out=s)
        if temperature != 1.0:
            s.div_(temperature)
        s[:, :, :b - a].masked_fill_(lower[:b - a, :b - a], float("-inf"))
        _update(m[:, a:b], l[:, a:b], s, dim=2)
        _update(m[:, a:], l[:, a:], s, dim=1)
        stored.append(s)
    lse = l.log_().add_(m)
    pos = (z[:, :K] * z[:, K:]).sum(-1) / temperature  # S_{k, K+k}
    total = lse.sum() - 2 * pos.sum()
    if not needs_grad:
        return total, None
    grad = torch.zeros_like(z)
    for (a, b, _), s in zip(bands, stored):
        q = (s - lse[:, a:b].unsqueeze(2)).exp_()
        q.add_(s.sub_(lse[:, a:].unsqueeze(1)).exp_())  # (P + P^T) on the band
        grad[:, a:b].baddbmm_(q, z[:, a:])
        grad[:, a:].baddbmm_(q.transpose(1, 2), z[:, a:b])
    swapped = torch.cat([z[:, K:], z[:, :K]], dim=1)  # Y Z
    return total, grad.sub_(swapped, alpha=2.0)


class GramNTXent(torch.autograd.Function):
    """NT-Xent over the Gram logits of ``z`` (G, 2K, D) -> scalar, items k and K + k of a group
    being the positive pair; see the module docstring for the method. ``apply(z, tau, block)``.
    The gradient is formed in the forward pass (the loss is the graph's last node). Groups are
    independent, so they are taken as many at a time as fit :data:`WORKSPACE_BYTES` (at least
    one): the stored triangles never need more memory than that or than one group's."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, temperature: float, block: int = GRAM_BLOCK_ROWS):
        G, K2, _ = z.shape
        bands = _bands(K2, block)
        step = max(1, WORKSPACE_BYTES // (_triangle_numel(bands, K2) * z.element_size()))
        needs_grad = ctx.needs_input_grad[0]
        total, grads = z.new_zeros(()), []
        for g in range(0, G, step):
            part, grad = _groups_loss(z[g:g + step], temperature, bands, needs_grad)
            total += part
            grads.append(grad)
        if needs_grad:
            grad = grads[0] if len(grads) == 1 else torch.cat(grads)
            ctx.save_for_backward(grad.div_(G * K2 * temperature))
        return total / (G * K2)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad * grad_out, None, None

"""Encoder-cell operations of the joint search space (``Encoder.cell`` in a spec).

Every op maps a tensor of shape ``(B, N, H, T)`` -- B batch, N variables (graph nodes; N=1
when the input projection already mixed the variables), H hidden width, T time -- to a tensor
of the same shape, and is built as ``cls(hidden, n_nodes, dilation)`` (use :func:`make_op`).
Temporal ops act on each variable separately; spatial ops mix the N variables at every
timestamp. The op names are :data:`search_spaces.spec.ENCODER_OPS`.

:class:`SamePadConv` and :class:`TS2VecConvBlock` reproduce TS2Vec's ``SamePadConv`` and
``ConvBlock`` (Yue et al., AAAI 2022) on ``(B, C, T)`` tensors, with the same parameter names,
so the model builder can also use the block as the output head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .convs import SamePadConv, TS2VecConvBlock, check_positive
from ..spec import ENCODER_OPS

__all__ = [
    "SamePadConv", "TS2VecConvBlock", "Identity", "GatedTCN", "TS2VecConv",
    "TemporalAttention", "DiffusionGCN", "SpatialAttention", "OPS", "make_op",
]

#: Width of the node embeddings E1, E2 of the adaptive adjacency (Graph WaveNet uses 10).
NODE_EMBED_DIM = 10
#: Number of attention heads when the hidden width allows it (otherwise a single head).
ATTENTION_HEADS = 4


class _Op(nn.Module):
    """Common base: validates the constructor arguments and the input shape."""

    #: Whether the op needs the input's N to equal ``n_nodes`` (per-node parameters).
    fixed_nodes = False

    def __init__(self, hidden: int, n_nodes: int, dilation: int):
        super().__init__()
        check_positive(type(self).__name__, hidden=hidden, n_nodes=n_nodes, dilation=dilation)
        self.hidden, self.n_nodes, self.dilation = hidden, n_nodes, dilation

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[2] != self.hidden or (
                self.fixed_nodes and x.shape[1] != self.n_nodes):
            n = self.n_nodes if self.fixed_nodes else "N"
            raise ValueError(f"{type(self).__name__}: expected (B, {n}, {self.hidden}, T); "
                             f"got {tuple(x.shape)}")

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        """Input steps (sorted, unique) the outputs at ``steps`` depend on; default: all."""
        return torch.arange(length)

    def forward_at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Outputs at ``steps`` only: x (B, N, H, T) valid at :meth:`taps` -> (B, N, H, Q)."""
        return self.forward(x)[..., steps]

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, n_nodes={self.n_nodes}, dilation={self.dilation}"


class Identity(_Op):
    """Identity: ``(B, N, H, T) -> (B, N, H, T)``, returns ``x`` (AutoCTS++ skip op).

    Raises:
        ValueError: bad constructor arguments, or the input is not ``(B, N, hidden, T)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return x

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        return steps

    def forward_at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        return x[..., steps]


class GatedTCN(_Op):
    """Gated dilated causal convolution (WaveNet; Graph WaveNet, Wu et al., IJCAI 2019).

    Shapes: ``(B, N, H, T) -> (B, N, H, T)``, each variable separately:
    ``tanh(conv_f(x)) * sigmoid(conv_g(x))`` with Conv1d(H, H, kernel 2, ``dilation``) and
    ``dilation`` steps of left padding only, so output step t depends on inputs ``<= t``.
    No residual connection (the cell adds its inputs).

    Raises:
        ValueError: bad constructor arguments, or the input is not ``(B, N, hidden, T)``.
    """

    def __init__(self, hidden: int, n_nodes: int, dilation: int):
        super().__init__(hidden, n_nodes, dilation)
        self.filter_conv = nn.Conv1d(hidden, hidden, 2, dilation=dilation)
        self.gate_conv = nn.Conv1d(hidden, hidden, 2, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        b, n, h, t = x.shape
        z = F.pad(x.reshape(b * n, h, t), (self.dilation, 0))
        out = torch.tanh(self.filter_conv(z)) * torch.sigmoid(self.gate_conv(z))
        return out.reshape(b, n, h, t)

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        both = torch.cat([steps - self.dilation, steps])
        return torch.unique(both[both >= 0])

    def forward_at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        b, n, h, t = x.shape
        idx = torch.stack([steps - self.dilation, steps], dim=1)  # Q x 2 (left, current)
        valid = (idx >= 0).to(x.dtype)
        taps = x.reshape(b * n, h, t)[:, :, idx.clamp(min=0)] * valid  # BN x H x Q x 2
        f = torch.einsum("bhqk,ohk->boq", taps, self.filter_conv.weight)
        g = torch.einsum("bhqk,ohk->boq", taps, self.gate_conv.weight)
        out = torch.tanh(f + self.filter_conv.bias[:, None]) * torch.sigmoid(
            g + self.gate_conv.bias[:, None])
        return out.reshape(b, n, h, len(steps))


class TS2VecConv(_Op):
    """TS2Vec residual dilated-conv block as a cell op (Yue et al., AAAI 2022).

    Shapes: ``(B, N, H, T) -> (B, N, H, T)``; applies ``TS2VecConvBlock(H, H, 3, dilation)``
    (non-causal "same" padding) to each variable separately.

    Raises:
        ValueError: bad constructor arguments, or the input is not ``(B, N, hidden, T)``.
    """

    def __init__(self, hidden: int, n_nodes: int, dilation: int):
        super().__init__(hidden, n_nodes, dilation)
        self.block = TS2VecConvBlock(hidden, hidden, 3, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        b, n, h, t = x.shape
        return self.block(x.reshape(b * n, h, t)).reshape(b, n, h, t)

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        return self.block.taps(steps, length)

    def forward_at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        b, n, h, t = x.shape
        return self.block.forward_at(x.reshape(b * n, h, t), steps).reshape(b, n, h, len(steps))


class _SelfAttention(nn.Module):
    """Pre-norm residual multi-head self-attention on ``(M, L, H)`` sequences (no mask)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.heads = ATTENTION_HEADS if hidden % ATTENTION_HEADS == 0 else 1
        self.norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        m, length, h = z.shape
        qkv = self.qkv(self.norm(z)).reshape(m, length, 3, self.heads, h // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (M, heads, L, H/heads)
        att = F.scaled_dot_product_attention(q, k, v)
        return z + self.out_proj(att.transpose(1, 2).reshape(m, length, h))


class TemporalAttention(_Op):
    """Multi-head self-attention over time, per variable (Transformer; Vaswani et al., 2017).

    Shapes: ``(B, N, H, T) -> (B, N, H, T)``; ``x + out_proj(SDPA(q, k, v))`` on
    ``LayerNorm_H(x)`` of each variable's ``(T, H)`` sequence, 4 heads when ``H % 4 == 0``
    else 1, non-causal. No positional encoding is added: order information comes from the
    convolution ops and the input projection. ``dilation`` is ignored. Uses
    ``F.scaled_dot_product_attention`` (memory-efficient kernels; T of a few thousand is fine).

    Raises:
        ValueError: bad constructor arguments, or the input is not ``(B, N, hidden, T)``.
    """

    def __init__(self, hidden: int, n_nodes: int, dilation: int):
        super().__init__(hidden, n_nodes, dilation)
        self.attn = _SelfAttention(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        b, n, h, t = x.shape
        z = self.attn(x.reshape(b * n, h, t).transpose(1, 2))  # (B*N, T, H)
        return z.transpose(1, 2).reshape(b, n, h, t)


class _PerTimestep(_Op):
    """Base of the spatial ops, which act on each timestamp separately."""

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        return steps

    def forward_at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        return self.forward(x[..., steps])


class DiffusionGCN(_PerTimestep):
    """Diffusion graph convolution with an adaptive adjacency (Graph WaveNet, IJCAI 2019).

    Shapes: ``(B, N, H, T) -> (B, N, H, T)`` with ``N == n_nodes``. With learnt node
    embeddings ``E1, E2`` of shape ``(N, 10)``, ``A = softmax(relu(E1 @ E2.T), dim=1)`` is
    row-stochastic and ``(A x)_i = sum_j A_ij x_j`` averages the neighbours of node i; the
    output is ``x + Linear_{3H -> H}(concat_H[x, A x, A^2 x])`` at every (node, timestamp).
    For N=1, ``A = [[1]]`` and the op is a residual per-timestamp linear map.

    Raises:
        ValueError: bad constructor arguments, or the input is not ``(B, n_nodes, hidden, T)``.
    """

    fixed_nodes = True
    #: Diffusion steps K: the concatenation holds A^0 x .. A^K x.
    order = 2

    def __init__(self, hidden: int, n_nodes: int, dilation: int):
        super().__init__(hidden, n_nodes, dilation)
        self.node_emb1 = nn.Parameter(torch.randn(n_nodes, NODE_EMBED_DIM))
        self.node_emb2 = nn.Parameter(torch.randn(n_nodes, NODE_EMBED_DIM))
        self.proj = nn.Linear((self.order + 1) * hidden, hidden)

    def adjacency(self) -> torch.Tensor:
        """The adaptive adjacency ``A`` (N x N, rows sum to one)."""
        return torch.softmax(torch.relu(self.node_emb1 @ self.node_emb2.T), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        adj = self.adjacency()
        terms = [x]
        for _ in range(self.order):
            terms.append(torch.einsum("ij,bjht->biht", adj, terms[-1]))
        z = torch.cat(terms, dim=2)  # (B, N, 3H, T)
        return x + self.proj(z.transpose(2, 3)).transpose(2, 3)


class SpatialAttention(_PerTimestep):
    """Multi-head self-attention across the N variables at every timestamp.

    Shapes: ``(B, N, H, T) -> (B, N, H, T)``; the ``(N, H)`` set at each (batch, timestamp)
    gets pre-norm residual attention ``x + out_proj(SDPA(q, k, v))`` on ``LayerNorm_H(x)``,
    4 heads when ``H % 4 == 0`` else 1 (as in the spatial transformers of AutoCTS / GMAN,
    Zheng et al., AAAI 2020). No node embedding, so the op is permutation-equivariant over
    the variables. For N=1 it is a residual per-timestamp linear map. ``dilation`` is ignored.

    Raises:
        ValueError: bad constructor arguments, or the input is not ``(B, N, hidden, T)``.
    """

    def __init__(self, hidden: int, n_nodes: int, dilation: int):
        super().__init__(hidden, n_nodes, dilation)
        self.attn = _SelfAttention(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        b, n, h, t = x.shape
        z = self.attn(x.permute(0, 3, 1, 2).reshape(b * t, n, h))  # (B*T, N, H)
        return z.reshape(b, t, n, h).permute(0, 2, 3, 1)


#: Op name (``search_spaces.spec.ENCODER_OPS``) -> class built as ``cls(hidden, n_nodes, dilation)``.
OPS: dict[str, type] = {
    "identity": Identity,
    "gated_tcn": GatedTCN,
    "ts2vec_conv": TS2VecConv,
    "temporal_attention": TemporalAttention,
    "diffusion_gcn": DiffusionGCN,
    "spatial_attention": SpatialAttention,
}
assert tuple(OPS) == ENCODER_OPS, "ops.OPS out of sync with spec.ENCODER_OPS"


def make_op(name: str, hidden: int, n_nodes: int, dilation: int) -> nn.Module:
    """Build the encoder op ``name`` for width ``hidden``, ``n_nodes`` variables, ``dilation``.

    Raises:
        ValueError: ``name`` is not an op (the message lists the allowed ones), or
            ``hidden`` / ``n_nodes`` / ``dilation`` is not a positive int.
    """
    if not isinstance(name, str) or name not in OPS:
        raise ValueError(f"Encoder.cell op: got {name!r}; allowed: {sorted(OPS)}")
    return OPS[name](hidden, n_nodes, dilation)

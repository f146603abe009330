"""Model builder: a spec's Encoder cell, input projection and EmbedCell as one torch module."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import TS2VecConvBlock, make_op
from ..spec import uses_spatial_ops
from ..validation import validate


class Cell(nn.Module):
    """One AutoCTS++ cell: node 1 = op(state 0), node i+1 = op_a(state j) + op_b(state i).

    Shapes: (B, N, H, T) -> (B, N, H, T); the cell's output is its last node.
    """

    def __init__(self, edges: list, hidden: int, n_nodes: int, dilation: int):
        super().__init__()
        self.sources = [int(src) for src, _ in edges]
        self.ops = nn.ModuleList(make_op(op, hidden, n_nodes, dilation) for _, op in edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        states.append(self.ops[0](states[self.sources[0]]))
        for k in range(1, len(self.ops), 2):
            a = self.ops[k](states[self.sources[k]])
            b = self.ops[k + 1](states[self.sources[k + 1]])
            states.append(a + b)
        return states[-1]

    def _node_edges(self, node: int) -> list:
        """Edge indices feeding ``node`` (1-based): node 1 <- edge 0; i+1 <- 2i-1, 2i."""
        return [0] if node == 1 else [2 * node - 3, 2 * node - 2]

    def required_steps(self, out_steps: torch.Tensor, length: int) -> list:
        """Steps needed of every state (index 0 = cell input) for outputs at ``out_steps``."""
        need = [None] * (len(self.ops) // 2 + 2)
        need[-1] = out_steps
        for node in range(len(need) - 1, 0, -1):
            for k in self._node_edges(node):
                taps = self.ops[k].taps(need[node], length)
                src = self.sources[k]
                need[src] = taps if need[src] is None else torch.unique(torch.cat([need[src], taps]))
        return need

    def forward_at(self, x: torch.Tensor, need: list) -> torch.Tensor:
        """The cell computed only at the steps of ``need`` (from :meth:`required_steps`):
        x (B, N, H, T) valid at need[0] -> (B, N, H, T) valid at need[-1], zero elsewhere."""
        states = [x]
        for node in range(1, len(need)):
            out = x.new_zeros(x.shape)
            steps = need[node]
            out[..., steps] = sum(self.ops[k].forward_at(states[self.sources[k]], steps)
                                  for k in self._node_edges(node))
            states.append(out)
        return states[-1]


class EmbedTransform(nn.Module):
    """EmbedCell (AutoCL): normalisation over D always; in training, representation masking
    (dropout, TS2Vec's repr_dropout) then Gaussian jitter. (B, T, D) -> (B, T, D)."""

    def __init__(self, cell: dict, repr_dim: int):
        super().__init__()
        self.norm_kind = cell["norm"]
        self.dropout = nn.Dropout(p=float(cell["masking"]))
        self.jitter = float(cell["jitter"])
        if self.norm_kind == "layernorm":
            self.norm = nn.LayerNorm(repr_dim, elementwise_affine=False)
        elif self.norm_kind == "batchnorm":
            self.norm = nn.BatchNorm1d(repr_dim, affine=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.norm_kind == "l2":
            z = F.normalize(z, dim=-1)
        elif self.norm_kind == "layernorm":
            z = self.norm(z)
        elif self.norm_kind == "batchnorm":
            z = self.norm(z.transpose(1, 2)).transpose(1, 2)
        if self.training:
            z = self.dropout(z)
            if self.jitter > 0:
                z = z + self.jitter * torch.randn_like(z)
        return z


class CellEncoder(nn.Module):
    """The searched encoder: input projection, ``layers`` stacked cells with dilation 2**l, the
    TS2Vec output block to D (dilation 2**layers) and the EmbedCell transform.

    Channel-mixing layout (no spatial op in the cell, or C == 1): Linear(C -> H), N = 1, as TS2Vec.
    Node layout (a spatial op and C > 1): each variable is projected by a shared Linear(1 -> H)
    plus a learned variable embedding, N = C, and the node axis is averaged before the output
    block. With the ``ts2vec`` preset this module is the TS2Vec encoder (Yue et al., AAAI 2022).

    Shapes: forward(x (B, T, C), mask (B, T) bool or None) -> (B, T, D). NaN inputs are masked
    (set to 0 after the projection), as TS2Vec does for missing timestamps.
    """

    def __init__(self, spec: dict, n_features: int):
        super().__init__()
        validate(spec)
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features: got {n_features!r}; allowed: an int >= 1")
        enc = spec["Encoder"]
        hidden, layers = enc["hidden"], enc["layers"]
        self.node_layout = uses_spatial_ops(spec) and n_features > 1
        n_nodes = n_features if self.node_layout else 1
        if self.node_layout:
            self.input_fc = nn.Linear(1, hidden)
            self.var_embedding = nn.Parameter(torch.zeros(n_features, hidden))
        else:
            self.input_fc = nn.Linear(n_features, hidden)
        self.cells = nn.ModuleList(
            Cell(enc["cell"], hidden, n_nodes, 2 ** layer) for layer in range(layers))
        self.head = TS2VecConvBlock(hidden, enc["repr_dim"], 3, 2 ** layers, final=True)
        self.embed = EmbedTransform(spec["EmbedCell"], enc["repr_dim"])
        self.n_features, self.repr_dim = n_features, enc["repr_dim"]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.head(self._trunk(x, mask))  # B x D x T
        return self.embed(z.transpose(1, 2))

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Representation of the last step only: (B, T, C) -> (B, D); equals
        ``forward(x)[:, -1]`` (in eval mode), computing every cell only at the steps the last
        one depends on (receptive-field pruning: large dilations read few steps)."""
        length = x.size(1)
        steps = [torch.tensor([length - 1])]
        steps.append(self.head.taps(steps[0], length))
        plans = []
        for cell in reversed(self.cells):
            plans.append(cell.required_steps(steps[-1], length))
            steps.append(plans[-1][0])
        h = self._project(x, None)
        for cell, need in zip(self.cells, reversed(plans)):
            h = cell.forward_at(h, need)
        z = self.head.forward_at(h.mean(dim=1), steps[0])[:, :, 0]  # B x D
        return self.embed(z.unsqueeze(1))[:, 0]

    def _trunk(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Input projection, masking and the stacked cells: (B, T, C) -> (B, H, T)."""
        h = self._project(x, mask)
        for cell in self.cells:
            h = cell(h)
        return h.mean(dim=1)

    def _project(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Input projection with NaN and timestamp masking: (B, T, C) -> (B, N, H, T)."""
        nan = torch.isnan(x)
        x = x.masked_fill(nan, 0.0)
        if self.node_layout:
            h = self.input_fc(x.unsqueeze(-1)) + self.var_embedding  # B x T x N x H
            keep = ~nan  # B x T x N
            if mask is not None:
                keep = keep & mask.unsqueeze(-1)
            h = (h * keep.unsqueeze(-1)).permute(0, 2, 3, 1)  # B x N x H x T
        else:
            h = self.input_fc(x)  # B x T x H
            keep = ~nan.any(dim=-1)
            if mask is not None:
                keep = keep & mask
            h = (h * keep.unsqueeze(-1)).transpose(1, 2).unsqueeze(1)  # B x 1 x H x T
        return h


def build_model(spec: dict, n_features: int) -> CellEncoder:
    """Build the encoder of a spec for input with ``n_features`` channels C.

    Raises:
        ValueError: invalid spec or ``n_features`` < 1.
    """
    return CellEncoder(spec, n_features)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

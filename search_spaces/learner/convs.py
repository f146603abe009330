"""TS2Vec's dilated convolutions (Yue et al., AAAI 2022), with evaluation at selected steps.

``SamePadConv`` and ``TS2VecConvBlock`` reproduce TS2Vec's ``SamePadConv`` and ``ConvBlock`` on
(B, C, T) tensors with the same parameter names. ``taps`` / ``at`` / ``forward_at`` compute the
outputs at a few steps only, from the input steps they read: causal sliding encoding needs one
step per window, and large dilations read few steps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def check_positive(where: str, **values: int) -> None:
    """Raise ValueError unless every value is a positive int."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}: {key} must be a positive int; got {value!r}")


def _in_range(steps: torch.Tensor, length: int) -> torch.Tensor:
    return torch.unique(steps[(steps >= 0) & (steps < length)])


class SamePadConv(nn.Module):
    """Dilated Conv1d whose output keeps the length T (TS2Vec's ``SamePadConv``).

    Shapes: ``(B, in_ch, T) -> (B, out_ch, T)``. The receptive field is
    ``(kernel_size - 1) * dilation + 1``; both sides are padded by ``receptive_field // 2`` and,
    when the receptive field is even, the last output step is dropped (Yue et al., AAAI 2022).

    Raises:
        ValueError: a channel count, ``kernel_size`` or ``dilation`` is not a positive int.
        RuntimeError: (from Conv1d) the input is not ``(B, in_ch, T)``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        check_positive("SamePadConv", in_ch=in_ch, out_ch=out_ch, kernel_size=kernel_size,
                        dilation=dilation)
        self.receptive_field = (kernel_size - 1) * dilation + 1
        padding = self.receptive_field // 2
        self.conv = nn.Conv1d(in_ch, out_ch, kernel_size, padding=padding, dilation=dilation)
        self.remove = 1 if self.receptive_field % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.remove > 0:
            out = out[:, :, : -self.remove]
        return out

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        """Input steps read by the outputs at ``steps`` (Q,) -> (Q * k,); steps outside
        [0, length) are zero padding."""
        offsets = self.conv.dilation[0] * torch.arange(self.conv.kernel_size[0])
        return (steps[:, None] - self.conv.padding[0] + offsets).reshape(-1)

    def at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Outputs at the given steps only: x (B, in_ch, T), steps (Q,) -> (B, out_ch, Q)."""
        idx = steps[:, None] - self.conv.padding[0] + self.conv.dilation[0] * torch.arange(
            self.conv.kernel_size[0])  # Q x k input steps
        valid = ((idx >= 0) & (idx < x.size(-1))).to(x.dtype)
        taps = x[:, :, idx.clamp(0, x.size(-1) - 1)] * valid  # B x in x Q x k
        return torch.einsum("bcqk,ock->boq", taps, self.conv.weight) + self.conv.bias[:, None]


class TS2VecConvBlock(nn.Module):
    """TS2Vec residual dilated-conv block (``ConvBlock``; Yue et al., AAAI 2022).

    Shapes: ``(B, in_ch, T) -> (B, out_ch, T)``; computes
    ``conv2(gelu(conv1(gelu(x)))) + residual`` where both convs are :class:`SamePadConv` and
    ``residual`` is ``projector(x)`` (a 1x1 Conv1d, present when ``in_ch != out_ch`` or
    ``final``) or ``x`` itself.

    Raises:
        ValueError: a channel count, ``kernel_size`` or ``dilation`` is not a positive int.
        RuntimeError: (from Conv1d) the input is not ``(B, in_ch, T)``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int,
                 final: bool = False):
        super().__init__()
        self.conv1 = SamePadConv(in_ch, out_ch, kernel_size, dilation=dilation)
        self.conv2 = SamePadConv(out_ch, out_ch, kernel_size, dilation=dilation)
        self.projector = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch or final else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.projector is None else self.projector(x)
        x = F.gelu(x)
        x = self.conv1(x)
        x = F.gelu(x)
        x = self.conv2(x)
        return x + residual

    def taps(self, steps: torch.Tensor, length: int) -> torch.Tensor:
        """Input steps (sorted, unique, in range) read by the outputs at ``steps``."""
        inner = _in_range(self.conv2.taps(steps, length), length)
        return torch.unique(torch.cat([_in_range(self.conv1.taps(inner, length), length), steps]))

    def forward_at(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Outputs at ``steps`` only: x (B, in_ch, T) valid at :meth:`taps` -> (B, out_ch, Q),
        equal to ``forward(x)[:, :, steps]``; conv1 runs only where conv2 reads it."""
        inner = _in_range(self.conv2.taps(steps, x.size(-1)), x.size(-1))
        hidden = x.new_zeros(x.size(0), self.conv2.conv.in_channels, x.size(-1))
        hidden[:, :, inner] = F.gelu(self.conv1.at(F.gelu(x), inner))
        tail = x[:, :, steps]
        residual = tail if self.projector is None else self.projector(tail)
        return self.conv2.at(hidden, steps) + residual

"""FSNet's fast adapter around a convolution, and its attachment to any encoder
(Pham et al., "Learning Fast and Slow for Online Time Series Forecasting", ICLR 2023, Sec. 3.2).

Every :class:`torch.nn.Conv1d` with a kernel wider than 1 (the dilated convolutions of the
TS2Vec encoder, and of any searched cell) is wrapped by :class:`FSNetConv1d`: the wrapped
convolution is the slow learner; the adapter (the fast learner) keeps a long-term (gamma 0.9)
and a short-term (gamma' 0.3) EMA of the convolution's normalised weight gradient, maps the
long-term EMA, cut into chunks, through a controller to calibration vectors for the weights,
the bias and the output features, and smooths them with an EMA. The calibrated layer computes
``f * conv1d(x, W * w, b_conv * b)``. With ``memory``, an
:class:`~.memory.AssociativeMemory` is recalled whenever the two gradient EMAs disagree
(cosine below -tau) during the online phase (Sec. 3.3).

Deviation from the FSNet code, documented: the calibrations are parametrised around identity
(``1 + head(rep)`` with zero-initialised heads) so that a pretrained encoder starts exactly as
it was saved; the FSNet code initialises them at random and relies on the supervised warm-up
to learn the scale. 1x1 convolutions stay plain, as in FSNet.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .memory import AssociativeMemory, should_trigger

#: Adapter settings from the paper and its code.
LONG_GAMMA, SHORT_GAMMA, CONTROLLER_WIDTH = 0.9, 0.3, 64


class FSNetConv1d(nn.Module):
    """A Conv1d with FSNet's fast adapter and (optionally) associative memory.

    Shapes: (B, C_in, T) -> (B, C_out, T'), as the wrapped convolution (same stride, padding,
    dilation). The gradient is chunked into n = gcd(C_in, C_out) rows (FSNet: C_in, which
    must divide C_out there); the calibration vector q has P = C_in * k + 2 * C_out entries.

    Args:
        conv: the convolution to wrap (``groups == 1``); its parameters stay its own.
        memory: attach an :class:`AssociativeMemory` (False: the NoMem ablation).
        memory_read: ``"attention"`` or ``"index"`` (see :mod:`.memory`).
        slots, tau, temperature: memory settings (paper: 32, 0.75, 0.5).
        memory_seed: seed of the memory's initial slots (a private generator: the global
            torch RNG is not consumed, so FSNet and NoMem start from the same weights).

    Raises:
        ValueError: a grouped convolution or a padding mode other than zeros.
    """

    def __init__(self, conv: nn.Conv1d, memory: bool = True, memory_read: str = "attention",
                 slots: int = 32, tau: float = 0.75, temperature: float = 0.5,
                 memory_seed: int = 0):
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError(f"conv: groups={conv.groups}, padding_mode={conv.padding_mode!r}; "
                             "allowed: 1 and 'zeros' (FSNet adapts dense, zero-padded "
                             "convolutions)")
        self.conv = conv
        c_in, c_out, k = conv.in_channels, conv.out_channels, conv.kernel_size[0]
        self.n_chunks = math.gcd(c_in, c_out)
        self.shapes = ((1, c_in, k), (c_out,), (1, c_out, 1))
        n_grad = conv.weight.numel()
        self.register_buffer("g_long", torch.zeros(n_grad))
        self.register_buffer("g_short", torch.zeros(n_grad))
        self.controller = nn.Sequential(nn.Linear(n_grad // self.n_chunks, CONTROLLER_WIDTH),
                                        nn.SiLU())
        self.heads = nn.ModuleList(nn.Linear(CONTROLLER_WIDTH, math.prod(s) // self.n_chunks)
                                   for s in self.shapes)
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.q_dim = sum(math.prod(s) for s in self.shapes)
        self.register_buffer("q_ema", torch.zeros(self.q_dim))
        self.register_buffer("q_started", torch.zeros((), dtype=torch.bool))
        self.memory = (AssociativeMemory(self.q_dim, slots, tau, temperature, memory_read,
                                         seed=memory_seed) if memory else None)
        self.tau = tau
        self.trigger = False
        self.n_triggers = 0

    def calibration(self) -> torch.Tensor:
        """The calibration vector q (P,): controller output over the chunked long-term
        gradient EMA, smoothed by an EMA (gamma' 0.3), recalled from memory when triggered.
        The EMA advances on forward passes with gradients (training and online updates);
        a prediction under ``torch.no_grad`` reads it without moving it. A recall changes
        this one pass only (the recalled q is not kept), as in the FSNet code."""
        rep = self.controller(self.g_long.view(self.n_chunks, -1))
        q = torch.cat([head(rep).reshape(-1) for head in self.heads])
        if bool(self.q_started):
            q = SHORT_GAMMA * self.q_ema + (1 - SHORT_GAMMA) * q
        if torch.is_grad_enabled() or not bool(self.q_started):
            self.q_ema.copy_(q.detach())
            self.q_started.fill_(True)
        if self.trigger and self.memory is not None:
            self.trigger = False
            q = self.memory.recall(q)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b, f = (1 + part.view(shape) for part, shape in
                   zip(torch.split(self.calibration(), [math.prod(s) for s in self.shapes]),
                       self.shapes))
        bias = None if self.conv.bias is None else self.conv.bias * b
        out = F.conv1d(x, self.conv.weight * w, bias, self.conv.stride, self.conv.padding,
                       self.conv.dilation)
        return f * out

    @torch.no_grad()
    def store_grad(self) -> None:
        """Update the gradient EMAs from ``conv.weight.grad`` (after a backward pass); in eval
        mode (the online phase) set the memory trigger when cos(g_short, g_long) < -tau."""
        grad = self.conv.weight.grad
        if grad is None:
            return
        grad = F.normalize(grad.reshape(-1), dim=0)
        self.g_short.mul_(SHORT_GAMMA).add_((1 - SHORT_GAMMA) * grad)
        if not self.training and self.memory is not None and should_trigger(
                self.g_short, self.g_long, self.tau):
            self.trigger = True
            self.n_triggers += 1
        self.g_long.mul_(LONG_GAMMA).add_((1 - LONG_GAMMA) * grad)


def attach_fsnet(module: nn.Module, **options) -> int:
    """Wrap, in place, every dense, zero-padded Conv1d with a kernel wider than 1 inside
    ``module`` (others stay plain and are updated as any layer) by an
    :class:`FSNetConv1d` (``options`` as its arguments). Returns how many were wrapped.

    Raises:
        ValueError: the module holds no such convolution (nothing to adapt).
    """
    targets = [(parent, name, child) for parent in module.modules()
               for name, child in parent.named_children()
               if isinstance(child, nn.Conv1d) and child.kernel_size[0] > 1 and child.groups == 1
               and child.padding_mode == "zeros"]
    if not targets:
        raise ValueError("encoder: has no Conv1d with kernel > 1; allowed for FSNet: an "
                         "encoder with (dilated) convolutions, e.g. the ts2vec preset")
    for i, (parent, name, child) in enumerate(targets):
        setattr(parent, name, FSNetConv1d(child, memory_seed=i, **options))
    return len(targets)


def fsnet_layers(module: nn.Module) -> list:
    """The :class:`FSNetConv1d` layers inside ``module``."""
    return [m for m in module.modules() if isinstance(m, FSNetConv1d)]

"""FSNet's associative memory of adapter calibrations (Pham et al., ICLR 2023, Sec. 3.3).

The memory is a matrix W of shape (P, M): M slots, each a unit-norm column holding a past
calibration vector q of length P. When an interference trigger fires (:func:`should_trigger`),
the current q attends over the slots, the top-2 are read and blended into q, and the same
slots are written with q. Defaults follow the paper and its code: M = 32, tau = 0.75, softmax
temperature 0.5, top-2.

Two read rules (``read``):

- ``"attention"`` (default): ``q_old = sum_i v_i W[:, idx_i]`` over the top-2 slots, with
  v the attention weights (the paper's read, Sec. 3.3); the write is
  ``W[:, j] = normalise(tau W[:, j] + (1 - tau) q)`` for the selected slots only.
- ``"index"``: the public FSNet code, which weights the read slots by their *indices*,
  ``q_old = W[:, idx] @ idx``, and writes ``W[:, j] = normalise(tau W[:, j] + (1 - tau)
  v_j q_old)``. The read then grows with the slot number rather than the match, which
  disables the memory in effect (the paper's NoMem ablation beats it). Kept only so that
  ablation can be reproduced.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

READS = ("attention", "index")


def check_read(read: str) -> str:
    """Raise ValueError unless ``read`` is one of :data:`READS`."""
    if read not in READS:
        raise ValueError(f"memory_read: got {read!r}; allowed: {list(READS)}")
    return read


def should_trigger(g_short: torch.Tensor, g_long: torch.Tensor, tau: float) -> bool:
    """FSNet's interference trigger: cos(g_short, g_long) < -tau (paper Sec. 3.3).

    ``g_short`` and ``g_long`` are the short- and long-term EMAs of a layer's gradient, (P,).
    """
    return bool(F.cosine_similarity(g_short, g_long, dim=0, eps=1e-6) < -tau)


class AssociativeMemory(nn.Module):
    """M unit-norm slots of P-dimensional calibration vectors, read and written on triggers.

    Args:
        dim: P, the length of a calibration vector q.
        slots: M (paper: 32). tau: blend coefficient (paper: 0.75).
        temperature: softmax temperature of the slot attention (paper code: 0.5).
        read: ``"attention"`` or ``"index"`` (see the module docstring).
        top_k: slots read and written per trigger (paper: 2).
        seed: seed of the slots' initialisation, drawn from a private generator so that a
            model with memory starts from the same weights as its NoMem ablation.

    Raises:
        ValueError: a non-positive ``dim``/``slots``/``top_k`` or ``top_k > slots``, tau
            outside (0, 1), a non-positive temperature or an unknown ``read``.
    """

    def __init__(self, dim: int, slots: int = 32, tau: float = 0.75, temperature: float = 0.5,
                 read: str = "attention", top_k: int = 2, seed: int = 0):
        super().__init__()
        if min(dim, slots, top_k) < 1 or top_k > slots:
            raise ValueError(f"memory: dim {dim}, slots {slots}, top_k {top_k}; allowed: "
                             "positive ints with top_k <= slots")
        if not 0 < tau < 1 or temperature <= 0:
            raise ValueError(f"memory: tau {tau}, temperature {temperature}; allowed: "
                             "0 < tau < 1 and temperature > 0")
        self.read_rule = check_read(read)
        self.tau, self.temperature, self.top_k = float(tau), float(temperature), int(top_k)
        bound = (6.0 / (dim + slots)) ** 0.5  # Xavier-uniform, as the FSNet code
        weight = torch.empty(dim, slots).uniform_(
            -bound, bound, generator=torch.Generator().manual_seed(int(seed)))
        self.register_buffer("W", F.normalize(weight, dim=0))

    def attend(self, q: torch.Tensor) -> tuple:
        """Top-k slots of ``softmax(q W / temperature)``: q (P,) -> (v (k,), idx (k,))."""
        att = torch.softmax((q.detach() @ self.W) / self.temperature, dim=0)
        return torch.topk(att, self.top_k)

    def read(self, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The retrieved vector q_old (P,) from the selected slots ``idx`` and weights ``v``."""
        slots = self.W[:, idx]  # P x k
        if self.read_rule == "index":
            return slots @ idx.to(slots.dtype)
        return (slots * v).sum(dim=1)

    @torch.no_grad()
    def write(self, q: torch.Tensor, v: torch.Tensor, idx: torch.Tensor,
              q_old: torch.Tensor) -> None:
        """Write the selected slots only and keep them unit-norm (see the module docstring)."""
        for weight, j in zip(v.tolist(), idx.tolist()):
            new = q.detach() if self.read_rule == "attention" else weight * q_old.detach()
            self.W[:, j] = F.normalize(self.tau * self.W[:, j] + (1 - self.tau) * new, dim=0)

    def recall(self, q: torch.Tensor) -> torch.Tensor:
        """One triggered memory step: attend, read, write; returns the blended calibration
        ``tau q + (1 - tau) q_old`` (P,). Gradients flow through q only."""
        v, idx = self.attend(q)
        q_old = self.read(v, idx).detach()
        self.write(q, v, idx, q_old)
        return self.tau * q + (1 - self.tau) * q_old

"""The online forecaster (encoder + linear regressor) and its six variants.

Variants on the same backbone (FSNet, Pham et al., ICLR 2023, Sec. 4 and its code):

- ``fsnet``: fast adapters and associative memory with the attention-weighted read;
- ``fsnet-index``: the same with the public code's index-weighted read (``--memory-read
  index``; see :mod:`.memory`);
- ``nomem``: adapters only (the paper's NoMem ablation);
- ``ogd``: plain online gradient steps (OnlineTCN in the paper);
- ``er``: experience replay (reservoir buffer of 500 samples, 8 replayed per step, weight 0.2);
- ``derpp``: DER++ (Buzzega et al., NeurIPS 2020): replay of stored labels and of stored
  outputs, both weight 0.2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .adapter import attach_fsnet, fsnet_layers
from .memory import check_read

VARIANTS = ("fsnet", "fsnet-index", "nomem", "ogd", "er", "derpp")


@dataclass(frozen=True)
class Variant:
    """How a variant adapts: FSNet adapters (``adapter``), memory and its read rule, replay
    (``replay``: "" none, "er" labels, "derpp" labels and stored outputs), replay sizes."""

    name: str
    adapter: bool = False
    memory: bool = False
    memory_read: str = "attention"
    replay: str = ""
    buffer_size: int = 500
    replay_batch: int = 8
    alpha: float = 0.2
    beta: float = 0.2


def variant(name: str, memory_read: str | None = None) -> Variant:
    """The settings of a named variant; ``memory_read`` overrides the read rule of ``fsnet``.

    Raises:
        ValueError: unknown name or read rule, or a read rule for a variant without memory.
    """
    if name not in VARIANTS:
        raise ValueError(f"model: got {name!r}; allowed: {list(VARIANTS)}")
    if memory_read is not None:
        check_read(memory_read)
        if name not in ("fsnet", "fsnet-index"):
            raise ValueError(f"memory_read: got {memory_read!r} for model {name!r}; allowed "
                             "only with model fsnet")
    read = memory_read or ("index" if name == "fsnet-index" else "attention")
    table = {"fsnet": Variant("fsnet" if read == "attention" else "fsnet-index", adapter=True,
                              memory=True, memory_read=read),
             "nomem": Variant("nomem", adapter=True), "ogd": Variant("ogd"),
             "er": Variant("er", replay="er"), "derpp": Variant("derpp", replay="derpp")}
    return table["fsnet" if name == "fsnet-index" else name]


class OnlineForecaster(nn.Module):
    """Encoder + linear regressor on the last step's representation (FSNet's ``net``).

    Shapes: forward(x (B, L, C_in)) -> (B, H, C_out); the encoder maps (B, L, C_in) to
    (B, L, D) and must be causal in the sense that matters here: it only sees the window.

    Args:
        encoder: any module with that signature (a searched cell encoder, the TS2Vec one).
        repr_dim: D. n_targets: C_out. horizon: H.
        spec: the :class:`Variant`; with ``adapter``, FSNet adapters are attached in place to
            the encoder's convolutions.

    Raises:
        ValueError: non-positive sizes; an adapter variant on an encoder without convolutions.
    """

    def __init__(self, encoder: nn.Module, repr_dim: int, n_targets: int, horizon: int,
                 spec: Variant):
        super().__init__()
        if min(repr_dim, n_targets, horizon) < 1:
            raise ValueError(f"forecaster: repr_dim {repr_dim}, n_targets {n_targets}, "
                             f"horizon {horizon}; allowed: positive ints")
        self.spec, self.horizon, self.n_targets = spec, horizon, n_targets
        if spec.adapter:
            attach_fsnet(encoder, memory=spec.memory, memory_read=spec.memory_read)
        self.encoder = encoder
        self.regressor = nn.Linear(repr_dim, horizon * n_targets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)[:, -1]
        return self.regressor(z).view(x.size(0), self.horizon, self.n_targets)

    def store_grad(self) -> None:
        """Update every adapter's gradient EMAs (and triggers); no-op without adapters."""
        for layer in fsnet_layers(self):
            layer.store_grad()

    def n_triggers(self) -> int:
        """Memory recalls triggered so far, over all layers."""
        return sum(layer.n_triggers for layer in fsnet_layers(self))

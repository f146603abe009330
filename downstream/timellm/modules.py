"""The two modules as Time-LLM prefixes (see :class:`~.model.TimeLLM`'s ``prefix_modules``):
each adds its embedding in front of the reprogrammed patches, may refine the forecast, and
names its auxiliary loss. TAPR: trend embedding, trend fusion (gate <= 50%), direction /
magnitude / consistency loss. GRA-M: retrieval embedding, gated patches, gate losses."""
from __future__ import annotations

import torch
from torch import nn

from .gram import GRAM, MemoryBank, gate_losses
from .tapr import TrendAwarePatchRouter, tapr_loss


class TAPRPrefix(nn.Module):
    """:class:`~.tapr.TrendAwarePatchRouter` as a Time-LLM prefix."""

    def __init__(self, seq_len: int, horizon: int, d_llm: int, **kwargs):
        super().__init__()
        self.router = TrendAwarePatchRouter(seq_len, horizon, d_llm, **kwargs)

    def prefix(self, series: torch.Tensor, patches: torch.Tensor, raw=None, rows=None) -> tuple:
        """series (B', T), patches (B', P, d_llm) -> (trend embedding (B', 1, d_llm), the
        patches unchanged, the router's output); ``raw``, ``rows`` unused."""
        out = self.router(series)
        return out.trend_embedding, patches, out

    def refine(self, forecast: torch.Tensor, out) -> torch.Tensor:
        """Trend fusion: forecast (B', H) -> (B', H), the trend forecast's share at most 50%."""
        return self.router.fuse(forecast, out)

    def aux_loss(self, out, series: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Direction CE + magnitude CE + 0.1 x consistency, labels from target (B', H)."""
        return tapr_loss(out, target, series[:, -1])["total"]


class GRAMPrefix(nn.Module):
    """:class:`~.gram.GRAM` as a Time-LLM prefix, over a bank of training windows."""

    def __init__(self, bank: MemoryBank, seq_len: int, horizon: int, d_llm: int, **kwargs):
        super().__init__()
        self.gram = GRAM(bank, seq_len, horizon, d_llm, **kwargs)

    def prefix(self, series: torch.Tensor, patches: torch.Tensor, raw=None, rows=None) -> tuple:
        """series (B', T), patches (B', P, d_llm) -> (retrieval embedding (B', 1, d_llm),
        gated patches (B', P, d_llm), GRA-M's output); ``rows`` (B',) first label rows, whose
        overlapping bank items are skipped (a training window never retrieves itself)."""
        out = self.gram(series, patches, raw=raw, rows=rows)
        return out.retrieval_embedding, out.gated_features, out

    def refine(self, forecast: torch.Tensor, out) -> torch.Tensor:
        return forecast

    def aux_loss(self, out, series: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Gate entropy + gate consistency."""
        return gate_losses(out.gate, out.match)["total"]

"""Time-LLM (Jin et al., "Time-LLM: Time Series Forecasting by Reprogramming Large Language
Models", ICLR 2024): instance normalisation, channel independence, patch embedding (patch 16,
stride 8), reprogramming (Sec. 3.1: cross-attention from patches onto text prototypes mapped
linearly from the language model's word embeddings), prompt-as-prefix, the frozen language
model, a flatten head over the last patch positions, denormalisation.

Optional: a frozen contrastive encoder's representation pooled over each patch's steps is
added to the patch embedding (``encoder_dim``); TAPR and GRA-M modules plug in through
``prefix_modules`` (their embeddings are prepended to the LM input after the prompt).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .prompt import build_prompts


class PatchEmbedding(nn.Module):
    """Patches of a series and their embedding (PatchTST / Time-LLM): x (B', T) padded at the
    end by ``stride`` (replicating the last value) -> P = (T - patch) // stride + 2 patches
    (B', P, patch) -> Linear -> (B', P, d_model)."""

    def __init__(self, d_model: int, patch_len: int = 16, stride: int = 8, dropout: float = 0.1):
        super().__init__()
        self.patch_len, self.stride = patch_len, stride
        self.linear = nn.Linear(patch_len, d_model)
        self.dropout = nn.Dropout(dropout)

    def n_patches(self, seq_len: int) -> int:
        return (seq_len - self.patch_len) // self.stride + 2

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([x, x[:, -1:].expand(-1, self.stride)], dim=-1)
        return padded.unfold(-1, self.patch_len, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.linear(self.patches(x)))


class Reprogramming(nn.Module):
    """Patch reprogramming (Time-LLM Sec. 3.1, Eq. 1): multi-head cross-attention with the
    patch embeddings (B', P, d_model) as queries and ``prototypes`` (S, d_llm) as keys and
    values -> (B', P, d_llm)."""

    def __init__(self, d_model: int, d_llm: int, heads: int = 8, d_keys: int = 16,
                 dropout: float = 0.1):
        super().__init__()
        self.heads, self.d_keys = heads, d_keys
        self.query = nn.Linear(d_model, heads * d_keys)
        self.key = nn.Linear(d_llm, heads * d_keys)
        self.value = nn.Linear(d_llm, heads * d_keys)
        self.out = nn.Linear(heads * d_keys, d_llm)
        self.dropout = nn.Dropout(dropout)

    def forward(self, patches: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        b, p, _ = patches.shape
        q = self.query(patches).view(b, p, self.heads, self.d_keys)
        k = self.key(prototypes).view(-1, self.heads, self.d_keys)
        v = self.value(prototypes).view(-1, self.heads, self.d_keys)
        scores = torch.einsum("bphe,she->bhps", q, k) / math.sqrt(self.d_keys)
        attn = self.dropout(torch.softmax(scores, dim=-1))
        return self.out(torch.einsum("bhps,she->bphe", attn, v).reshape(b, p, -1))


class TimeLLM(nn.Module):
    """Time-LLM over a (frozen) language model ``llm`` (:class:`~.llm.LanguageModel` or the
    no-LM :class:`~.llm.NoLLM`).

    Args:
        seq_len: T, lookback steps. horizon: H.
        llm: the language model module. description: the dataset description of the prompt.
        d_model: patch embedding width. heads, d_keys: reprogramming attention.
        d_ff: LM output dims kept per position for the head. prototypes: text prototypes S
            (at most the vocabulary size).
        encoder_dim: D of an encoder representation added per patch (None: none).
        prefix_modules: optional modules (e.g. TAPR, GRA-M) with
            ``prefix(x (B', T), patches (B', P, d_llm), raw=(B', T), rows=(B',)) ->
            (embeddings (B', k, d_llm), patches, aux)`` and ``refine(forecast (B', H), aux) ->
            (B', H)``; ``raw`` is the window before instance normalisation, ``rows`` the first
            label row of each sample (training: GRA-M skips bank items overlapping it).

    ``forward(x (B, T, N), encoder=None (B, T, D), rows=None (B,)) -> (forecast (B, H, N),
    aux dict)``; the encoder's per-step representations are pooled over each patch. ``aux`` holds each prefix
    module's output by name, and ``"norm"``: the window statistics (mean, std), each (B, 1, N),
    so a training loop can normalise the targets as the model sees them.
    """

    def __init__(self, seq_len: int, horizon: int, llm: nn.Module, description: str = "",
                 d_model: int = 16, heads: int = 8, d_keys: int = 16, d_ff: int = 32,
                 prototypes: int = 1000, patch_len: int = 16, stride: int = 8,
                 dropout: float = 0.1, encoder_dim: int | None = None,
                 prefix_modules: dict | None = None):
        super().__init__()
        if seq_len < patch_len:
            raise ValueError(f"seq_len: got {seq_len}; allowed: at least patch_len {patch_len}")
        self.seq_len, self.horizon, self.description = seq_len, horizon, description
        self.llm, self.d_ff = llm, min(d_ff, llm.d_llm)
        vocab = llm.word_embeddings.shape[0]
        self.mapping = nn.Linear(vocab, min(prototypes, vocab))
        self.patch = PatchEmbedding(d_model, patch_len, stride, dropout)
        self.encoder_proj = None if encoder_dim is None else nn.Linear(encoder_dim, d_model)
        self.reprogram = Reprogramming(d_model, llm.d_llm, heads, d_keys, dropout)
        self.n_patches = self.patch.n_patches(seq_len)
        self.head = nn.Sequential(nn.Flatten(-2), nn.Linear(self.d_ff * self.n_patches, horizon),
                                  nn.Dropout(dropout))
        self.prefix_modules = nn.ModuleDict(prefix_modules or {})

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Per-step representations (B, T, D) -> their mean over each patch (B, P, D)."""
        b, t, d = features.shape
        rows = self.patch.patches(features.permute(0, 2, 1).reshape(b * d, t)).mean(-1)
        return rows.view(b, d, -1).permute(0, 2, 1)

    def prompt_embeddings(self, x: torch.Tensor) -> tuple:
        """x (B', T) normalised -> (prompt embeddings (B', L, d_llm), mask (B', L))."""
        tok = self.llm.tokenizer(build_prompts(x, self.description, self.horizon),
                                 padding=True, return_tensors="pt")
        ids, mask = tok.input_ids.to(x.device), tok.attention_mask.to(x.device)
        return self.llm.embed(ids).to(x.dtype), mask

    def forward(self, x: torch.Tensor, encoder: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> tuple:
        b, t, n = x.shape
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
        series = ((x - mean) / std).permute(0, 2, 1).reshape(b * n, t)  # channel independence
        patches = self.patch(series)
        if self.encoder_proj is not None:
            if encoder is None:
                raise ValueError("encoder: got None; allowed: (B, T, D) representations, the "
                                 "model was built with encoder_dim")
            patches = patches + self.encoder_proj(self.pool(encoder)).repeat_interleave(n, 0)
        prototypes = self.mapping(self.llm.word_embeddings.T.to(x.dtype)).T
        reprogrammed = self.reprogram(patches, prototypes)
        prompt, mask = self.prompt_embeddings(series)
        prefixes, aux = [prompt], {"norm": (mean, std), "series": series}
        raw = x.permute(0, 2, 1).reshape(b * n, t)
        rows = None if rows is None else torch.as_tensor(rows, device=x.device).repeat_interleave(n)
        for name, module in self.prefix_modules.items():
            embedding, reprogrammed, aux[name] = module.prefix(series, reprogrammed, raw=raw,
                                                               rows=rows)
            prefixes.append(embedding)
        inputs = torch.cat(prefixes + [reprogrammed], dim=1)
        full_mask = torch.cat([mask, mask.new_ones(b * n, inputs.shape[1] - mask.shape[1])], 1)
        hidden = self.llm(inputs, full_mask)[:, -self.n_patches:, :self.d_ff]
        forecast = self.head(hidden)  # (B', H)
        for name, module in self.prefix_modules.items():
            forecast = module.refine(forecast, aux[name])
        forecast = forecast.view(b, n, self.horizon).permute(0, 2, 1)
        return forecast * std + mean, aux

"""Titans memory-as-context (MAC) forecaster for continuous series (Behrouz, Zhong and
Mirrokni, "Titans: Learning to Memorize at Test Time", 2025, Sec. 4.1 and Fig. 2), built on the
``titans-pytorch`` package (``MemoryAsContextTransformer``, pinned 0.5.5).

The package's model is a language model over token ids. Here the token embedding is a linear
projection of each time step (C raw variables, or D representation dims of a frozen encoder),
RevIN-style instance normalisation (Kim et al., ICLR 2022) wraps the model, and a head maps the
width at the last step to H x C. The forward pass walks the package's own layers (neural
memory, segmented attention, feed-forward, hyper-connections) as its ``forward`` does, with one
difference: the neural-memory state (``NeuralMemState``) is taken and returned, so a stream can
carry it from one window to the next. The package's cached (token-by-token) path returns no
output at the long-term-memory positions; a window forward never meets that case: memory
tokens are interleaved after every segment, then excised, so the output has one row per step.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from titans_pytorch import MemoryAsContextTransformer
from titans_pytorch.mac_transformer import pack_with_inverse, pad_and_segment_with_inverse
from torch import nn


@dataclass(frozen=True)
class TitansConfig:
    """Sizes of the MAC forecaster, chosen for 2 CPU cores.

    Attributes:
        width: model width (the package's ``dim``).
        depth: MAC blocks (each: neural memory, segmented attention, feed-forward).
        segment_len: attention segment, in steps (the package's ``segment_len``).
        longterm_tokens: long-term memory tokens interleaved after each segment.
        persist_tokens: persistent (learned, input-independent) memory tokens.
        heads, dim_head: attention heads and their width.
        ff_mult: feed-forward expansion.
        residual_streams: hyper-connection streams (1 = plain residuals).
        memory_chunk: neural-memory chunk size in tokens (None = segment_len + longterm_tokens,
            the package's default: one update per attention window).
        memory_heads: heads of the neural memory.
        momentum: surprise with momentum (Titans Eq. 10) instead of the momentary one.
        attn_pool_chunks: attention-pooled chunk summaries for the learned step sizes.
        qk_rmsnorm: RMS-normalised memory queries and keys.
        per_parameter_lr: per-weight-matrix learning-rate modulation of the memory.
        spectral_norm_surprises: spectrally normalised surprises (the package's option).
        revin: instance normalisation of the input window, undone on the forecast.
        linear_skip: add a linear map from each channel's (normalised) lookback window to its
            H steps, one map shared by the channels, to the head's forecast: RLinear (Li et
            al., 2023) as a residual path, so the memory transformer learns what a linear
            model misses; the head then starts at zero, so training starts from the linear
            model (as ReZero, Bachlechner et al., 2021, starts residual branches at zero).
    """

    width: int = 64
    depth: int = 2
    segment_len: int = 16
    longterm_tokens: int = 4
    persist_tokens: int = 4
    heads: int = 4
    dim_head: int = 16
    ff_mult: int = 2
    residual_streams: int = 1
    memory_chunk: int | None = None
    memory_heads: int = 1
    momentum: bool = True
    attn_pool_chunks: bool = False
    qk_rmsnorm: bool = False
    per_parameter_lr: bool = False
    spectral_norm_surprises: bool = False
    revin: bool = True
    linear_skip: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al., ICLR 2022): each window is scaled by
    its own per-channel mean and standard deviation over time; a learned affine map per
    channel; :meth:`denormalise` undoes both on the forecast."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def normalise(self, x: torch.Tensor) -> tuple:
        """x (B, L, C) -> (normalised x, (mean, std) each (B, 1, C))."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        return (x - mean) / std * self.weight + self.bias, (mean, std)

    def denormalise(self, y: torch.Tensor, stats: tuple) -> torch.Tensor:
        """y (B, H, C) normalised -> the input's scale."""
        mean, std = stats
        return (y - self.bias) / (self.weight + self.eps) * std + mean


class TitansForecaster(nn.Module):
    """MAC Titans over a lookback window: (B, L, C) values [and (B, L, D) features] ->
    (B, H, C) forecast, plus the neural-memory states of the blocks.

    Args:
        n_vars: C, variables forecast (and normalised by RevIN).
        horizon: H steps.
        n_inputs: width of the per-step input the embedding projects: C for raw values, D for
            an encoder's representations (then ``forward`` gets them as ``features``).
        config: :class:`TitansConfig`.
        lookback: L, steps of the input window (the linear skip's input width).

    The neural memory updates its fast weights in every forward pass, also in ``eval()`` mode
    and under ``torch.no_grad()`` (the package's design: memorising at test time).
    """

    def __init__(self, n_vars: int, horizon: int, n_inputs: int | None = None,
                 config: TitansConfig = TitansConfig(), lookback: int = 96):
        super().__init__()
        self.n_vars, self.horizon, self.config = n_vars, horizon, config
        self.lookback = lookback
        self.n_inputs = n_vars if n_inputs is None else n_inputs
        c = config
        memory_kwargs = dict(heads=c.memory_heads, dim_head=c.width // c.memory_heads,
                             momentum=c.momentum, attn_pool_chunks=c.attn_pool_chunks,
                             qk_rmsnorm=c.qk_rmsnorm, per_parameter_lr_modulation=c.per_parameter_lr,
                             spectral_norm_surprises=c.spectral_norm_surprises)
        self.embed = nn.Linear(self.n_inputs, c.width)
        self.mac = MemoryAsContextTransformer(
            num_tokens=1, dim=c.width, depth=c.depth, segment_len=c.segment_len,
            neural_memory_segment_len=c.memory_chunk, num_longterm_mem_tokens=c.longterm_tokens,
            num_persist_mem_tokens=c.persist_tokens, dim_head=c.dim_head, heads=c.heads,
            ff_mult=c.ff_mult, num_residual_streams=c.residual_streams,
            neural_memory_kwargs=memory_kwargs, token_emb=nn.Identity())
        self.mac.to_logits = nn.Identity()  # the head below replaces the vocabulary logits
        self.revin = RevIN(n_vars) if c.revin else None
        self.head = nn.Linear(c.width, horizon * n_vars)
        self.skip = None
        if c.linear_skip:
            self.skip = nn.Linear(lookback, horizon)
            nn.init.zeros_(self.head.weight)  # start as the linear model (ReZero-style)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None,
                state: list | None = None) -> tuple:
        """Forecast H steps after the window.

        Args:
            x: (B, L, C) standardised values of the lookback window (RevIN statistics; the
                token input unless ``features`` is given).
            features: (B, L, D) per-step inputs instead of the values (a frozen encoder's
                causal representations); D = ``n_inputs``.
            state: neural-memory states of the blocks from an earlier call (None: fresh
                memory); batch size must match the call that made them.

        Returns:
            (forecast (B, H, C), states: list of ``NeuralMemState``, one per block, with
            cached partial chunks dropped so the next window starts chunk-aligned).

        Raises:
            ValueError: with ``linear_skip``, a window whose length is not ``lookback``.
        """
        stats = None
        values = x
        if self.revin is not None:
            values, stats = self.revin.normalise(x)
        tokens = self.embed(values if features is None else features)
        hidden, states = self._blocks(tokens, state)
        y = self.head(hidden[:, -1]).view(x.shape[0], self.horizon, self.n_vars)
        if self.skip is not None:
            if x.shape[1] != self.lookback:
                raise ValueError(f"x: got a window of {x.shape[1]} steps; allowed: "
                                 f"{self.lookback} (the linear skip's lookback)")
            y = y + self.skip(values.transpose(1, 2)).transpose(1, 2)
        if stats is not None:
            y = self.revin.denormalise(y, stats)
        return y, states

    def _interleave(self, tokens: torch.Tensor) -> tuple:
        """(B, L, W) -> (B, L', W) with long-term memory tokens after each segment, and the
        inverse that drops them again."""
        mac, seq_len = self.mac, tokens.shape[1]
        with_mem = mac.seq_len_with_longterm_mem(seq_len)
        x, inverse_segment = pad_and_segment_with_inverse(tokens, mac.segment_len,
                                                          inverse_remove_pad=False)
        mems = mac.longterm_mems.unsqueeze(0).expand(x.shape[0], -1, -1)
        x, _ = pack_with_inverse((x, mems), "b * d")
        x = inverse_segment(x)[:, :with_mem]

        def excise(out: torch.Tensor) -> torch.Tensor:
            out, undo = pad_and_segment_with_inverse(out, mac.attn_window_size,
                                                     inverse_remove_pad=False)
            out = out[:, :mac.segment_len]  # each window: segment first, memory tokens after
            return undo(out)[:, :seq_len]
        return x, excise

    def _blocks(self, tokens: torch.Tensor, state: list | None) -> tuple:
        """The package's non-cached MAC forward (``MemoryAsContextTransformer.forward``) with
        the neural-memory state passed in and out; (B, L, W) -> ((B, L, W), states)."""
        mac = self.mac
        x, excise = self._interleave(tokens)
        x = x + mac.axial_pos_emb.forward_with_seq_len(x.shape[1], (mac.neural_memory_segment_len,))
        x = mac.expand_streams(x)
        states, value_residual = [], None
        memories = iter(state or [])
        for mem_conn, attn_conn, ff_conn, selector, mem, attn, ff in mac.layers:
            if mem is not None:
                mem_in, add_residual = mem_conn(x)
                retrieved, next_state = mem.forward(torch.stack((mem_in,) * 3),
                                                    state=next(memories, None))
                states.append(next_state._replace(cache_store_segment=None))
                x = add_residual(retrieved)
            attn_in, add_residual = attn_conn(x)
            attn_out, (values, _) = attn(attn_in, value_residual=value_residual,
                                         disable_flex_attn=True)
            value_residual = value_residual if value_residual is not None else values
            x = add_residual(attn_out)
            ff_in, add_residual = ff_conn(x)
            x = add_residual(ff(ff_in))
        x = mac.reduce_streams(x)
        return mac.norm(excise(x)), states


def detach_states(states: list) -> list:
    """States with every tensor detached (carry the memory, not the autograd graph)."""
    from titans_pytorch.neural_memory import mem_state_detach

    return [mem_state_detach(s) for s in states]

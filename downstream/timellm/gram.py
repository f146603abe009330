"""GRA-M, a retrieval-augmented memory for the channel-independent Time-LLM forecaster (Jin et
al., ICLR 2024). :class:`MemoryBank`: (window, future) pairs from the training split only, each
instance-normalised with its window's mean and std (RevIN's statistics, Kim et al., ICLR 2022).
:class:`PatternValueRetriever`: shape (transformer, CLS token) and value (MLP over window
statistics) encoders, top-k items by a learned weighted Euclidean distance, softmax(-d / tau)
weights, a retrieval embedding. :class:`AdaptiveKnowledgeGate`: match scores, cross-attention to
the retrieved knowledge, a residual gate. :func:`gate_losses`. :class:`GRAM` ties them.
Shapes: B' = batch x variables, T = seq_len, H = horizon, P patches, k = top_k.
"""
from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .bank import EPS, MemoryBank, _require  # noqa: F401 - MemoryBank re-exported

N_STATS = 6  # mean, std, min, max, last value, slope


def window_stats(x: torch.Tensor) -> torch.Tensor:
    """Statistics of windows (B, T) -> (B, 6): mean, std, min, max, last value and the least
    squares slope against time scaled to [0, 1] (the rise over the window; 0 when T = 1)."""
    t = torch.linspace(0.0, 1.0, x.shape[1], device=x.device, dtype=x.dtype)
    t = t - t.mean()
    mean = x.mean(1)
    slope = ((x - mean[:, None]) * t).sum(1) / (t * t).sum().clamp_min(EPS)
    return torch.stack([mean, x.std(1, unbiased=False), x.amin(1), x.amax(1), x[:, -1], slope], 1)


Retrieval = namedtuple("Retrieval", "futures weights distances indices knowledge embedding")


class PatternValueRetriever(nn.Module):
    """Pattern-value dual retriever over a :class:`MemoryBank`.

    Shape encoder: the window's steps (groups of ceil(T / ``max_tokens``) steps when T is
    longer) as linear tokens + learned positions after a learned CLS token, a pre-norm
    transformer encoder (``layers`` x ``width``); the CLS output is the shape embedding. Value
    encoder: MLP over :func:`window_stats` of the raw window (``raw``, in the units of the
    bank's ``values``) if given, else of the normalised one (whose mean ~ 0 and std ~ 1 then
    carry nothing); bank items follow the same choice. Both embeddings are L2-normalised (the
    temperature has a fixed scale); distance ``sqrt(a |ds|^2 + (1 - a) |dv|^2)``, a = sigmoid(mix).

    Bank embeddings: in training, a fresh random subset of ``train_candidates`` items, encoded
    with gradients at every call; in eval, the whole bank encoded without gradients and cached
    with a copy of the encoder parameters, re-encoded whenever they differ (optimiser step,
    ``load_state_dict``, ``.to()``) or the value mode changes; :meth:`refresh` drops it.

    Raises:
        ValueError: non-positive sizes or temperature, top_k above the bank size.
    """

    def __init__(self, bank: MemoryBank, d_llm: int, top_k: int = 5, temperature: float = 0.1,
                 width: int = 32, layers: int = 2, heads: int = 4, max_tokens: int = 64,
                 train_candidates: int = 256):
        super().__init__()
        for name, size in (("d_llm", d_llm), ("width", width), ("layers", layers),
                           ("heads", heads), ("max_tokens", max_tokens)):
            _require(size >= 1, name, size, "a positive int")
        limit = min(len(bank), train_candidates)
        _require(1 <= top_k <= limit, "top_k", top_k, f"1 <= top_k <= {limit} (bank size, "
                 "train_candidates)")
        _require(temperature > 0, "temperature", temperature, "> 0")
        self.seq_len, self.horizon, self.top_k = bank.seq_len, bank.horizon, int(top_k)
        self.temperature, self.train_candidates = float(temperature), int(train_candidates)
        self.step = math.ceil(bank.seq_len / max_tokens)
        self.token = nn.Linear(self.step, width)
        n_tokens = math.ceil(bank.seq_len / self.step)
        self.position = nn.Parameter(0.02 * torch.randn(n_tokens + 1, width))
        self.cls = nn.Parameter(0.02 * torch.randn(1, 1, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.shape_encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width),
                                                   enable_nested_tensor=False)
        self.value_encoder = nn.Sequential(nn.Linear(N_STATS, width), nn.GELU(),
                                           nn.Linear(width, width))
        self.mix = nn.Parameter(torch.zeros(()))
        self.project = nn.Linear(bank.horizon + width, d_llm)
        buffers = {"bank_windows": bank.windows, "bank_futures": bank.futures,
                   "bank_rows": bank.rows, "stats_raw": window_stats(bank.raw_windows()),
                   "stats_norm": window_stats(bank.windows)}  # not in state_dict: saved apart
        for name, tensor in buffers.items():
            self.register_buffer(name, tensor, persistent=False)
        self._cache = None

    def shape_embed(self, windows: torch.Tensor) -> torch.Tensor:
        """Unit-norm shape embeddings of normalised windows (n, T) -> (n, width)."""
        pad = self.step * (self.position.shape[0] - 1) - windows.shape[1]
        x = F.pad(windows[:, None], (pad, 0), mode="replicate")[:, 0] if pad else windows
        tokens = self.token(x.reshape(x.shape[0], -1, self.step))
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], 1) + self.position
        return F.normalize(self.shape_encoder(h)[:, 0], dim=-1)

    def value_embed(self, stats: torch.Tensor) -> torch.Tensor:
        """Unit-norm value embeddings of window statistics (n, 6) -> (n, width)."""
        return F.normalize(self.value_encoder(stats), dim=-1)

    def distance(self, shape_q, value_q, shape_m, value_m) -> torch.Tensor:
        """Weighted Euclidean distances (B', n) between queries (B', width) and items (n, width)."""
        a = torch.sigmoid(self.mix)
        mode = "donot_use_mm_for_euclid_dist"  # exact differences: d(q, q) = 0
        sq = a * torch.cdist(shape_q, shape_m, compute_mode=mode).square() \
            + (1 - a) * torch.cdist(value_q, value_m, compute_mode=mode).square()
        return sq.clamp_min(1e-12).sqrt()

    def refresh(self) -> None:
        """Drop the cached bank embeddings of eval mode."""
        self._cache = None

    def _encode_bank(self, idx, raw: bool) -> tuple:
        stats = self.stats_raw if raw else self.stats_norm
        return self.shape_embed(self.bank_windows[idx]), self.value_embed(stats[idx])

    @torch.inference_mode(False)  # a cache made under inference mode stays usable outside it
    @torch.no_grad()
    def _cached_bank(self, raw: bool) -> tuple:
        state = torch.cat([p.reshape(-1) for name, p in self.named_parameters()
                           if name.split(".")[0] not in ("mix", "project")])  # the encoders
        key, cache = (raw, state.dtype, state.device), self._cache
        if cache is None or cache[0] != key or not torch.equal(cache[1], state):
            parts = [self._encode_bank(idx, raw) for idx in
                     torch.arange(len(self.bank_rows), device=state.device).split(2048)]
            self._cache = (key, state, *(torch.cat(p) for p in zip(*parts)))
        return self._cache[2:]

    def _exclude(self, dist: torch.Tensor, rows: torch.Tensor, idx) -> torch.Tensor:
        """Mask items whose span [t - T, t + H) meets the query's (any variable)."""
        item_rows = self.bank_rows if idx is None else self.bank_rows[idx]
        near = (rows[:, None] - item_rows[None]).abs() < self.seq_len + self.horizon
        fewest = int((~near).sum(1).min())
        _require(fewest >= self.top_k, "rows", f"a query with {fewest} bank items outside its "
                 "span", f">= top_k = {self.top_k} (raise train_candidates or the bank size)")
        return dist.masked_fill(near, float("inf"))

    def forward(self, x: torch.Tensor, raw: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> Retrieval:
        """Retrieve for normalised windows x (B', T); ``raw`` (B', T) feeds the value encoder;
        ``rows`` (B',) int, each query's first future row, excludes bank items overlapping it
        (pass it in training, where queries come from the bank's own rows). Returns futures
        (B', k, H), normalised; weights, distances (ascending), indices into the bank (B', k);
        knowledge (B', k, d_llm), each item [future, shape embedding] projected; embedding
        (B', 1, d_llm) = sum_k weights_k knowledge_k."""
        shape_q = self.shape_embed(x)
        value_q = self.value_embed(window_stats(x if raw is None else raw))
        idx = None
        if self.training:
            idx = torch.randperm(len(self.bank_rows), device=x.device)[:self.train_candidates]
            shape_m, value_m = self._encode_bank(idx, raw is not None)
        else:
            shape_m, value_m = self._cached_bank(raw is not None)
        dist = self.distance(shape_q, value_q, shape_m, value_m)
        if rows is not None:
            dist = self._exclude(dist, rows, idx)
        distances, pos = torch.topk(dist, self.top_k, dim=1, largest=False, sorted=True)
        weights = torch.softmax(-distances / self.temperature, dim=1)
        indices = pos if idx is None else idx[pos]
        futures = self.bank_futures[indices]
        knowledge = self.project(torch.cat([futures, shape_m[pos]], -1))
        embedding = (weights[..., None] * knowledge).sum(1, keepdim=True)
        return Retrieval(futures, weights, distances, indices, knowledge, embedding)


class AdaptiveKnowledgeGate(nn.Module):
    """Gated cross-attention from the current features c to the retrieved knowledge r.

    scores (B', P, k) = (W_q c)(W_k r)^T / sqrt(d_match) (scaled dot product); attention =
    softmax(scores + log w), w the retrieval weights (a prior; left out when None); attended
    = attention @ r; match (B', P) = sigmoid(sum_k attention * scores); per position,
    gate = sigmoid(W_g [c, attended] + beta * logit(match)); output = c + gate (attended - c).

    Raises:
        ValueError: non-positive d_llm or d_match.
    """

    def __init__(self, d_llm: int, d_match: int = 64):
        super().__init__()
        for name, size in (("d_llm", d_llm), ("d_match", d_match)):
            _require(size >= 1, name, size, "a positive int")
        self.query = nn.Linear(d_llm, d_match, bias=False)
        self.key = nn.Linear(d_llm, d_match, bias=False)
        self.gate = nn.Linear(2 * d_llm, 1)
        self.beta = nn.Parameter(torch.ones(()))

    def attend(self, current: torch.Tensor, knowledge: torch.Tensor,
               weights: torch.Tensor | None = None) -> tuple:
        """-> attended (B', P, d_llm), attention (B', P, k), score (B', P) = logit(match)."""
        scores = self.query(current) @ self.key(knowledge).transpose(1, 2)
        scores = scores / math.sqrt(self.query.out_features)
        logits = scores if weights is None else \
            scores + weights.clamp_min(torch.finfo(weights.dtype).tiny).log()[:, None]
        attention = torch.softmax(logits, dim=-1)
        return attention @ knowledge, attention, (attention * scores).sum(-1)

    def forward(self, current: torch.Tensor, knowledge: torch.Tensor,
                weights: torch.Tensor | None = None) -> tuple:
        """current (B', P, d_llm), knowledge (B', k, d_llm), weights (B', k) or None ->
        (gated (B', P, d_llm), gate (B', P) in (0, 1), match (B', P) in (0, 1))."""
        attended, _, score = self.attend(current, knowledge, weights)
        logit = self.gate(torch.cat([current, attended], -1))[..., 0] + self.beta * score
        gate = torch.sigmoid(logit)  # residual form: gate 0 keeps the current features
        return current + gate[..., None] * (attended - current), gate, torch.sigmoid(score)


def gate_losses(gate: torch.Tensor, match: torch.Tensor) -> dict:
    """Gate regularisers (any equal shapes): ``gate_entropy``, the mean binary entropy of the
    gate (minimised: confident gating); ``gate_consistency``, MSE between the gate and the match
    score, detached (the gate follows the match quality); ``total``, their sum.

    Raises:
        ValueError: gate and match of different shapes.
    """
    _require(match.shape == gate.shape, "match", f"shape {tuple(match.shape)}",
             f"the gate's {tuple(gate.shape)}")
    g = gate.clamp(1e-6, 1 - 1e-6)
    entropy = -(g * g.log() + (1 - g) * (1 - g).log()).mean()
    consistency = F.mse_loss(gate, match.detach())
    return {"gate_entropy": entropy, "gate_consistency": consistency,
            "total": entropy + consistency}


@dataclass
class GRAMOutput:
    """retrieval_embedding (B', 1, d_llm), to prepend to the LLM input; gated_features
    (B', P, d_llm); gate, match (B', P); retrieved_futures (B', k, H), in the units of the
    normalised input; weights, distances (ascending), indices into the bank (B', k)."""

    retrieval_embedding: torch.Tensor
    gated_features: torch.Tensor
    gate: torch.Tensor
    match: torch.Tensor
    retrieved_futures: torch.Tensor
    weights: torch.Tensor
    distances: torch.Tensor
    indices: torch.Tensor


class GRAM(nn.Module):
    """GRA-M: :class:`PatternValueRetriever` + :class:`AdaptiveKnowledgeGate` over a bank;
    ``retriever_options``: width, layers, heads, max_tokens, train_candidates.

    Raises:
        ValueError: a bank built for another seq_len/horizon, or bad sizes (see the parts).
    """

    def __init__(self, bank: MemoryBank, seq_len: int, horizon: int, d_llm: int,
                 top_k: int = 5, temperature: float = 0.1, **retriever_options):
        super().__init__()
        _require((bank.seq_len, bank.horizon) == (seq_len, horizon), "bank", "one built for "
                 f"(seq_len, horizon) {(bank.seq_len, bank.horizon)}", f"{(seq_len, horizon)}")
        self.retriever = PatternValueRetriever(bank, d_llm, top_k, temperature,
                                               **retriever_options)
        self.gate, self.d_llm = AdaptiveKnowledgeGate(d_llm), int(d_llm)

    def _check(self, x, features, raw, rows) -> None:
        like, n = self.retriever.mix, len(x)
        _require(x.ndim == 2 and x.shape[1] == self.retriever.seq_len, "x",
                 f"shape {tuple(x.shape)}", f"(B', seq_len={self.retriever.seq_len})")
        _require((x.dtype, x.device) == (like.dtype, like.device), "x", f"{x.dtype} on "
                 f"{x.device}", f"the module's {like.dtype} on {like.device} (use .to(x))")
        _require(features.ndim == 3 and features.shape[::2] == (n, self.d_llm)
                 and features.dtype == x.dtype, "features", f"{tuple(features.shape)} "
                 f"{features.dtype}", f"(B'={n}, P, d_llm={self.d_llm}) of dtype {x.dtype}")
        if raw is not None:
            _require((raw.shape, raw.dtype, raw.device) == (x.shape, x.dtype, x.device), "raw",
                     f"{tuple(raw.shape)} {raw.dtype}", "x's shape, dtype and device")
        if rows is not None:
            _require(tuple(rows.shape) == (n,) and rows.device == x.device, "rows",
                     tuple(rows.shape), f"({n},) on x's device")

    def forward(self, x: torch.Tensor, features: torch.Tensor, raw: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> GRAMOutput:
        """x (B', T) instance-normalised windows; features (B', P, d_llm) reprogrammed patches;
        raw (B', T) the windows before instance normalisation (value statistics); rows (B',)
        first future row of each query, to exclude overlapping bank items in training.

        Raises:
            ValueError: a shape, dtype or device that does not match (names the argument).
        """
        self._check(x, features, raw, rows)
        r = self.retriever(x, raw=raw, rows=rows)
        gated, gate, match = self.gate(features, r.knowledge, r.weights)
        return GRAMOutput(r.embedding, gated, gate, match, r.futures, r.weights,
                          r.distances, r.indices)

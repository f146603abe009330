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

import hashlib
import math
import os
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5  # variance floor of the instance normalisation (RevIN's eps)
N_STATS = 6  # mean, std, min, max, last value, slope
FORMAT = 1


def _require(ok: bool, name: str, value, allowed: str) -> None:
    """Raise the one-line ValueError ``"name: got value; allowed: ..."`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name}: got {value}; allowed: {allowed}")


def window_stats(x: torch.Tensor) -> torch.Tensor:
    """Statistics of windows (B, T) -> (B, 6): mean, std, min, max, last value and the least
    squares slope against time scaled to [0, 1] (the rise over the window; 0 when T = 1)."""
    t = torch.linspace(0.0, 1.0, x.shape[1], device=x.device, dtype=x.dtype)
    t = t - t.mean()
    mean = x.mean(1)
    slope = ((x - mean[:, None]) * t).sum(1) / (t * t).sum().clamp_min(EPS)
    return torch.stack([mean, x.std(1, unbiased=False), x.amin(1), x.amax(1), x[:, -1], slope], 1)


def _fingerprint(values: np.ndarray, bounds: tuple) -> str:
    """Hash of the training rows as float32: a saved bank is reused only on the same data."""
    rows = np.ascontiguousarray(values[bounds[0]:bounds[1]], dtype=np.float32)
    return hashlib.sha1(rows.tobytes()).hexdigest()[:16]


def _stratified(total: int, m: int, seed: int | None) -> np.ndarray:
    """m distinct indices in [0, total): one per equal-width stratum; the first of each stratum
    when seed is None, else a seeded random one (no aliasing with daily/weekly periods)."""
    edges = np.arange(m + 1, dtype=np.int64) * total // m
    if seed is None:
        return edges[:-1]
    return edges[:-1] + np.random.default_rng(seed).integers(0, edges[1:] - edges[:-1])


@dataclass
class MemoryBank:
    """(window, future) pairs of univariate training series, instance-normalised per window.

    Attributes:
        windows: (M, T) float32, ``(w - mean) / std`` of each window w = values[t - T:t, v].
        futures: (M, H) float32, values[t:t + H, v] normalised with the *window's* mean/std.
        rows, variables: (M,) int64, the first future row t and the variable v of each pair.
        mean, std: (M,) float32, each window's mean and sqrt(var + 1e-5) (undo: w * std + mean).
        bounds: (start, end) training rows; seq_len, horizon: T, H; fingerprint: data hash.

    Raises:
        ValueError: inconsistent shapes or an empty bank.
    """

    windows: torch.Tensor
    futures: torch.Tensor
    rows: torch.Tensor
    variables: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    bounds: tuple
    seq_len: int
    horizon: int
    fingerprint: str = ""

    def __post_init__(self):
        m, t, h = len(self.windows), self.seq_len, self.horizon
        for name, shape in zip(("windows", "futures", "rows", "variables", "mean", "std"),
                               ((m, t), (m, h), (m,), (m,), (m,), (m,))):
            got = tuple(getattr(self, name).shape)
            _require(got == shape and m > 0, f"bank {name}", got, f"{shape} with M >= 1")
        self.bounds = (int(self.bounds[0]), int(self.bounds[1]))

    def __len__(self) -> int:
        return self.windows.shape[0]

    @classmethod
    def build(cls, values, train_bounds: tuple, seq_len: int, horizon: int,
              max_items: int = 10_000, seed: int | None = 0) -> MemoryBank:
        """Pairs from ``values`` (T_total, N), a standardised array, whose window [t - T, t)
        and future [t, t + H) both lie inside ``train_bounds`` = [start, end); all N variables
        pooled (channel independence); at most ``max_items`` by stratified subsampling over
        (variable, t) (see :func:`_stratified`; ``seed=None``: evenly spaced).

        Raises:
            ValueError: values not 2-D or non-finite in the training rows, bounds outside
                [0, T_total], non-positive sizes, seq_len + horizon > end - start.
        """
        values = np.asarray(values)
        _require(values.ndim == 2, "values", f"shape {values.shape}", "a 2-D (T_total, N) array")
        start, end = (int(b) for b in train_bounds)
        _require(0 <= start < end <= len(values), "train_bounds", tuple(train_bounds),
                 f"0 <= start < end <= T_total = {len(values)}")
        for name, size in (("seq_len", seq_len), ("horizon", horizon), ("max_items", max_items)):
            _require(isinstance(size, (int, np.integer)) and size >= 1, name, size, "an int >= 1")
        n_t = end - start - seq_len - horizon + 1
        _require(n_t >= 1, "seq_len + horizon", seq_len + horizon, f"<= {end - start} rows")
        _require(bool(np.isfinite(values[start:end]).all()), "values", "non-finite entries in "
                 f"rows [{start}, {end})", "finite training rows")
        pick = _stratified(n_t * values.shape[1], min(max_items, n_t * values.shape[1]), seed)
        var, t = pick // n_t, start + seq_len + pick % n_t
        win = values[t[:, None] + np.arange(-seq_len, 0), var[:, None]].astype(np.float64)
        fut = values[t[:, None] + np.arange(horizon), var[:, None]].astype(np.float64)
        mean, std = win.mean(1, keepdims=True), np.sqrt(win.var(1, keepdims=True) + EPS)
        f32 = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in
               ((win - mean) / std, (fut - mean) / std, mean[:, 0], std[:, 0])]
        return cls(f32[0], f32[1], torch.from_numpy(t), torch.from_numpy(var), f32[2], f32[3],
                   (start, end), seq_len, horizon, _fingerprint(values, (start, end)))

    def raw_windows(self) -> torch.Tensor:
        """The windows in the units of ``values`` (M, T): windows * std + mean."""
        return self.windows * self.std[:, None] + self.mean[:, None]

    def check_bounds(self, train_bounds: tuple) -> None:
        """Raise ValueError unless ``train_bounds`` are the bounds the bank was built from."""
        _require(tuple(int(b) for b in train_bounds) == self.bounds, "train_bounds",
                 tuple(train_bounds), f"{self.bounds}, the training rows this bank was built from")

    def save(self, path) -> None:
        """torch.save of a dict of tensors and metadata (written to a temporary file first)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({**vars(self), "bounds": list(self.bounds), "format": FORMAT}, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)

    @classmethod
    def load(cls, path) -> MemoryBank:
        """A bank saved by :meth:`save`. Raises ValueError on an unknown format."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        _require(state.pop("format", None) == FORMAT, "path", path, f"a bank of format {FORMAT}")
        return cls(**state)

    @classmethod
    def load_or_build(cls, path, values, train_bounds: tuple, seq_len: int, horizon: int,
                      max_items: int = 10_000, seed: int | None = 0,
                      rebuild: bool = False) -> MemoryBank:
        """The bank saved at ``path`` (a resumed run), else (or with ``rebuild``) a new one
        from :meth:`build`, saved there.

        Raises:
            ValueError: the saved bank has other bounds, seq_len, horizon or training data.
        """
        if Path(path).is_file() and not rebuild:
            bank = cls.load(path)
            bank.check_bounds(train_bounds)
            found = (bank.seq_len, bank.horizon, bank.fingerprint)
            wanted = (seq_len, horizon, _fingerprint(np.asarray(values), bank.bounds))
            _require(found == wanted, "path", f"a bank with (seq_len, horizon, data) {found}",
                     f"{wanted} for this run, or rebuild=True")
            return bank
        bank = cls.build(values, train_bounds, seq_len, horizon, max_items, seed)
        bank.save(path)
        return bank


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

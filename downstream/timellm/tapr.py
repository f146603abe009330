"""TAPR, a trend-aware patch router for the channel-independent Time-LLM forecaster (Jin et
al., "Time-LLM: Time Series Forecasting by Reprogramming Large Language Models", ICLR 2024).

Each series is a univariate lookback window x (B', T) in the instance-normalised units the
model works in (B' = batch x variables). TAPR:

  * decomposes x at several scales (1x, 4x, 16x): average-pool down-sampling, a depthwise
    separable convolution (lift 1 -> c channels, depthwise k=3, pointwise), a moving-average
    trend/seasonal split (series decomposition of Autoformer, Wu et al., NeurIPS 2021; kernel
    25 at 1x, 25/s rounded to an odd number >= 3 at scale s, replicate padding); the trend is
    kept (the seasonal residual is dropped: TAPR routes on the trend);
  * refines coarse to fine: the finer scale's trend attends to the (refined) coarser one,
    16x -> 4x -> 1x, at the native lengths (queries fine, keys and values coarse; cheaper than at
    T, and linear up-sampling adds no information); each scale is then linearly up-sampled to T
    and the scales are mixed by learnable softmax weights -> trend features (B', T, c), pooled
    to a trend vector (B', 2c) = [mean over time, last step];
  * classifies the coming trend coarse to fine: direction (up / down / flat), then magnitude
    (strong down / weak down / weak up / strong up) given the direction probabilities, with
    learnable sorted thresholds t0 < t1 < 0 < t2 < t3 (initially -0.02, -0.005, 0.005, 0.02);
  * regresses a trend forecast (B', H): x[:, -1] plus four class-specific regressions mixed by
    the magnitude probabilities;
  * embeds the trend (B', 1, d_llm), a token to prepend to the language model's input;
  * fuses the trend forecast into the model's forecast with a gate g = 0.5 sigmoid(.) <= 0.5.

Labels come from the true future: change = mean(y_future) - x[:, -1], both in the window's
instance-normalised units (the level the forecast starts from, not the window mean, so "up"
means the future lies above the last observed value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

UP, DOWN, FLAT = 0, 1, 2
STRONG_DOWN, WEAK_DOWN, WEAK_UP, STRONG_UP = 0, 1, 2, 3
INITIAL_THRESHOLDS = (-0.02, -0.005, 0.005, 0.02)
TREND_KERNEL = 25
CONSISTENCY_WEIGHT = 0.1


@dataclass
class TAPROutput:
    """What :meth:`TrendAwarePatchRouter.forward` returns.

    Attributes:
        trend_features: (B', T, c) multi-scale trend features.
        trend_vector: (B', 2c) pooled trend vector (mean over time, last step).
        trend_embedding: (B', 1, d_llm) token to prepend to the language model's input.
        direction_logits: (B', 3) over (up, down, flat).
        magnitude_logits: (B', 4) over (strong down, weak down, weak up, strong up).
        trend_forecast: (B', H) in the input's (instance-normalised) units.
        thresholds: (4,) sorted magnitude thresholds t0 < t1 < 0 < t2 < t3 (with gradient).
    """

    trend_features: torch.Tensor
    trend_vector: torch.Tensor
    trend_embedding: torch.Tensor
    direction_logits: torch.Tensor
    magnitude_logits: torch.Tensor
    trend_forecast: torch.Tensor
    thresholds: torch.Tensor


def trend_kernel(scale: int) -> int:
    """Moving-average kernel at a scale: 25 / scale rounded, made odd (so replicate padding
    keeps the length), at least 3."""
    kernel = max(3, round(TREND_KERNEL / scale))
    return kernel + 1 - kernel % 2


def decompose(h: torch.Tensor, kernel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Series decomposition (Autoformer, Wu et al., NeurIPS 2021): h (B, C, L) ->
    (seasonal, trend), each (B, C, L); trend = moving average of odd ``kernel`` with replicate
    padding, seasonal = h - trend."""
    pad = kernel // 2
    trend = F.avg_pool1d(F.pad(h, (pad, pad), mode="replicate"), kernel, stride=1)
    return h - trend, trend


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class _ScaleBranch(nn.Module):
    """One scale: average-pool by ``scale``, lift 1 -> c, depthwise k=3 + pointwise convolution,
    moving-average trend. x (B', T) -> trend (B', ceil(T / scale), c)."""

    def __init__(self, scale: int, channels: int):
        super().__init__()
        self.scale, self.kernel = scale, trend_kernel(scale)
        self.lift = nn.Conv1d(1, channels, 1)
        self.depthwise = nn.Conv1d(channels, channels, 3, padding=1, groups=channels,
                                   padding_mode="replicate")
        self.pointwise = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool1d(x.unsqueeze(1), self.scale, self.scale, ceil_mode=True)
        h = F.gelu(self.pointwise(self.depthwise(self.lift(h))))
        return decompose(h, self.kernel)[1].transpose(1, 2)


class _CrossScale(nn.Module):
    """Finer features attend to coarser ones: fine (B', Lf, c), coarse (B', Lc, c) ->
    LayerNorm(fine + attention(fine, coarse, coarse)) (B', Lf, c)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm = nn.LayerNorm(channels)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.norm(fine + self.attention(fine, coarse, coarse, need_weights=False)[0])


def _upsample(h: torch.Tensor, length: int) -> torch.Tensor:
    """h (B', L, c) -> (B', length, c) by linear interpolation."""
    if h.shape[1] == length:
        return h
    return F.interpolate(h.transpose(1, 2), size=length, mode="linear",
                         align_corners=False).transpose(1, 2)


def _check_int(name: str, value, low: int, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_scales(scales) -> tuple[int, ...]:
    scales = tuple(scales)
    ok = len(scales) >= 1 and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                                  for s in scales)
    if not ok or list(scales) != sorted(set(scales)):
        raise ValueError(f"scales must be strictly increasing ints >= 1, got {scales!r}")
    return scales


class TrendAwarePatchRouter(nn.Module):
    """TAPR (see the module docstring): x (B', T) -> :class:`TAPROutput`.

    Args:
        seq_len: T, the lookback (>= the largest scale).
        horizon: H >= 1 steps of the trend forecast.
        d_llm: width of the language model's input embeddings (>= 1).
        channels: c, width of the per-scale features (>= 1, a multiple of ``heads``).
        scales: strictly increasing pooling factors, finest first.
        heads: attention heads of the cross-scale attention (>= 1).

    Raises:
        ValueError: an argument out of its range (the message names it).
    """

    def __init__(self, seq_len: int, horizon: int, d_llm: int, channels: int = 16,
                 scales=(1, 4, 16), heads: int = 2):
        super().__init__()
        self.scales = _check_scales(scales)
        _check_int("seq_len", seq_len, self.scales[-1], f"an int >= the largest scale "
                   f"{self.scales[-1]}")
        for name, value in (("horizon", horizon), ("d_llm", d_llm), ("heads", heads)):
            _check_int(name, value, 1, "an int >= 1")
        _check_int("channels", channels, 1, "an int >= 1")
        if channels % heads:
            raise ValueError(f"channels must be a multiple of heads={heads}, got {channels}")
        self.seq_len, self.horizon, self.d_llm, self.channels = seq_len, horizon, d_llm, channels
        self._build(channels, heads, horizon, d_llm)

    def _build(self, c: int, heads: int, horizon: int, d_llm: int) -> None:
        self.branches = nn.ModuleList(_ScaleBranch(s, c) for s in self.scales)
        self.cross = nn.ModuleList(_CrossScale(c, heads) for _ in self.scales[1:])
        self.scale_logits = nn.Parameter(torch.zeros(len(self.scales)))
        hidden = 4 * c
        self.trunk = nn.Sequential(nn.Linear(2 * c, hidden), nn.GELU())
        self.direction_head = nn.Linear(hidden, 3)
        self.magnitude_head = nn.Linear(hidden + 3, 4)
        self.regressors = nn.Linear(hidden, 4 * horizon)
        self.embed = nn.Linear(2 * c + 7, d_llm)
        self.gate_head = nn.Linear(2 * c + 3, 1)
        nn.init.constant_(self.gate_head.bias, -2.0)  # start near the model's own forecast
        t0, t1, t2, t3 = INITIAL_THRESHOLDS
        steps = (-t1, t1 - t0, t2, t3 - t2)  # |t1|, t1 -> t0, t2, t2 -> t3 (all > 0)
        self.threshold_raw = nn.Parameter(torch.tensor([_inverse_softplus(s) for s in steps]))

    def scale_weights(self) -> torch.Tensor:
        """(S,) softmax weights of the scales (sum to 1)."""
        return torch.softmax(self.scale_logits, dim=0)

    def thresholds(self) -> torch.Tensor:
        """(4,) thresholds t0 < t1 < 0 < t2 < t3, built from zero outwards by softplus steps, so
        every parameter value gives sorted thresholds on both sides of zero."""
        s = F.softplus(self.threshold_raw)
        return torch.stack([-(s[0] + s[1]), -s[0], s[2], s[2] + s[3]])

    def trend_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B', T) -> (B', T, c): per-scale trends, refined coarse to fine, up-sampled to T
        and mixed by :meth:`scale_weights`."""
        trends = [branch(x) for branch in self.branches]
        refined = [trends[-1]]
        for i in range(len(trends) - 2, -1, -1):  # coarse to fine
            refined.insert(0, self.cross[i](trends[i], refined[0]))
        ups = torch.stack([_upsample(h, x.shape[1]) for h in refined], dim=-1)
        return (ups * self.scale_weights()).sum(-1)

    def forward(self, x: torch.Tensor) -> TAPROutput:
        """x (B', T) instance-normalised lookbacks -> :class:`TAPROutput`.

        Raises:
            ValueError: x is not a floating (B', seq_len) tensor.
        """
        if not torch.is_floating_point(x) or x.dim() != 2 or x.shape[1] != self.seq_len:
            raise ValueError(f"x must be a floating (B', {self.seq_len}) tensor, got "
                             f"{x.dtype} {tuple(x.shape)}")
        features = self.trend_features(x)
        vector = torch.cat([features.mean(1), features[:, -1]], dim=-1)
        hidden = self.trunk(vector)
        direction = self.direction_head(hidden)
        p_dir = torch.softmax(direction, -1)
        magnitude = self.magnitude_head(torch.cat([hidden, p_dir], -1))
        p_mag = torch.softmax(magnitude, -1)
        per_class = self.regressors(hidden).view(-1, 4, self.horizon)
        forecast = x[:, -1:] + torch.einsum("bk,bkh->bh", p_mag, per_class)
        embedding = self.embed(torch.cat([vector, p_dir, p_mag], -1)).unsqueeze(1)
        return TAPROutput(features, vector, embedding, direction, magnitude, forecast,
                          self.thresholds())

    def gate(self, out: TAPROutput) -> torch.Tensor:
        """(B', 1) fusion gate g = 0.5 sigmoid(linear([trend vector, direction probabilities]))
        in (0, 0.5]: the trend forecast never gets more than half the weight."""
        p_dir = torch.softmax(out.direction_logits, -1)
        return 0.5 * torch.sigmoid(self.gate_head(torch.cat([out.trend_vector, p_dir], -1)))

    def fuse(self, forecast: torch.Tensor, out: TAPROutput) -> torch.Tensor:
        """forecast (B', H) + g (trend forecast - forecast) -> (B', H), g = :meth:`gate`.

        Raises:
            ValueError: forecast's shape differs from out.trend_forecast's.
        """
        if forecast.shape != out.trend_forecast.shape:
            raise ValueError(f"forecast must have shape {tuple(out.trend_forecast.shape)} "
                             f"(B', H), got {tuple(forecast.shape)}")
        return forecast + self.gate(out) * (out.trend_forecast - forecast)


def trend_change(y_future: torch.Tensor, x_last: torch.Tensor) -> torch.Tensor:
    """change = mean(y_future over H) - x_last: y_future (B', H), x_last (B',) -> (B',), both in
    the window's instance-normalised units."""
    return y_future.mean(1) - x_last


def trend_labels(y_future: torch.Tensor, x_last: torch.Tensor,
                 thresholds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class labels of the true future (thresholds detached): y_future (B', H), x_last (B'),
    thresholds (4,) -> (direction (B',), magnitude (B',)) long.

    direction: UP if change > t2, DOWN if change < t1, else FLAT. magnitude: STRONG_DOWN if
    change < t0, WEAK_DOWN if t0 <= change < 0, WEAK_UP if 0 <= change <= t3, else STRONG_UP.
    """
    change = trend_change(y_future, x_last)
    t0, t1, t2, t3 = thresholds.detach().to(change.dtype).unbind()
    direction = torch.full_like(change, FLAT, dtype=torch.long)
    direction[change > t2] = UP
    direction[change < t1] = DOWN
    magnitude = (change >= t0).long() + (change >= 0).long() + (change > t3).long()
    return direction, magnitude


def implied_direction(magnitude_logits: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Direction probabilities (B', 3) implied by the magnitude head (B', 4): down = strong
    down + weak down, up = weak up + strong up, except a flat share of each weak class equal to
    the fraction of its interval inside the flat band [t1, t2]: t1 / t0 of [t0, 0) and t2 / t3
    of [0, t3] (in (0, 1) for sorted thresholds, and differentiable in them)."""
    p = torch.softmax(magnitude_logits, -1)
    t0, t1, t2, t3 = thresholds.to(p.dtype).unbind()
    flat_down, flat_up = t1 / t0, t2 / t3
    up = p[:, STRONG_UP] + (1 - flat_up) * p[:, WEAK_UP]
    down = p[:, STRONG_DOWN] + (1 - flat_down) * p[:, WEAK_DOWN]
    flat = flat_down * p[:, WEAK_DOWN] + flat_up * p[:, WEAK_UP]
    return torch.stack([up, down, flat], dim=-1)


def consistency_loss(direction_logits: torch.Tensor, magnitude_logits: torch.Tensor,
                     thresholds: torch.Tensor) -> torch.Tensor:
    """Hierarchical consistency: batch-mean KL(direction head || :func:`implied_direction`),
    0 exactly when the two agree, > 0 otherwise. Logits (B', 3) and (B', 4) -> scalar."""
    implied = implied_direction(magnitude_logits, thresholds)
    log_implied = implied.clamp_min(torch.finfo(implied.dtype).tiny).log()
    return F.kl_div(log_implied, F.log_softmax(direction_logits, -1), log_target=True,
                    reduction="batchmean")


def tapr_loss(out: TAPROutput, y_future: torch.Tensor, x_last: torch.Tensor,
              label_smoothing: float = 0.1) -> dict:
    """TAPR's auxiliary loss: y_future (B', H), x_last (B',) in instance-normalised units ->
    {'direction_ce', 'magnitude_ce', 'consistency', 'total'} scalars, with total =
    direction_ce + magnitude_ce + 0.1 consistency; cross-entropies with label smoothing.

    Raises:
        ValueError: y_future or x_last of the wrong shape, label_smoothing outside [0, 1).
    """
    batch, horizon = out.trend_forecast.shape
    if tuple(y_future.shape) != (batch, horizon):
        raise ValueError(f"y_future must have shape ({batch}, {horizon}), got "
                         f"{tuple(y_future.shape)}")
    if tuple(x_last.shape) != (batch,):
        raise ValueError(f"x_last must have shape ({batch},), got {tuple(x_last.shape)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    direction, magnitude = trend_labels(y_future, x_last, out.thresholds)
    losses = {
        "direction_ce": F.cross_entropy(out.direction_logits, direction,
                                        label_smoothing=label_smoothing),
        "magnitude_ce": F.cross_entropy(out.magnitude_logits, magnitude,
                                        label_smoothing=label_smoothing),
        "consistency": consistency_loss(out.direction_logits, out.magnitude_logits,
                                        out.thresholds),
    }
    losses["total"] = (losses["direction_ce"] + losses["magnitude_ce"]
                       + CONSISTENCY_WEIGHT * losses["consistency"])
    return losses

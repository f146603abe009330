"""Augmentations of the AugCells: input-space transforms, the contextual crop, timestamp masks.

Series are ``(B, T, C)`` float tensors that may hold NaN for missing values. All randomness is
drawn from the ``torch.Generator`` passed in (on its device), so a seeded generator makes every
function deterministic. Strength semantics follow :data:`search_spaces.spec.AUG_STRENGTHS`.
Sources: the contextual crop and the binomial timestamp mask are TS2Vec's (Yue et al., AAAI
2022, Sec. 3.2); the transform pool is AutoCL's (Jing et al., "Automated Contrastive Learning
Strategy Search for Time Series", 2024).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["resize", "jitter", "rescaling", "point_masking", "frequency_masking",
           "INPUT_TRANSFORMS", "apply_view", "take_per_row", "contextual_crop", "timestamp_mask"]


def _check(x: torch.Tensor, strength, name: str, upper: float | None = None) -> float:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"{name}: x must be a floating (B, T, C) tensor; got "
                         f"{getattr(x, 'shape', type(x))}")
    s = float(strength)
    if not math.isfinite(s) or s < 0 or (upper is not None and s > upper):
        hi = "inf" if upper is None else upper
        raise ValueError(f"{name}: strength must be in [0, {hi}]; got {strength!r}")
    return s


def _nan_safe(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``fn`` to ``x`` with NaN filled by 0, then put the NaN back where they were."""
    nan = torch.isnan(x)
    y = fn(torch.where(nan, torch.zeros_like(x), x))
    return torch.where(nan, torch.full_like(y, float("nan")), y)


def _rand(gen: torch.Generator, *size: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(*size, generator=gen, device=gen.device, dtype=like.dtype).to(like.device)


def _randn(gen: torch.Generator, *size: int, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(*size, generator=gen, device=gen.device, dtype=like.dtype).to(like.device)


def resize(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Time-axis resize (AutoCL): per instance f ~ U(1 - s, 1), linear resampling of the series
    to ``max(2, round(T * f))`` steps and back to T (``F.interpolate``, ``align_corners=True``),
    so both ends and the view length stay aligned. (B, T, C) -> (B, T, C); NaN kept in place.
    ``T < 2`` or ``s = 0``: unchanged copy.

    Raises:
        ValueError: x not a floating 3-D tensor, or strength outside [0, 1].
    """
    s = _check(x, strength, "resize", 1.0)
    B, T, _ = x.shape
    if T < 2 or s == 0:
        return x.clone()
    f = 1.0 - s * _rand(gen, B, like=x)
    lengths = torch.clamp(torch.round(T * f).long(), min=2, max=T)

    def fn(z: torch.Tensor) -> torch.Tensor:
        out = z.clone()
        zc = z.transpose(1, 2)  # (B, C, T)
        for L in torch.unique(lengths).tolist():  # loop over distinct lengths, not timestamps
            rows = (lengths == L).nonzero(as_tuple=True)[0]
            if L == T:
                continue
            small = F.interpolate(zc[rows], size=L, mode="linear", align_corners=True)
            back = F.interpolate(small, size=T, mode="linear", align_corners=True)
            out[rows] = back.transpose(1, 2)
        return out

    return _nan_safe(x, fn)


def jitter(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Additive Gaussian noise N(0, s^2) per value (AutoCL). (B, T, C) -> (B, T, C); NaN kept.

    Raises:
        ValueError: x not a floating 3-D tensor, or strength negative / not finite.
    """
    s = _check(x, strength, "jitter")
    return _nan_safe(x, lambda z: z + s * _randn(gen, *z.shape, like=z))


def rescaling(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Amplitude scaling by a factor ~ N(1, s^2) per (instance, channel) (AutoCL).
    (B, T, C) -> (B, T, C); NaN kept.

    Raises:
        ValueError: x not a floating 3-D tensor, or strength negative / not finite.
    """
    s = _check(x, strength, "rescaling")
    B, _, C = x.shape
    return _nan_safe(x, lambda z: z * (1.0 + s * _randn(gen, B, 1, C, like=z)))


def point_masking(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Each (b, t, c) value is set to 0 with probability s (AutoCL). (B, T, C) -> (B, T, C);
    NaN kept (a NaN point stays NaN, it is never turned into 0).

    Raises:
        ValueError: x not a floating 3-D tensor, or strength outside [0, 1].
    """
    s = _check(x, strength, "point_masking", 1.0)

    def fn(z: torch.Tensor) -> torch.Tensor:
        drop = _rand(gen, *z.shape, like=z) < s
        return torch.where(drop, torch.zeros_like(z), z)

    return _nan_safe(x, fn)


def frequency_masking(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Frequency masking (AutoCL): rFFT along time, zero ``max(1, round(s * K))`` randomly chosen
    of the K = T // 2 non-DC bins per (instance, channel) (none when s = 0 or K = 0), inverse
    rFFT to length T. (B, T, C) -> (B, T, C); NaN kept.

    Raises:
        ValueError: x not a floating 3-D tensor, or strength outside [0, 1].
    """
    s = _check(x, strength, "frequency_masking", 1.0)
    B, T, C = x.shape
    K = T // 2
    if s == 0 or K == 0:
        return x.clone()
    n = max(1, int(round(s * K)))

    def fn(z: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(z, dim=1)  # (B, K + 1, C)
        ranks = torch.argsort(torch.argsort(_rand(gen, B, K, C, like=z), dim=1), dim=1)
        keep = torch.cat([torch.ones(B, 1, C, dtype=torch.bool, device=z.device),
                          ranks >= n], dim=1)
        spec = torch.where(keep, spec, torch.zeros_like(spec))
        return torch.fft.irfft(spec, n=T, dim=1).to(z.dtype)

    return _nan_safe(x, fn)


INPUT_TRANSFORMS = {"resize": resize, "jitter": jitter, "rescaling": rescaling,
                    "point_masking": point_masking, "frequency_masking": frequency_masking}
#: Names :func:`apply_view` passes over (the crop and the latent mask are applied elsewhere).
SKIPPED = ("crop", "timestamp_masking")


def apply_view(x: torch.Tensor, entries: list[dict], gen: torch.Generator) -> torch.Tensor:
    """Apply a view's augmentation cell (AutoCL AugCell): the input-space transforms of
    ``entries`` (dicts ``{"name", "strength"}``) in list order; ``crop`` and
    ``timestamp_masking`` are skipped. (B, T, C) -> (B, T, C); NaN kept.

    Raises:
        ValueError: an entry lacks ``name``/``strength``, a name is unknown, or a transform
            rejects its input or strength.
    """
    for entry in entries:
        try:
            name, strength = entry["name"], entry["strength"]
        except (KeyError, TypeError):
            raise ValueError(f"apply_view: entry {entry!r} needs 'name' and 'strength'") from None
        if name in SKIPPED:
            continue
        if name not in INPUT_TRANSFORMS:
            raise ValueError(f"apply_view: unknown augmentation {name!r}; allowed: "
                             f"{sorted(INPUT_TRANSFORMS) + list(SKIPPED)}")
        x = INPUT_TRANSFORMS[name](x, strength, gen)
    return x


def take_per_row(x: torch.Tensor, indx, num_elem: int) -> torch.Tensor:
    """Per-row window ``out[b, i] = x[b, indx[b] + i]`` for i < num_elem (TS2Vec's
    ``take_per_row``, vectorised), NaN where ``indx[b] + i`` is outside [0, T).
    x: (B, T, ...), indx: (B,) ints -> (B, num_elem, ...).

    Raises:
        ValueError: x has fewer than 2 dims, indx is not of shape (B,), or num_elem < 0.
        TypeError: x is not a floating tensor (NaN padding needs a float dtype).
    """
    if x.dim() < 2:
        raise ValueError(f"take_per_row: x must be (B, T, ...); got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"take_per_row: x must be floating; got {x.dtype}")
    B, T = x.shape[:2]
    indx = torch.as_tensor(indx, dtype=torch.long, device=x.device).reshape(-1)
    if indx.numel() != B or int(num_elem) < 0:
        raise ValueError(f"take_per_row: need indx of shape ({B},) and num_elem >= 0; got "
                         f"{tuple(indx.shape)}, {num_elem}")
    idx = indx[:, None] + torch.arange(int(num_elem), device=x.device)[None, :]  # (B, n)
    valid = (idx >= 0) & (idx < T)
    flat = x.reshape(B, T, -1)
    gather_idx = idx.clamp(0, max(T - 1, 0))[:, :, None].expand(-1, -1, flat.shape[2])
    out = torch.gather(flat, 1, gather_idx)
    out = torch.where(valid[:, :, None], out, torch.full_like(out, float("nan")))
    return out.reshape(B, int(num_elem), *x.shape[2:])


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen, device=gen.device).item())


def contextual_crop(x: torch.Tensor, crop_strength1, crop_strength2, gen: torch.Generator,
                    min_overlap: int = 2) -> tuple[torch.Tensor, torch.Tensor, int]:
    """TS2Vec contextual crop (Yue et al., AAAI 2022, Sec. 3.2; ``TS2Vec.fit``).

    Draws an overlap ``[crop_left, crop_right)`` of ``crop_l ~ randint(min(min_overlap, T), T+1)``
    steps; view 1 extends left to ``crop_eleft = crop_left - randint(0, floor(s1*crop_left)+1)``,
    view 2 right to ``crop_eright = crop_right + randint(0, floor(s2*(T-crop_right))+1)``, where
    s is the fraction of free room the context may use (1.0 = TS2Vec; None or 0 = no extension
    of that view). A per-instance offset ``~ randint(-crop_eleft, T - crop_eright + 1)`` shifts
    both windows. x: (B, T, C) -> view1 (B, crop_right - crop_eleft, C), view2
    (B, crop_eright - crop_left, C), overlap_len = crop_l: ``view1[:, -crop_l:]`` and
    ``view2[:, :crop_l]`` hold the same original timestamps.

    Raises:
        ValueError: x not a 3-D tensor with T >= 1, a strength outside [0, 1], min_overlap < 1.
        TypeError: x is not floating.
    """
    if x.dim() != 3 or x.shape[1] < 1:
        raise ValueError(f"contextual_crop: x must be (B, T, C) with T >= 1; got {tuple(x.shape)}")
    if int(min_overlap) < 1:
        raise ValueError(f"contextual_crop: min_overlap must be >= 1; got {min_overlap!r}")
    strengths = []
    for s in (crop_strength1, crop_strength2):
        s = 0.0 if s is None else float(s)
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"contextual_crop: crop strength must be None or in [0, 1]; got {s!r}")
        strengths.append(s)
    s1, s2 = strengths
    B, T = x.shape[:2]
    crop_l = _randint(gen, min(int(min_overlap), T), T + 1)
    crop_left = _randint(gen, 0, T - crop_l + 1)
    crop_right = crop_left + crop_l
    crop_eleft, crop_eright = crop_left, crop_right  # strength None / 0: no context extension
    if s1 > 0:
        crop_eleft -= _randint(gen, 0, math.floor(s1 * crop_left) + 1)
    if s2 > 0:
        crop_eright += _randint(gen, 0, math.floor(s2 * (T - crop_right)) + 1)
    offset = torch.randint(-crop_eleft, T - crop_eright + 1, (B,), generator=gen,
                           device=gen.device).to(x.device)
    view1 = take_per_row(x, offset + crop_eleft, crop_right - crop_eleft)
    view2 = take_per_row(x, offset + crop_left, crop_eright - crop_left)
    return view1, view2, crop_l


def timestamp_mask(shape_BT, p: float, gen: torch.Generator) -> torch.Tensor:
    """TS2Vec binomial timestamp mask (Yue et al., 2022; p = 0.5 there): a (B, T) bool tensor,
    True = keep, each timestamp kept independently with probability 1 - p.

    Raises:
        ValueError: shape_BT is not two non-negative ints, or p outside [0, 1].
    """
    shape = tuple(int(d) for d in shape_BT)
    if len(shape) != 2 or min(shape) < 0:
        raise ValueError(f"timestamp_mask: shape_BT must be (B, T); got {shape_BT!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"timestamp_mask: p must be in [0, 1]; got {p!r}")
    return torch.rand(shape, generator=gen, device=gen.device) >= p

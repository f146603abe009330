"""Tests of search_spaces.augment on real ETTh1 windows (standardised, with inserted NaNs)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pd = pytest.importorskip("pandas")

from search_spaces.learner.augment import (  # noqa: E402
    INPUT_TRANSFORMS, apply_view, contextual_crop, frequency_masking, jitter, point_masking,
    rescaling, resize, take_per_row, timestamp_mask,
)

DATA_DIR = Path(os.environ.get("CTSNAS_DATA_DIR")
                or Path(__file__).resolve().parents[3] / "shared" / "datasets")
ETTH1 = DATA_DIR / "ETT-small" / "ETTh1.csv"
if not ETTH1.is_file():
    pytest.skip(f"ETTh1 not found at {ETTH1} (set CTSNAS_DATA_DIR to the datasets folder)",
                allow_module_level=True)

B, T, C = 4, 128, 7
STRENGTH = {"resize": 0.3, "jitter": 0.1, "rescaling": 0.5, "point_masking": 0.2,
            "frequency_masking": 0.2}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def series() -> torch.Tensor:
    """(B, T, C) standardised ETTh1 windows, no NaN."""
    df = pd.read_csv(ETTH1, nrows=4000)
    values = torch.tensor(df.select_dtypes("number").to_numpy(), dtype=torch.float32)
    assert values.shape[1] == C
    values = (values - values.mean(0)) / values.std(0)
    starts = [0, 500, 1000, 2000]
    return torch.stack([values[s:s + T] for s in starts])


@pytest.fixture(scope="module")
def x(series) -> torch.Tensor:
    """The windows with a NaN gap, scattered NaNs and a fully missing channel stretch."""
    out = series.clone()
    out[0, 10:20, 2] = float("nan")
    out[1, ::17, :] = float("nan")
    out[3, 100:, 6] = float("nan")
    return out


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
def test_shape_dtype_nan_positions(name, x):
    y = INPUT_TRANSFORMS[name](x, STRENGTH[name], gen())
    assert y.shape == (B, T, C) and y.dtype == torch.float32
    assert torch.equal(torch.isnan(y), torch.isnan(x))


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
def test_determinism_and_seed_dependence(name, x):
    fn, s = INPUT_TRANSFORMS[name], STRENGTH[name]
    a, b, c = fn(x, s, gen(1)), fn(x, s, gen(1)), fn(x, s, gen(2))
    assert torch.equal(a, b) or torch.allclose(a, b, equal_nan=True, atol=0, rtol=0)
    assert not torch.allclose(a, c, equal_nan=True)


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
def test_input_not_modified(name, x):
    before = x.clone()
    INPUT_TRANSFORMS[name](x, STRENGTH[name], gen())
    assert torch.equal(torch.isnan(x), torch.isnan(before))
    assert torch.allclose(x, before, equal_nan=True, atol=0, rtol=0)


def test_jitter_noise_std_close_to_strength(series):
    for s in (0.05, 0.3):
        noise = jitter(series, s, gen()) - series
        assert abs(noise.std().item() - s) < 0.1 * s
        assert abs(noise.mean().item()) < 0.1 * s


def test_point_masking_zero_fraction():
    ones = torch.ones(16, 256, 8)
    for s in (0.05, 0.3):
        frac = (point_masking(ones, s, gen()) == 0).float().mean().item()
        assert abs(frac - s) < 0.01
    assert torch.equal(point_masking(ones, 0.0, gen()), ones)


def test_frequency_masking_removes_energy(series):
    y = frequency_masking(series, 0.3, gen())
    spec_x = torch.fft.rfft(series, dim=1).abs()
    spec_y = torch.fft.rfft(y, dim=1).abs()
    assert torch.allclose(spec_x[:, 0], spec_y[:, 0], atol=1e-3)  # DC kept
    assert spec_y[:, 1:].pow(2).sum() < spec_x[:, 1:].pow(2).sum()
    zeroed = (spec_y[:, 1:] < 1e-4).float().sum(1)  # per (instance, channel)
    assert torch.all(zeroed >= round(0.3 * (T // 2)))
    # smallest strength still zeroes at least one non-DC bin of every (instance, channel)
    y_small = frequency_masking(series[:, :8], 0.05, gen())
    assert torch.all((torch.fft.rfft(y_small, dim=1)[:, 1:].abs() < 1e-5).sum(1) >= 1)


def test_rescaling_changes_amplitude_per_channel(series):
    y = rescaling(series, 0.5, gen())
    ratio = y.std(dim=1) / series.std(dim=1)  # (B, C): |factor| per (instance, channel)
    assert not torch.allclose(ratio, torch.ones_like(ratio), atol=0.05)
    assert ratio.flatten().unique().numel() > 1
    # within one (instance, channel) the factor is constant
    b0c0 = (y[0, :, 0] / series[0, :, 0])[series[0, :, 0].abs() > 1e-3]
    assert torch.allclose(b0c0, b0c0[0].expand_as(b0c0), rtol=1e-4)


def test_resize_keeps_length_and_differs(series):
    y = resize(series, 0.5, gen())
    assert y.shape == series.shape
    assert not torch.allclose(y, series, atol=1e-3)
    assert torch.allclose(y[:, 0], series[:, 0], atol=1e-5)  # ends stay aligned
    assert torch.allclose(y[:, -1], series[:, -1], atol=1e-5)
    assert torch.allclose(resize(series, 0.0, gen()), series)
    short = series[:, :1]
    assert torch.equal(resize(short, 0.5, gen()), short)


def test_invalid_strength_raises(series):
    with pytest.raises(ValueError, match="strength"):
        point_masking(series, 1.5, gen())
    with pytest.raises(ValueError, match="strength"):
        jitter(series, -0.1, gen())
    with pytest.raises(ValueError):
        jitter(series[0], 0.1, gen())


def test_apply_view_order_matters_and_skips(x):
    jm = [{"name": "jitter", "strength": 0.3}, {"name": "point_masking", "strength": 0.3}]
    a = apply_view(x, jm, gen(5))
    b = apply_view(x, jm[::-1], gen(5))
    assert a.shape == b.shape == x.shape
    assert not torch.allclose(a, b, equal_nan=True)
    # jitter then masking leaves exact zeros; masking then jitter leaves (almost) none
    assert (a == 0).float().mean() > 0.2
    assert (b == 0).float().mean() < 0.01
    skipped = [{"name": "crop", "strength": 1.0}, {"name": "timestamp_masking", "strength": 0.5}]
    assert torch.allclose(apply_view(x, skipped, gen()), x, equal_nan=True, atol=0, rtol=0)
    assert torch.allclose(apply_view(x, skipped + jm, gen(5)), a, equal_nan=True)
    assert torch.equal(torch.isnan(a), torch.isnan(x))


def test_apply_view_unknown_name_raises(x):
    with pytest.raises(ValueError, match="'flip'.*allowed"):
        apply_view(x, [{"name": "flip", "strength": 0.1}], gen())


def _time_index(b: int = B, t: int = T) -> torch.Tensor:
    return torch.arange(t, dtype=torch.float32)[None, :, None].expand(b, t, 2).clone()


@pytest.mark.parametrize("s1,s2", [(1.0, 1.0), (0.25, 0.5), (None, 1.0), (1.0, None),
                                   (None, None), (0.0, 0.5)])
def test_contextual_crop_overlap_aligned(s1, s2):
    idx = _time_index()
    for seed in range(20):
        v1, v2, n = contextual_crop(idx, s1, s2, gen(seed))
        assert 2 <= n <= T and v1.shape[1] >= n and v2.shape[1] >= n
        assert torch.equal(v1[:, -n:], v2[:, :n])
        assert not torch.isnan(v1).any() and not torch.isnan(v2).any()  # TS2Vec offsets stay inside
        # views are contiguous runs of original timestamps
        assert torch.all(v1[:, 1:, 0] - v1[:, :-1, 0] == 1)
        assert torch.all(v2[:, 1:, 0] - v2[:, :-1, 0] == 1)
        if not s1:
            assert v1.shape[1] == n
        if not s2:
            assert v2.shape[1] == n


def test_contextual_crop_ts2vec_extends_context_and_is_deterministic(x):
    ext = [contextual_crop(_time_index(), 1.0, 1.0, gen(s)) for s in range(30)]
    assert any(v1.shape[1] > n for v1, _, n in ext) and any(v2.shape[1] > n for _, v2, n in ext)
    a1, a2, na = contextual_crop(x, 1.0, 1.0, gen(3))
    b1, b2, nb = contextual_crop(x, 1.0, 1.0, gen(3))
    assert na == nb and torch.allclose(a1, b1, equal_nan=True)
    assert torch.allclose(a2, b2, equal_nan=True)
    assert a1.shape[2] == C and a1.shape[0] == B
    offsets = {tuple(contextual_crop(_time_index(), 1.0, 1.0, gen(s))[0][:, 0, 0].tolist())
               for s in range(10)}
    assert len(offsets) > 1


def test_contextual_crop_min_overlap_and_errors():
    idx = _time_index(2, 5)
    for seed in range(10):
        assert contextual_crop(idx, 1.0, 1.0, gen(seed), min_overlap=4)[2] >= 4
    assert contextual_crop(_time_index(2, 1), 1.0, 1.0, gen())[2] == 1
    with pytest.raises(ValueError):
        contextual_crop(idx, 1.5, 1.0, gen())
    with pytest.raises(ValueError):
        contextual_crop(idx[0], 1.0, 1.0, gen())


def test_take_per_row_gathers_and_pads_nan():
    idx = _time_index(3, 6)
    out = take_per_row(idx, torch.tensor([-2, 0, 4]), 4)
    assert out.shape == (3, 4, 2)
    assert torch.isnan(out[0, :2]).all() and torch.equal(out[0, 2:, 0], torch.tensor([0.0, 1.0]))
    assert torch.equal(out[1, :, 0], torch.arange(4.0))
    assert torch.equal(out[2, :2, 0], torch.tensor([4.0, 5.0])) and torch.isnan(out[2, 2:]).all()


def test_timestamp_mask():
    m = timestamp_mask((64, 256), 0.3, gen())
    assert m.shape == (64, 256) and m.dtype == torch.bool
    assert abs(m.float().mean().item() - 0.7) < 0.02
    assert torch.equal(m, timestamp_mask((64, 256), 0.3, gen()))
    assert not torch.equal(m, timestamp_mask((64, 256), 0.3, gen(1)))
    assert timestamp_mask((2, 3), 0.0, gen()).all() and not timestamp_mask((2, 3), 1.0, gen()).any()
    with pytest.raises(ValueError):
        timestamp_mask((2, 3), 1.2, gen())

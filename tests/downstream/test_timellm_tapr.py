"""TAPR, the trend-aware patch router of ``downstream/timellm/tapr.py``.

What is checked:
  * shapes of every output (also for a lookback that is no multiple of the scales), the trend
    features are the softmax-weighted (sum 1) mix of the per-scale features;
  * the thresholds start at (-0.02, -0.005, 0.005, 0.02) and stay sorted (and on both sides of
    zero) after optimizer steps that would swap raw parameters;
  * labels of hand-made futures (mean of the future minus the last value; the current
    thresholds are used);
  * the consistency loss is 0 when the direction head equals the direction implied by the
    magnitude head and > 0 otherwise; the flat share of a weak class is the fraction of its
    interval inside the flat band;
  * the fusion gate never exceeds 0.5, also for extreme gate inputs;
  * label smoothing and the weights of the total loss; argument checks;
  * dtype and device follow the input (float64 run, ``meta`` device run);
  * a short training run on real ETTh1 windows (T = 96, H = 24) predicts the direction of
    held-out windows far better than the majority class.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from downstream.timellm.tapr import (
    DOWN,
    FLAT,
    INITIAL_THRESHOLDS,
    STRONG_DOWN,
    STRONG_UP,
    UP,
    WEAK_DOWN,
    WEAK_UP,
    TAPROutput,
    TrendAwarePatchRouter,
    consistency_loss,
    implied_direction,
    tapr_loss,
    trend_labels,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T, H, D_LLM = 96, 24, 32


def _router(seed: int = 0, **kwargs) -> TrendAwarePatchRouter:
    torch.manual_seed(seed)
    return TrendAwarePatchRouter(kwargs.pop("seq_len", T), H, D_LLM, **kwargs)


def _adam(params: list, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """A plain Adam (Kingma and Ba, 2015): step(loss) backpropagates and updates ``params``.
    Written out because ``torch.optim``'s first step imports ``torch._dynamo`` (~3 s)."""
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    count = [0]

    def step(loss: torch.Tensor) -> None:
        for p in params:
            p.grad = None
        loss.backward()
        count[0] += 1
        with torch.no_grad():
            for p, (m, v) in zip(params, moments):
                if p.grad is None:  # e.g. the embedding, which tapr_loss does not reach
                    continue
                m.mul_(betas[0]).add_(p.grad, alpha=1 - betas[0])
                v.mul_(betas[1]).addcmul_(p.grad, p.grad, value=1 - betas[1])
                m_hat, v_hat = m / (1 - betas[0] ** count[0]), v / (1 - betas[1] ** count[0])
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    return step


def _series(batch: int = 6, length: int = T, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, generator=generator).cumsum(1) * 0.2


@pytest.mark.parametrize("length", [T, 50])
def test_shapes(length):
    router, x = _router(seq_len=length, channels=8), _series(length=length)
    out = router(x)
    assert out.trend_features.shape == (6, length, 8)
    assert out.trend_vector.shape == (6, 16)
    assert out.trend_embedding.shape == (6, 1, D_LLM)
    assert out.direction_logits.shape == (6, 3)
    assert out.magnitude_logits.shape == (6, 4)
    assert out.trend_forecast.shape == (6, H)
    assert out.thresholds.shape == (4,)
    assert router.fuse(torch.zeros(6, H), out).shape == (6, H)


def test_trend_features_are_the_weighted_mix_of_the_scales():
    router, x = _router(), _series()
    with torch.no_grad():
        router.scale_logits.copy_(torch.tensor([0.3, -1.0, 0.7]))
        weights = router.scale_weights()
        mixed = router.trend_features(x)
        per_scale = []
        for i in range(3):  # one scale alone: weight 1 up to exp(-200)
            router.scale_logits.copy_(torch.full((3,), -100.0).index_fill(0, torch.tensor(i), 100))
            per_scale.append(router.trend_features(x))
    assert torch.allclose(weights.sum(), torch.tensor(1.0)) and (weights > 0).all()
    expected = sum(w * f for w, f in zip(weights, per_scale))
    assert torch.allclose(mixed, expected, atol=1e-5)
    assert not torch.allclose(per_scale[0], per_scale[2], atol=1e-3)  # scales differ


def test_thresholds_start_as_specified_and_stay_sorted():
    router = _router()
    assert torch.allclose(router.thresholds(), torch.tensor(INITIAL_THRESHOLDS), atol=1e-7)
    step = _adam([router.threshold_raw], lr=0.5)
    before = router.thresholds().detach()
    for _ in range(5):  # on raw values: t0 up past t1, t3 down past t2 (steps of 0.5)
        t0, t1, t2, t3 = router.thresholds()
        step(t1 - t0 + t3 - t2)
        t = router.thresholds().detach()
        assert t[0] < t[1] < 0 < t[2] < t[3], t
    assert not torch.allclose(router.thresholds().detach(), before)


def test_labels_of_hand_made_futures():
    thresholds = _router().thresholds()
    change = torch.tensor([0.5, 0.01, 0.003, 0.001, -0.003, -0.01, -0.5])
    x_last = torch.tensor([-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0])  # exact in binary
    ramp = torch.linspace(-1.0, 1.0, H)  # mean 0: the mean, not the last value, counts
    future = x_last[:, None] + change[:, None] + 0.9 * ramp
    direction, magnitude = trend_labels(future, x_last, thresholds)
    assert direction.tolist() == [UP, UP, FLAT, FLAT, FLAT, DOWN, DOWN]
    assert magnitude.tolist() == [STRONG_UP, WEAK_UP, WEAK_UP, WEAK_UP, WEAK_DOWN, WEAK_DOWN,
                                  STRONG_DOWN]
    down_ramp = x_last[:, None] + change[:, None] - 0.9 * ramp  # ends below x_last
    assert trend_labels(down_ramp, x_last, thresholds)[0].tolist() == direction.tolist()
    wider = torch.tensor([-0.4, -0.1, 0.1, 0.6])  # the current thresholds are used
    assert trend_labels(future, x_last, wider)[0].tolist() == [UP, FLAT, FLAT, FLAT, FLAT,
                                                               FLAT, DOWN]
    assert trend_labels(future, x_last, wider)[1].tolist() == [WEAK_UP, WEAK_UP, WEAK_UP,
                                                               WEAK_UP, WEAK_DOWN, WEAK_DOWN,
                                                               STRONG_DOWN]
    level = x_last[:, None].expand(7, H)  # change exactly 0: flat, and weak up (>= 0)
    assert trend_labels(level, x_last, thresholds)[0].tolist() == [FLAT] * 7
    assert trend_labels(level, x_last, thresholds)[1].tolist() == [WEAK_UP] * 7


def test_consistency_is_zero_when_the_heads_agree_and_positive_otherwise():
    router = _router()
    thresholds = router.thresholds()
    magnitude = torch.randn(8, 4, generator=torch.Generator().manual_seed(1)) * 2
    implied = implied_direction(magnitude, thresholds)
    assert torch.allclose(implied.sum(-1), torch.ones(8))
    agree = consistency_loss(implied.log(), magnitude, thresholds)
    assert abs(agree.item()) < 1e-6
    disagree = consistency_loss(implied.log().flip(-1), magnitude, thresholds)
    assert disagree.item() > 0.01
    strong_down = torch.tensor([[9.0, 0.0, 0.0, 0.0]])
    up = torch.tensor([[9.0, 0.0, 0.0]])
    assert consistency_loss(up, strong_down, thresholds).item() > 1.0
    disagree.backward()  # the flat shares make the thresholds learn from it
    assert router.threshold_raw.grad.abs().sum() > 0


def test_flat_share_is_the_part_of_a_weak_interval_inside_the_flat_band():
    thresholds = torch.tensor(INITIAL_THRESHOLDS, requires_grad=True)
    weak_down = torch.tensor([[-30.0, 30.0, -30.0, -30.0]])
    weak_up = torch.tensor([[-30.0, -30.0, 30.0, -30.0]])
    down_implied = implied_direction(weak_down, thresholds)[0]
    assert torch.allclose(down_implied, torch.tensor([0.0, 0.75, 0.25]), atol=1e-6)
    up_implied = implied_direction(weak_up, thresholds)[0]
    assert torch.allclose(up_implied, torch.tensor([0.75, 0.0, 0.25]), atol=1e-6)
    consistency_loss(torch.zeros(1, 3), weak_down, thresholds).backward()
    assert thresholds.grad.abs().sum() > 0


@pytest.mark.parametrize("bias,scale", [(1e4, 1.0), (-1e4, 1.0), (0.0, 1e6), (0.0, -1e6)])
def test_gate_never_exceeds_one_half(bias, scale):
    router, x = _router(), _series()
    with torch.no_grad():
        router.gate_head.bias.fill_(bias)
        out = router(x)
        out.trend_vector = out.trend_vector * scale
        gate = router.gate(out)
        forecast = torch.randn(6, H, generator=torch.Generator().manual_seed(2))
        fused = router.fuse(forecast, out)
    assert gate.shape == (6, 1) and (gate <= 0.5).all() and (gate >= 0).all()
    assert torch.allclose(fused, forecast + gate * (out.trend_forecast - forecast))
    if bias > 0:
        assert torch.allclose(fused, (forecast + out.trend_forecast) / 2)
    if bias < 0:
        assert torch.equal(fused, forecast)


def _confident_output(direction, magnitude) -> TAPROutput:
    d_logits = F.one_hot(direction, 3).float() * 20
    m_logits = F.one_hot(magnitude, 4).float() * 20
    n = len(direction)
    return TAPROutput(torch.zeros(n, T, 4), torch.zeros(n, 8), torch.zeros(n, 1, D_LLM),
                      d_logits, m_logits, torch.zeros(n, H),
                      torch.tensor(INITIAL_THRESHOLDS))


def test_label_smoothing_and_loss_weights():
    change = torch.tensor([0.5, -0.5, 0.0])
    future, x_last = change[:, None].expand(3, H), torch.zeros(3)
    direction = torch.tensor([UP, DOWN, FLAT])
    magnitude = torch.tensor([STRONG_UP, STRONG_DOWN, WEAK_UP])
    out = _confident_output(direction, magnitude)
    sharp = tapr_loss(out, future, x_last, label_smoothing=0.0)
    smooth = tapr_loss(out, future, x_last)
    assert sharp["direction_ce"] < 1e-6 and sharp["magnitude_ce"] < 1e-6  # right labels
    for key, labels, logits in (("direction_ce", direction, out.direction_logits),
                                ("magnitude_ce", magnitude, out.magnitude_logits)):
        expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
        assert torch.allclose(smooth[key], expected) and smooth[key] > 0.5
    total = smooth["direction_ce"] + smooth["magnitude_ce"] + 0.1 * smooth["consistency"]
    assert torch.allclose(smooth["total"], total)
    assert smooth["consistency"] > 0.1  # weak up alone implies 25% flat, the head says 100%


def test_float64_input_gives_float64_everywhere():
    router = _router().double()
    x = _series().double()
    out = router(x)
    for name, value in vars(out).items():
        assert value.dtype == torch.float64, name
    losses = tapr_loss(out, x[:, -H:] + 0.1, x[:, -1])
    assert all(v.dtype == torch.float64 for v in losses.values())
    assert router.fuse(x[:, :H], out).dtype == torch.float64
    losses["total"].backward()
    assert router.threshold_raw.grad.dtype == torch.float64


def test_meta_device_construction_and_forward():
    with torch.device("meta"):
        router = TrendAwarePatchRouter(T, H, D_LLM)
    x = torch.empty(5, T, device="meta")
    out = router(x)
    assert all(v.device.type == "meta" for v in vars(out).values())
    losses = tapr_loss(out, torch.empty(5, H, device="meta"), x[:, -1])
    assert all(v.device.type == "meta" for v in losses.values())
    assert router.fuse(torch.empty(5, H, device="meta"), out).device.type == "meta"


@pytest.mark.parametrize("kwargs,name", [
    ({"seq_len": 8}, "seq_len"), ({"horizon": 0}, "horizon"), ({"d_llm": 0}, "d_llm"),
    ({"channels": 15}, "channels"), ({"heads": 0}, "heads"), ({"scales": (4, 1)}, "scales"),
    ({"scales": ()}, "scales"),
])
def test_bad_arguments(kwargs, name):
    args = {"seq_len": T, "horizon": H, "d_llm": D_LLM} | kwargs
    with pytest.raises(ValueError, match=f"^{name} must"):
        TrendAwarePatchRouter(**args)


def test_bad_inputs():
    router = _router()
    with pytest.raises(ValueError, match="^x must"):
        router(torch.zeros(2, T + 1))
    out = router(_series(batch=2))
    with pytest.raises(ValueError, match="^forecast must"):
        router.fuse(torch.zeros(2, H + 1), out)
    with pytest.raises(ValueError, match="^y_future must"):
        tapr_loss(out, torch.zeros(2, H - 1), torch.zeros(2))
    with pytest.raises(ValueError, match="^x_last must"):
        tapr_loss(out, torch.zeros(2, H), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="^label_smoothing must"):
        tapr_loss(out, torch.zeros(2, H), torch.zeros(2), label_smoothing=1.0)


def _windows(values: np.ndarray, start: int, stop: int, stride: int) -> tuple:
    """Channel-independent, instance-normalised (x (N, T), y (N, H)) windows of rows
    [start, stop)."""
    xs, ys = [], []
    for s in range(start, stop - T - H + 1, stride):
        window = values[s:s + T + H].T
        mean = window[:, :T].mean(1, keepdims=True)
        std = window[:, :T].std(1, keepdims=True) + 1e-5
        xs.append((window[:, :T] - mean) / std)
        ys.append((window[:, T:] - mean) / std)
    return torch.tensor(np.concatenate(xs)), torch.tensor(np.concatenate(ys))


def test_short_training_learns_the_direction_on_etth1(etth1):
    x_train, y_train = _windows(etth1, 0, 6000, 23)
    x_test, y_test = _windows(etth1, 6200, 8640, 29)
    router = _router(channels=8)
    labels = trend_labels(y_test, x_test[:, -1], router.thresholds())[0]
    majority = torch.bincount(labels, minlength=3).max().item() / len(labels)
    step = _adam(list(router.parameters()), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        idx = torch.randint(0, len(x_train), (64,), generator=generator)
        step(tapr_loss(router(x_train[idx]), y_train[idx], x_train[idx, -1])["total"])
    with torch.no_grad():
        predicted = router(x_test).direction_logits.argmax(-1)
    accuracy = (predicted == labels).float().mean().item()
    assert majority < 0.6
    assert accuracy > majority + 0.15, (accuracy, majority)

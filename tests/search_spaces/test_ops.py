"""Tests of the encoder-cell ops (search_spaces.ops)."""
import pytest
import torch

from search_spaces.learner.ops import (OPS, SamePadConv, TS2VecConvBlock, make_op)
from search_spaces.spec import ENCODER_OPS, SPATIAL_OPS, TEMPORAL_OPS

H = 8
B = 2


def _x(n, t, h=H, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, n, h, t, generator=g)


def test_ops_names_match_spec():
    assert tuple(OPS) == ENCODER_OPS


@pytest.mark.parametrize("name", ENCODER_OPS)
@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("dilation,t", [(1, 1), (4, 1), (1, 17), (4, 17), (1, 64), (4, 64)])
def test_shape_finite_backward(name, n, dilation, t):
    torch.manual_seed(0)
    op = make_op(name, H, n, dilation)
    x = _x(n, t).requires_grad_(True)
    y = op(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    (y ** 2).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in op.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", ["temporal_attention", "spatial_attention"])
def test_attention_single_head_when_width_not_divisible(name):
    op = make_op(name, 6, 3, 1)
    assert op.attn.heads == 1
    x = _x(3, 10, h=6)
    assert op(x).shape == x.shape
    assert make_op(name, 8, 3, 1).attn.heads == 4


def test_temporal_attention_long_series():
    op = make_op("temporal_attention", H, 1, 1)
    x = torch.randn(1, 1, H, 3000)
    with torch.no_grad():
        y = op(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", ENCODER_OPS)
def test_deterministic(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        op = make_op(name, H, 7, 2)
        outs.append(op(_x(7, 20)))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("dilation", [1, 4])
def test_gated_tcn_causal(dilation):
    torch.manual_seed(0)
    op = make_op("gated_tcn", H, 3, dilation)
    x = _x(3, 64)
    t0 = 30
    x2 = x.clone()
    x2[..., t0] += 1.0
    y, y2 = op(x), op(x2)
    assert torch.equal(y[..., :t0], y2[..., :t0])
    assert not torch.allclose(y[..., t0], y2[..., t0])


def test_ts2vec_conv_is_not_causal():
    torch.manual_seed(0)
    op = make_op("ts2vec_conv", H, 1, 1)
    x = _x(1, 32)
    x2 = x.clone()
    x2[..., 20] += 1.0
    assert not torch.allclose(op(x)[..., 19], op(x2)[..., 19])


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 8), (2, 1), (2, 3), (4, 2), (1, 1)])
@pytest.mark.parametrize("t", [1, 10, 51])
def test_same_pad_conv_keeps_length(kernel_size, dilation, t):
    conv = SamePadConv(4, 5, kernel_size, dilation)
    assert conv.receptive_field == (kernel_size - 1) * dilation + 1
    assert conv(torch.randn(2, 4, t)).shape == (2, 5, t)


def test_ts2vec_block_output_head():
    torch.manual_seed(0)
    block = TS2VecConvBlock(64, 320, 3, 8, final=True)
    assert block.projector is not None
    assert block(torch.randn(2, 64, 50)).shape == (2, 320, 50)
    assert TS2VecConvBlock(64, 64, 3, 2).projector is None
    assert TS2VecConvBlock(64, 64, 3, 2, final=True).projector is not None


def test_ts2vec_block_matches_reference_formula():
    torch.manual_seed(0)
    block = TS2VecConvBlock(6, 6, 3, 2)
    x = torch.randn(2, 6, 13)
    gelu = torch.nn.functional.gelu
    expected = block.conv2(gelu(block.conv1(gelu(x)))) + x
    assert torch.allclose(block(x), expected)
    # parameter names follow the reference ConvBlock (loadable state dicts)
    assert set(block.state_dict()) == {"conv1.conv.weight", "conv1.conv.bias",
                                       "conv2.conv.weight", "conv2.conv.bias"}


def test_ts2vec_conv_op_applies_block_per_variable():
    torch.manual_seed(0)
    op = make_op("ts2vec_conv", H, 3, 2)
    x = _x(3, 20)
    y = op(x)
    for v in range(3):
        assert torch.allclose(y[:, v], op.block(x[:, v]), atol=1e-6)


@pytest.mark.parametrize("bad", ["conv", "", "Identity", None, 3])
def test_make_op_unknown_name(bad):
    with pytest.raises(ValueError, match="Encoder.cell op") as err:
        make_op(bad, H, 1, 1)
    assert repr(bad) in str(err.value)
    assert "gated_tcn" in str(err.value)


@pytest.mark.parametrize("kwargs", [dict(hidden=0), dict(n_nodes=0), dict(dilation=0),
                                    dict(hidden=2.0)])
def test_make_op_bad_sizes(kwargs):
    args = dict(hidden=H, n_nodes=1, dilation=1) | kwargs
    with pytest.raises(ValueError):
        make_op("gated_tcn", args["hidden"], args["n_nodes"], args["dilation"])


@pytest.mark.parametrize("name", ENCODER_OPS)
def test_wrong_input_shape(name):
    op = make_op(name, H, 7, 1)
    with pytest.raises(ValueError, match=r"expected \(B"):
        op(torch.randn(B, 7, H + 1, 10))
    with pytest.raises(ValueError):
        op(torch.randn(B, H, 10))


def test_diffusion_gcn_requires_n_nodes():
    op = make_op("diffusion_gcn", H, 7, 1)
    with pytest.raises(ValueError, match="7"):
        op(_x(5, 10))
    adj = op.adjacency()
    assert adj.shape == (7, 7)
    assert torch.allclose(adj.sum(dim=1), torch.ones(7))


def _changes_variable_1(name):
    torch.manual_seed(0)
    op = make_op(name, H, 7, 2)
    x = _x(7, 24)
    x2 = x.clone()
    x2[:, 0] += torch.randn_like(x2[:, 0])
    y, y2 = op(x), op(x2)
    assert not torch.allclose(y[:, 0], y2[:, 0])
    return not torch.equal(y[:, 1:], y2[:, 1:])


@pytest.mark.parametrize("name", SPATIAL_OPS)
def test_spatial_ops_mix_variables(name):
    assert _changes_variable_1(name)


@pytest.mark.parametrize("name", TEMPORAL_OPS)
def test_temporal_ops_keep_variables_apart(name):
    assert not _changes_variable_1(name)


def test_spatial_attention_permutation_equivariant():
    torch.manual_seed(0)
    op = make_op("spatial_attention", H, 7, 1)
    x = _x(7, 12)
    perm = torch.randperm(7)
    assert torch.allclose(op(x)[:, perm], op(x[:, perm]), atol=1e-5)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("n,dilation", [(1, 1), (7, 4), (3, 32)])
def test_forward_at_reads_only_its_taps(name, n, dilation):
    """Outputs at a few steps, computed from an input zeroed outside ``taps``, equal the full
    forward at those steps (the basis of receptive-field pruned encoding)."""
    torch.manual_seed(0)
    op = make_op(name, 8, n, dilation).eval()
    x = torch.randn(2, n, 8, 50)
    steps = torch.tensor([0, 17, 49])
    taps = op.taps(steps, 50)
    sparse = torch.zeros_like(x)
    sparse[..., taps] = x[..., taps]
    with torch.no_grad():
        torch.testing.assert_close(op.forward_at(sparse, steps), op(x)[..., steps],
                                   rtol=1e-5, atol=1e-5)

"""nn.Conv2d / nn.ConvTranspose2d: seed examples, every argument, and every validation error."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid import nn

try:
    import warnings

    import torch
    warnings.filterwarnings("ignore", message="Using padding=.same. with even kernel")
except ImportError:
    torch = None


def test_seed_numeric_example(backend):
    x = lucid.tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), requires_grad=True)
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with lucid.no_grad():
        conv.weight.copy_(lucid.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    out = conv(x)
    np.testing.assert_allclose(out.numpy()[0, 0], [[37, 47], [67, 77]])
    out.backward()
    np.testing.assert_allclose(x.grad.numpy()[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_allclose(conv.weight.grad.numpy()[0, 0], [[12, 16], [24, 28]])


def test_seed_example_two_channels_with_bias(backend):
    # the corrected lucid page example 2: two output channels, bias grad = number of outputs
    x = lucid.tensor(np.arange(1.0, 17.0).reshape(1, 1, 4, 4))
    conv = nn.Conv2d(1, 2, 2, stride=2)
    out = conv(x)
    assert out.shape == (1, 2, 2, 2)
    out.sum().backward()
    np.testing.assert_allclose(conv.weight.grad.numpy()[:, 0], [[[24, 28], [40, 44]]] * 2)
    np.testing.assert_allclose(conv.bias.grad.numpy(), [4.0, 4.0])


@pytest.mark.parametrize("build,shape,out", [
    (lambda: nn.Conv2d(3, 64, 3, padding=1), (1, 3, 32, 32), (1, 64, 32, 32)),
    (lambda: nn.Conv2d(32, 32, 3, padding=1, groups=32), (2, 32, 8, 8), (2, 32, 8, 8)),
    (lambda: nn.Conv2d(32, 64, 1), (2, 32, 8, 8), (2, 64, 8, 8)),
    (lambda: nn.Conv2d(2, 4, 3, padding=4, dilation=4), (1, 2, 16, 16), (1, 4, 16, 16)),
    (lambda: nn.Conv2d(8, 16, 1, bias=False), (1, 8, 5, 5), (1, 16, 5, 5)),
])
def test_seed_example_shapes(backend, build, shape, out):
    conv = build()
    assert conv(lucid.random.randn(*shape)).shape == out


def test_depthwise_then_pointwise(backend):
    dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
    pw = nn.Conv2d(32, 64, 1)
    assert dw.weight.shape == (32, 1, 3, 3)
    assert pw(dw(lucid.random.randn(1, 32, 8, 8))).shape == (1, 64, 8, 8)


@pytest.mark.parametrize("k,d", [(2, 1), (4, 1), (3, 2), ((2, 3), (1, 2))])
def test_same_padding_puts_extra_pixel_bottom_right(backend, k, d):
    conv = nn.Conv2d(1, 1, k, padding="SAME", dilation=d, bias=False)
    x = lucid.random.randn(1, 1, 7, 6)
    y = conv(x)
    assert y.shape == (1, 1, 7, 6)
    kk, dd = (k, k) if isinstance(k, int) else k, (d, d) if isinstance(d, int) else d
    total = [di * (ki - 1) for di, ki in zip(dd, kk)]
    lo = [t // 2 for t in total]
    ref = F.conv2d(x, conv.weight, padding=((lo[0], total[0] - lo[0]), (lo[1], total[1] - lo[1])),
                   dilation=dd)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    if torch is not None:
        t = torch.nn.functional.conv2d(torch.tensor(x.numpy()), torch.tensor(conv.weight.numpy()),
                                       padding="same", dilation=dd)
        np.testing.assert_allclose(y.numpy(), t.numpy(), rtol=1e-5, atol=1e-5)


def test_valid_padding_and_per_side_padding(backend):
    x = lucid.random.randn(1, 2, 6, 5)
    c = nn.Conv2d(2, 3, 3, padding="Valid")
    assert c(x).shape == (1, 3, 4, 3)
    c = nn.Conv2d(2, 3, 3, padding=((0, 2), (1, 0)))
    assert c(x).shape == (1, 3, 6, 4)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_padding_modes_match_numpy_pad(backend, mode, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    conv = nn.Conv2d(2, 3, (3, 4) if padding == "same" else 3, padding=padding, padding_mode=mode)
    lo, hi = nn.conv_args.resolve_padding(padding, conv.kernel_size, (1, 1), (1, 1))
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, ((0, 0), (0, 0), (lo[0], hi[0]), (lo[1], hi[1])), mode=np_mode)
    ref = F.conv2d(lucid.tensor(xp), conv.weight, conv.bias)
    np.testing.assert_allclose(conv(lucid.tensor(x)).numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    if torch is not None and padding != "same":
        tc = torch.nn.Conv2d(2, 3, 3, padding=padding, padding_mode=mode)
        with torch.no_grad():
            tc.weight.copy_(torch.tensor(conv.weight.numpy()))
            tc.bias.copy_(torch.tensor(conv.bias.numpy()))
        np.testing.assert_allclose(conv(lucid.tensor(x)).numpy(),
                                   tc(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "constant"])
def test_pad_gradients(mode):
    from helpers import check_grad
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 5))
    check_grad(lambda t: F.pad(t, (2, 1, 3, 1), mode=mode), [x])


def test_reflect_pad_too_large_raises(backend):
    conv = nn.Conv2d(1, 1, 3, padding=4, padding_mode="reflect")
    with pytest.raises(ValueError, match="reflect padding .* less than the input size 4"):
        conv(lucid.random.randn(1, 1, 4, 8))
    with pytest.raises(ValueError, match="circular"):
        F.pad(lucid.zeros(1, 1, 2, 2), (3, 3), mode="circular")


def test_unbatched_input(backend):
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = lucid.random.randn(3, 6, 7)
    y = conv(x)
    assert y.shape == (4, 6, 7)
    np.testing.assert_allclose(y.numpy(), conv(x.unsqueeze(0)).numpy()[0], rtol=1e-6)


def test_channels_last_matches_channels_first(backend):
    lucid.random.seed(3)
    first = nn.Conv2d(3, 4, 3, padding=(1, 2), stride=2, groups=1)
    last = nn.Conv2d(3, 4, 3, padding=(1, 2), stride=2, data_format="channels_last")
    last.load_state_dict(first.state_dict())
    x = lucid.random.randn(2, 3, 7, 9, requires_grad=True)
    xl = x.detach().permute(0, 2, 3, 1)
    xl.requires_grad_()
    y, yl = first(x), last(xl)
    np.testing.assert_allclose(yl.numpy(), y.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
    y.sum().backward()
    yl.sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), x.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(last.weight.grad.numpy(), first.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-4)


def test_weight_mask_multiplies_kernel_and_gradient(backend):
    mask = np.zeros((1, 1, 3, 3), dtype=np.float32)
    mask[..., 1, :] = 1.0                            # keep the middle row only
    conv = nn.Conv2d(2, 3, 3, padding=1, weight_mask=mask)
    assert "weight_mask" in dict(conv.named_buffers())
    x = lucid.random.randn(1, 2, 5, 5)
    ref = F.conv2d(x, conv.weight * lucid.tensor(mask), conv.bias, padding=1)
    y = conv(x)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    y.sum().backward()
    g = conv.weight.grad.numpy()
    assert np.all(g[:, :, [0, 2], :] == 0) and np.any(g[:, :, 1, :] != 0)


def test_init_bounds_and_reset(backend):
    conv = nn.Conv2d(6, 8, (3, 5), groups=2)
    bound = 1 / math.sqrt(3 * 3 * 5)
    w = conv.weight.numpy()
    assert w.shape == (8, 3, 3, 5)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(conv.bias.numpy()).max() <= bound
    before = w.copy()
    conv.reset_parameters()
    assert not np.allclose(before, conv.weight.numpy())


def test_device_and_dtype(backend):
    conv = nn.Conv2d(1, 2, 3, device="cpu")
    assert conv.weight.backend == "numpy"
    if backend == "numpy":
        c64 = nn.Conv2d(1, 2, 3, dtype=lucid.float64)
        assert c64.weight.dtype == lucid.float64
        assert c64(lucid.random.randn(1, 1, 4, 4, dtype="float64")).dtype == lucid.float64
    with pytest.raises(TypeError, match="floating"):
        nn.Conv2d(1, 2, 3, dtype="int32")


def test_extra_repr_shows_non_defaults():
    assert repr(nn.Conv2d(3, 8, 3)) == "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"
    r = repr(nn.Conv2d(4, 8, (1, 3), stride=2, padding=(0, 1), dilation=2, groups=2, bias=False,
                       padding_mode="circular"))
    for part in ("stride=(2, 2)", "padding=(0, 1)", "dilation=(2, 2)", "groups=2", "bias=False",
                 "padding_mode='circular'"):
        assert part in r


def test_conv_transpose_layer(backend):
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    assert up.weight.shape == (4, 2, 3, 3)
    y = up(lucid.random.randn(1, 4, 5, 6))
    assert y.shape == (1, 2, 10, 12)
    assert up(lucid.random.randn(1, 4, 5, 6), output_size=(9, 11)).shape == (1, 2, 9, 11)
    assert up(lucid.random.randn(4, 5, 6)).shape == (2, 10, 12)
    assert "output_padding=(1, 1)" in repr(up)


def test_conv_transpose_is_adjoint_of_conv(backend):
    rng = np.random.default_rng(0)
    w = lucid.tensor(rng.standard_normal((3, 2, 3, 3)))
    x = lucid.tensor(rng.standard_normal((1, 2, 7, 8)))
    y = lucid.tensor(rng.standard_normal((1, 3, 4, 4)))
    lhs = (F.conv2d(x, w, stride=2, padding=1) * y).sum().item()
    rhs = (x * F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=(0, 1))).sum().item()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4)


@pytest.mark.parametrize("groups,cin,cout", [(1, 3, 5), (2, 4, 6), (4, 4, 8)])
def test_empty_batch(backend, groups, cin, cout):
    """An empty batch gives an empty output of PyTorch's shape and zero weight and bias
    gradients (MLX's own conv kills the process on it)."""
    conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, groups=groups)
    up = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, groups=groups)
    for layer, out_shape in ((conv, (0, cout, 4, 5)), (up, (0, cout, 16, 18))):
        x = lucid.zeros(0, cin, 8, 9, requires_grad=True)
        y = layer(x)
        assert y.shape == out_shape
        y.sum().backward()
        assert x.grad.shape == x.shape
        np.testing.assert_array_equal(layer.weight.grad.numpy(), 0)
        np.testing.assert_array_equal(layer.bias.grad.numpy(), 0)
        assert layer.weight.grad.shape == layer.weight.shape


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,pattern", [
    ({"in_channels": 0}, ValueError, "in_channels must be a positive int, got 0"),
    ({"out_channels": -2}, ValueError, "out_channels must be a positive int, got -2"),
    ({"in_channels": 2.0}, TypeError, "in_channels must be an int"),
    ({"kernel_size": 0}, ValueError, r"kernel_size must be positive, got \(0, 0\)"),
    ({"kernel_size": (3, 3, 3)}, ValueError, "kernel_size must be an int or a pair"),
    ({"kernel_size": "3"}, TypeError, "kernel_size must be an int or a tuple"),
    ({"stride": 0}, ValueError, "stride must be positive"),
    ({"stride": (1, -1)}, ValueError, "stride must be positive"),
    ({"dilation": 0}, ValueError, "dilation must be positive"),
    ({"groups": 0}, ValueError, "groups must be a positive int, got 0"),
    ({"in_channels": 3, "groups": 2}, ValueError, "in_channels=3 must be divisible by groups=2"),
    ({"out_channels": 5, "groups": 2, "in_channels": 4}, ValueError,
     "out_channels=5 must be divisible"),
    ({"padding": "full"}, ValueError, "padding string must be 'same' or 'valid', got 'full'"),
    ({"padding": -1}, ValueError, "padding must be >= 0, got -1"),
    ({"padding": (1, -1)}, ValueError, "padding must be >= 0"),
    ({"padding": 1.5}, TypeError, "padding must be an int"),
    ({"padding_mode": "mirror"}, ValueError, "padding_mode must be one of"),
    ({"padding": "same", "stride": 2}, ValueError, "padding='same' needs stride 1"),
    ({"data_format": "NCWH"}, ValueError, "data_format must be"),
    ({"weight_mask": np.ones((2, 3))}, ValueError,
     r"weight_mask of shape \(2, 3\) is not broadcastable to the weight shape \(4, 2, 3, 3\)"),
    ({"bias": "yes"}, TypeError, "bias must be a bool"),
])
def test_constructor_validation(kwargs, exc, pattern):
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": 3}
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        nn.Conv2d(**args)


@pytest.mark.parametrize("kwargs,pattern", [
    ({"padding": "same"}, "does not take padding='same'"),
    ({"output_padding": 2, "stride": 2}, "output_padding .* must be smaller than stride"),
    ({"padding_mode": "reflect"}, "only padding_mode='zeros'"),
])
def test_transpose_constructor_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        nn.ConvTranspose2d(2, 4, 3, **kwargs)


def test_call_time_validation(backend):
    conv = nn.Conv2d(3, 4, 5)
    with pytest.raises(ValueError, match=r"expected a 3-D or 4-D input .* got shape \(3, 8\)"):
        conv(lucid.zeros(3, 8))
    with pytest.raises(ValueError, match=r"expected input with 3 channels .* got input of shape "
                                         r"\(1, 2, 8, 8\)"):
        conv(lucid.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"input of shape \(1, 3, 4, 8\) padded to 4 is smaller "
                                         r"than the dilated kernel \(5\)"):
        conv(lucid.zeros(1, 3, 4, 8))
    with pytest.raises(ValueError, match="weight must be 4-D"):
        F.conv2d(lucid.zeros(1, 1, 4, 4), lucid.zeros(1, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        F.conv2d(lucid.zeros(1, 3, 8, 8), conv.weight, lucid.zeros(3))

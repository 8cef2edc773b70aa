"""What brainstate's Conv2d users reach for (issue 16): input dilation, initialisers as
arguments, TF/Keras 'SAME' with a stride; and conv argument tuples of the wrong length."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from helpers import check_grad

import lucid
import lucid.nn.functional as F
from lucid import nn
from lucid.nn.utils import same_padding

try:
    import torch  # one thread: set once for the session in conftest.py
except ImportError:  # the oracle is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")


# -- input dilation -------------------------------------------------------------------------

def _torch_input_dilated_conv(x, w, b, stride, padding, dilation, groups, in_dil):
    """torch's conv2d of an explicitly zero-dilated input (differentiable slice assignment)."""
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    n, c, h, wd = x.shape
    xd = torch.zeros(n, c, (h - 1) * in_dil[0] + 1, (wd - 1) * in_dil[1] + 1, dtype=tx.dtype)
    xd[:, :, ::in_dil[0], ::in_dil[1]] = tx
    (top, bottom), (left, right) = padding
    xd = torch.nn.functional.pad(xd, (left, right, top, bottom))
    return torch.nn.functional.conv2d(xd, tw, tb, stride, 0, dilation, groups), (tx, tw, tb)


def _input_dilation_grid():
    dils = [(1, 1), (2, 2), (3, 3), (1, 3), (3, 2)]
    strides = [(1, 1), (2, 2), (1, 3)]
    pads = [((0, 0), (0, 0)), ((1, 1), (1, 1)), ((2, 0), (1, 3))]
    for i, (di, s, p, g, d) in enumerate(itertools.product(dils, strides, pads, [1, 2, 3],
                                                            [(1, 1), (2, 1)])):
        yield i, di, s, p, g, d


@needs_torch
def test_input_dilation_against_torch(backend):
    """Forward and the input, weight and bias gradients on a grid of input dilations 1-3 x
    strides x paddings x groups x kernel dilations."""
    rng = np.random.default_rng(16)
    dtype = "float64" if backend == "numpy" else "float32"
    tol = {"rtol": 1e-9, "atol": 1e-9} if dtype == "float64" else {"rtol": 2e-4, "atol": 2e-4}
    checked = 0
    for i, di, s, p, g, d in _input_dilation_grid():
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        x = rng.standard_normal((2, cin, 5, 4))
        w = rng.standard_normal((cout, cin // g, 3, 2))
        b = rng.standard_normal(cout)
        ty, (tx, tw, tb) = _torch_input_dilated_conv(x, w, b, s, p, d, g, di)
        gy = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(gy))
        lx, lw, lb = (lucid.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b))
        ly = F.conv2d(lx, lw, lb, s, p, d, g, input_dilation=di)
        ly.backward(lucid.tensor(gy, dtype=dtype))
        msg = f"case {i}: input_dilation={di} stride={s} padding={p} groups={g} dilation={d}"
        assert ly.shape == tuple(ty.shape), msg
        for a, t in ((ly, ty), (lx.grad, tx.grad), (lw.grad, tw.grad), (lb.grad, tb.grad)):
            np.testing.assert_allclose(a.numpy(), t.detach().numpy(), err_msg=msg, **tol)
        checked += 1
    assert checked == 270


@needs_torch
@pytest.mark.parametrize("stride,padding,dilation", [((2, 2), (1, 1), (1, 1)),
                                                     ((3, 2), (0, 1), (2, 1))])
def test_input_dilation_is_a_transposed_conv(backend, stride, padding, dilation):
    """conv of the stride-dilated input by the flipped, in/out-swapped kernel, padded by
    d*(k-1) - p, equals torch's conv_transpose2d (brainstate's 'equivalent to transposed
    convolution')."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)       # (C_in, C_out, kh, kw)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), None, stride,
                                               padding, 0, 1, dilation).numpy()
    wc = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    pad = tuple(d * (k - 1) - p for d, k, p in zip(dilation, (3, 3), padding))
    y = F.conv2d(lucid.tensor(x), lucid.tensor(wc), padding=pad, dilation=dilation,
                 input_dilation=stride)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("di,s,p,g", [((2, 2), (1, 1), 1, 1), ((3, 1), (2, 1), ((2, 0), (1, 1)), 2),
                                      ((2, 3), (2, 3), 0, 1), ((1, 2), (1, 1), "same", 2)])
def test_input_dilation_finite_differences(di, s, p, g):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2 * g, 3, 4))
    w = rng.standard_normal((2 * g, 2, 2, 3))
    b = rng.standard_normal(2 * g)
    check_grad(lambda x, w, b: F.conv2d(x, w, b, s, p, 1, g, input_dilation=di), [x, w, b])


def test_input_dilation_output_size(backend):
    x = lucid.zeros(2, 3, 5, 7)
    w = lucid.zeros(4, 3, 3, 3)
    for di, s, p in [((2, 2), 1, 0), ((3, 2), 2, 1), ((2, 1), (1, 2), 0), ((3, 2), 1, "same")]:
        di2 = di if isinstance(di, tuple) else (di, di)
        s2 = s if isinstance(s, tuple) else (s, s)
        dil = [(n - 1) * d + 1 for n, d in zip((5, 7), di2)]
        pad = 2 if p == "same" else 2 * p
        want = tuple((n + pad - 3) // st + 1 for n, st in zip(dil, s2))
        assert F.conv2d(x, w, stride=s, padding=p, input_dilation=di).shape == (2, 4) + want


def test_conv2d_layer_input_dilation(backend):
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, input_dilation=(2, 3))
    assert conv.input_dilation == (2, 3)
    assert "input_dilation=(2, 3)" in repr(conv)
    assert "input_dilation" not in repr(nn.Conv2d(4, 6, 3))
    x = lucid.random.randn(2, 4, 5, 4, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 6, 9, 10)
    ref = F.conv2d(x, conv.weight, conv.bias, 1, 1, 1, 2, input_dilation=(2, 3))
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)
    y.sum().backward()
    assert conv.weight.grad is not None and x.grad.shape == x.shape


def test_channels_last_input_dilation_matches_channels_first(backend):
    lucid.random.seed(4)
    first = nn.Conv2d(3, 4, 3, stride=2, padding=1, input_dilation=2)
    last = nn.Conv2d(3, 4, 3, stride=2, padding=1, input_dilation=2, data_format="channels_last")
    last.load_state_dict(first.state_dict())
    x = lucid.random.randn(2, 3, 5, 6)
    np.testing.assert_allclose(last(x.permute(0, 2, 3, 1)).numpy(),
                               first(x).numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("enforce", ["forward", "post_step", "pre_forward"])
def test_constrained_conv_input_dilation(backend, enforce):
    conv = nn.ConstrainedConv2d(2, 3, 3, padding=1, input_dilation=2, constraint="sum_to_one",
                                enforce=enforce)
    assert "input_dilation=(2, 2)" in repr(conv)
    x = lucid.random.randn(1, 2, 4, 5)
    ref = F.conv2d(x, conv.constrained_weight(), conv.bias, padding=1, input_dilation=2)
    y = conv(x)                          # pre_forward projects again: float32 rounding
    assert y.shape == (1, 3, 7, 9)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("value,exc,pattern", [
    (0, ValueError, r"input_dilation must be positive, got \(0, 0\)"),
    ((1, -2), ValueError, r"input_dilation must be positive, got \(1, -2\)"),
    ((1, 2, 3), ValueError, r"input_dilation must be an int or a pair \(length 2\), got 3"),
    (1.5, TypeError, "input_dilation must be an int"),
])
def test_input_dilation_validated_like_dilation(value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        nn.Conv2d(2, 2, 3, input_dilation=value)
    with pytest.raises(exc, match=pattern):
        F.conv2d(lucid.zeros(1, 2, 5, 5), lucid.zeros(2, 2, 3, 3), input_dilation=value)


def test_input_dilation_needs_zero_padding_mode():
    with pytest.raises(ValueError, match=r"input_dilation \(2, 2\) needs padding_mode='zeros', "
                                         r"got 'reflect'"):
        nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", input_dilation=2)


def test_input_dilation_too_small_input_names_the_dilated_size():
    with pytest.raises(ValueError, match=r"dilated to 3 and padded to 3 is smaller than the "
                                         r"dilated kernel \(5\)"):
        F.conv2d(lucid.zeros(1, 1, 2, 9), lucid.zeros(1, 1, 5, 5), input_dilation=2)


# -- initialisers as arguments --------------------------------------------------------------

LAYERS = {
    "Conv2d": (lambda **kw: nn.Conv2d(4, 6, 3, groups=2, **kw), (6, 2, 3, 3), (6,)),
    "ConvTranspose2d": (lambda **kw: nn.ConvTranspose2d(4, 6, 3, groups=2, **kw), (4, 3, 3, 3),
                        (6,)),
    "ConstrainedConv2d": (lambda **kw: nn.ConstrainedConv2d(4, 6, 3, constraint="nonneg", **kw),
                          (6, 4, 3, 3), (6,)),
    "Linear": (lambda **kw: nn.Linear(5, 3, **kw), (3, 5), (3,)),
}


@pytest.mark.parametrize("layer", LAYERS)
def test_callable_initialisers(backend, layer):
    build, wshape, bshape = LAYERS[layer]
    lucid.random.seed(3)
    expected = nn.init.xavier_normal_(lucid.zeros(*wshape), gain=0.5).numpy()
    if layer == "ConstrainedConv2d":
        expected = np.maximum(expected, 0)            # nonneg, enforced in the forward
    lucid.random.seed(3)
    m = build(weight_init=functools.partial(nn.init.xavier_normal_, gain=0.5),
              bias_init=functools.partial(nn.init.constant_, val=0.25))
    w = m.constrained_weight() if layer == "ConstrainedConv2d" else m.weight
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(m.bias.numpy(), np.full(bshape, 0.25, np.float32))
    m.weight.data = lucid.zeros(*wshape).data
    m.reset_parameters()                                 # applies the initialisers again
    np.testing.assert_array_equal(m.bias.numpy(), 0.25)
    assert np.abs(m.weight.numpy()).max() > 0


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("form", ["numpy", "tensor", "other_backend"])
def test_array_initialisers(backend, layer, form):
    build, wshape, bshape = LAYERS[layer]
    rng = np.random.default_rng(0)
    w0, b0 = rng.random(wshape), rng.random(bshape)       # float64: cast to the layer's dtype
    if form == "tensor":
        w_init, b_init = lucid.tensor(w0), lucid.tensor(b0)
    elif form == "other_backend":
        other = [b for b in lucid.backends.available() if b != backend]
        if not other:
            pytest.skip("one backend installed")
        dt = "float64" if other[0] == "numpy" else "float32"     # f64 on NumPy, into MLX
        w_init, b_init = (lucid.tensor(a, dtype=dt, device=other[0]) for a in (w0, b0))
    else:
        w_init, b_init = w0, b0
    m = build(weight_init=w_init, bias_init=b_init)
    assert m.weight.backend == backend and m.weight.dtype == lucid.float32
    np.testing.assert_allclose(m.weight.numpy(), w0, rtol=1e-6)
    np.testing.assert_allclose(m.bias.numpy(), b0, rtol=1e-6)
    kept = w0.copy()
    with lucid.no_grad():
        m.weight.zero_()                                 # a copy: the source is untouched
    np.testing.assert_array_equal(w0, kept)
    if isinstance(w_init, lucid.Tensor):
        np.testing.assert_allclose(w_init.numpy(), kept, rtol=1e-6)
    m.reset_parameters()
    np.testing.assert_allclose(m.weight.numpy(), w0, rtol=1e-6)


def test_post_step_projects_the_initial_weight():
    w0 = np.random.default_rng(1).standard_normal((2, 1, 3, 3))
    conv = nn.ConstrainedConv2d(1, 2, 3, constraint="nonneg", enforce="post_step",
                                weight_init=w0)
    np.testing.assert_allclose(conv.weight.numpy(), np.maximum(w0, 0), rtol=1e-6)


@pytest.mark.parametrize("layer", LAYERS)
def test_bad_initialisers_raise_before_anything(layer):
    build, wshape, bshape = LAYERS[layer]
    w_rx = r"\(" + r", ".join(map(str, wshape)) + r",?\)"
    cases = [
        ({"weight_init": np.zeros((2, 2))}, ValueError,
         r"weight_init has shape \(2, 2\), but the parameter it initialises has shape " + w_rx),
        ({"bias_init": np.zeros(bshape[0] + 1)}, ValueError,
         (rf"bias_init has shape \({bshape[0] + 1},\), but the parameter it initialises has "
          rf"shape \({bshape[0]},\)")),
        ({"weight_init": "xavier"}, TypeError,
         r"weight_init must be a callable init\(tensor\) or an array/Tensor of shape " + w_rx
         + r", got 'xavier' \(str\)"),
        ({"bias_init": 0.5}, TypeError, r"bias_init must be a callable .* got 0.5 \(float\)"),
        ({"bias": False, "bias_init": np.zeros(bshape)}, ValueError,
         "bias_init is given but bias=False"),
    ]
    for kwargs, exc, pattern in cases:
        lucid.random.seed(9)
        with pytest.raises(exc, match=pattern):
            build(**kwargs)
        # Nothing was drawn from the random stream: the check ran before any initialisation.
        after = lucid.random.randn(3).numpy()
        lucid.random.seed(9)
        np.testing.assert_array_equal(after, lucid.random.randn(3).numpy())


def test_initialiser_that_does_not_work_in_place_is_refused():
    def reshaping(t):
        t.data = lucid.zeros(2, 2).data

    with pytest.raises(ValueError, match=r"weight_init must fill the parameter in place, keeping "
                                         r"its shape \(3, 5\)"):
        nn.Linear(5, 3, weight_init=reshaping)


# -- 'SAME' with a stride -------------------------------------------------------------------

def _tf_same_pads(n, k, s, d):
    """TensorFlow's documented rule (tf.nn convolution guide), with the effective kernel."""
    k_eff = d * (k - 1) + 1
    total = max(k_eff - s, 0) if n % s == 0 else max(k_eff - n % s, 0)
    return total // 2, total - total // 2


def test_same_padding_matches_tensorflow_on_a_grid():
    for n, k, s, d in itertools.product(range(1, 13), range(1, 6), range(1, 5), range(1, 4)):
        pads = same_padding((n, n + 1), k, s, d)
        assert pads == (_tf_same_pads(n, k, s, d), _tf_same_pads(n + 1, k, s, d)), (n, k, s, d)


@pytest.mark.parametrize("hw,k,s,d", [((7, 8), 3, 2, 1), ((9, 5), (4, 2), (3, 2), (1, 2)),
                                      ((6, 6), 5, 3, 2), ((1, 4), 3, 4, 1), ((11, 13), 1, 2, 1)])
def test_same_padding_gives_ceil_output(backend, hw, k, s, d):
    kk = (k, k) if isinstance(k, int) else k
    ss = (s, s) if isinstance(s, int) else s
    conv = nn.Conv2d(2, 3, k, stride=s, dilation=d, padding=same_padding(hw, k, s, d))
    y = conv(lucid.zeros(1, 2, *hw))
    assert y.shape[2:] == tuple(math.ceil(n / st) for n, st in zip(hw, ss))
    assert conv.kernel_size == kk


def test_same_padding_with_stride_one_is_padding_same():
    for k, d in [(3, 1), (4, 1), (4, 2), ((2, 5), (3, 1))]:
        kk = (k, k) if isinstance(k, int) else k
        dd = (d, d) if isinstance(d, int) else d
        lo, hi = nn.conv_args.resolve_padding("same", kk, dd, (1, 1))
        assert same_padding((9, 10), k, 1, d) == ((lo[0], hi[0]), (lo[1], hi[1]))


def test_same_padding_validation():
    with pytest.raises(ValueError, match=r"input_size must be an int or a pair \(length 2\)"):
        same_padding((1, 2, 3), 3)
    with pytest.raises(ValueError, match="stride must be positive"):
        same_padding(8, 3, 0)


def test_same_with_stride_error_says_how_to_get_tf_behaviour():
    pattern = (r"padding='same' needs stride 1, got stride \(2, 2\) .* TF/Keras/JAX 'SAME' .*"
               r"padding=lucid.nn.utils.same_padding")
    with pytest.raises(ValueError, match=pattern):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=pattern):
        F.conv2d(lucid.zeros(1, 2, 5, 5), lucid.zeros(2, 2, 3, 3), stride=2, padding="same")


# -- argument tuples of the wrong length (issue 11) -----------------------------------------

@pytest.mark.parametrize("name,value", [("padding", (1, 1, 1)), ("padding", ((1, 1, 1), (0, 0))),
                                        ("stride", (1, 1, 1)), ("dilation", (2,)),
                                        ("kernel_size", (3, 3, 3)), ("input_dilation", (1, 2, 3))])
def test_wrong_length_tuples_are_value_errors(name, value):
    args = {"in_channels": 2, "out_channels": 2, "kernel_size": 3, name: value}
    with pytest.raises(ValueError, match=rf"{name}( per side)? must .*length 2.*got \d values"):
        nn.Conv2d(**args)
    if name != "kernel_size":
        with pytest.raises(ValueError, match=rf"{name}( per side)? must .*length 2"):
            F.conv2d(lucid.zeros(1, 2, 6, 6), lucid.zeros(2, 2, 3, 3), **{name: value})


@pytest.mark.parametrize("name,value", [("padding", (1, 1, 1)), ("output_padding", (1, 1, 1)),
                                        ("stride", [2]), ("dilation", (1, 1, 1))])
def test_wrong_length_tuples_transposed(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be an int or a pair \(length 2\)"):
        nn.ConvTranspose2d(2, 2, 3, **{name: value})
    with pytest.raises(ValueError, match=rf"{name} must be an int or a pair \(length 2\)"):
        F.conv_transpose2d(lucid.zeros(1, 2, 4, 4), lucid.zeros(2, 2, 3, 3), **{name: value})

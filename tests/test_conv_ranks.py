"""Convolutions of every rank (issue 23): Conv1d/Conv3d and their transposed forms against
PyTorch on seeded grids (stride, every padding form and mode incl. 'same' with even kernels,
dilation, groups incl. depthwise, input dilation as an explicitly dilated input, output padding,
unbatched, channels-last), forward and input/weight/bias gradients on every backend; float64
finite differences on NumPy; the path table on 1-D calls; argument errors per rank."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_grad

import lucid
import lucid.nn.functional as F
from lucid import nn
from lucid.backends import numpy_backend as nb
from lucid.backends import numpy_conv_paths as P
from lucid.backends import numpy_conv_paths3d as P3

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the oracle is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch oracle not installed")
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
N_CONFIGS = {1: 24, 3: 12}


def _ints(rng, lo, hi, n):
    return tuple(int(v) for v in rng.integers(lo, hi, n))


def _config(rng, rank):
    groups = int(rng.choice([1, 1, 2, 0]))                    # 0 -> depthwise
    if groups == 0:
        groups = cin = int(rng.integers(2, 4))
        cout = cin * int(rng.integers(1, 3))
    else:
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kmax = 6 if rank == 1 else 4
    k = _ints(rng, 1, kmax, rank)
    stride, dilation = _ints(rng, 1, 3, rank), _ints(rng, 1, 3, rank)
    in_dil = _ints(rng, 1, 3, rank) if rng.random() < 0.25 else (1,) * rank
    mode = "zeros" if in_dil != (1,) * rank else str(
        rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
    form = str(rng.choice(["int", "tuple", "sides", "same", "valid", "SAME"]))
    if form.lower() == "same":
        stride, padding = (1,) * rank, form
        k = tuple(kk + (kk % 2) if i == 0 else kk for i, kk in enumerate(k))  # an even kernel
    elif form == "int":
        padding = int(rng.integers(0, 3))
    elif form == "tuple":
        padding = _ints(rng, 0, 3, rank)
    elif form == "sides":
        padding = tuple(_ints(rng, 0, 3, 2) for _ in range(rank))
    else:
        padding = "valid"
    lo, hi = nn.conv_args.resolve_padding(padding, k, dilation, stride)
    size = []
    for kk, d, di, a, b in zip(k, dilation, in_dil, lo, hi):
        need = -(-(d * (kk - 1) - a - b) // di) + 1           # the dilated, padded input fits
        size.append(int(rng.integers(max(need, a + 1, b + 1, 2), max(need, a + 1, b + 1, 2) + 3)))
    return {"rank": rank, "n": int(rng.integers(1, 3)), "cin": cin, "cout": cout,
            "groups": groups, "k": k, "stride": stride, "dilation": dilation,
            "in_dil": in_dil, "padding": padding, "lo": lo, "hi": hi, "mode": mode,
            "size": tuple(size), "bias": bool(rng.integers(0, 2)),
            "unbatched": rng.random() < 0.2, "last": rng.random() < 0.25}


def _torch_conv(cfg, x, w, b):
    """torch's convNd of the explicitly dilated and padded input (float64)."""
    rank = cfg["rank"]
    if cfg["in_dil"] != (1,) * rank:
        shape = x.shape[:2] + tuple((n - 1) * d + 1 for n, d in zip(x.shape[2:], cfg["in_dil"]))
        xd = torch.zeros(shape, dtype=x.dtype)
        xd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in cfg["in_dil"])] = x
        x = xd
    widths = []
    for a, c in zip(reversed(cfg["lo"]), reversed(cfg["hi"])):
        widths += [a, c]
    mode = "constant" if cfg["mode"] == "zeros" else cfg["mode"]
    x = TF.pad(x, widths, mode=mode)
    fn = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}[rank]
    return fn(x, w, b, cfg["stride"], 0, cfg["dilation"], cfg["groups"])


def _perm_last(rank):
    return (0,) + tuple(range(2, rank + 2)) + (1,)


def _perm_first(rank):
    return (0, rank + 1) + tuple(range(1, rank + 1))


def _grid(rank):
    rng = np.random.default_rng(230 + rank)
    return [_config(rng, rank) for _ in range(N_CONFIGS[rank])]


@needs_torch
@pytest.mark.parametrize("rank", [1, 3])
def test_conv_layer_grid_against_torch(backend, rank):
    rng = np.random.default_rng(rank)
    for cfg in _grid(rank):
        x = rng.standard_normal((cfg["n"], cfg["cin"]) + cfg["size"])
        w = rng.standard_normal((cfg["cout"], cfg["cin"] // cfg["groups"]) + cfg["k"])
        b = rng.standard_normal(cfg["cout"]) if cfg["bias"] else None
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if b is not None else None
        ty = _torch_conv(cfg, tx, tw, tb)
        seed = rng.standard_normal(ty.shape)
        (ty * torch.tensor(seed)).sum().backward()

        layer = CONV[rank](cfg["cin"], cfg["cout"], cfg["k"], cfg["stride"], cfg["padding"],
                           cfg["dilation"], cfg["groups"], cfg["bias"], cfg["mode"],
                           data_format="channels_last" if cfg["last"] else "channels_first",
                           input_dilation=cfg["in_dil"])
        with lucid.no_grad():
            layer.weight.copy_(lucid.tensor(w))
            if b is not None:
                layer.bias.copy_(lucid.tensor(b))
        xin, sd = x, seed
        if cfg["last"]:
            xin, sd = x.transpose(_perm_last(rank)), seed.transpose(_perm_last(rank))
        if cfg["unbatched"]:
            xin, sd = xin[0], sd[0]
        lx = lucid.tensor(xin, requires_grad=True)
        y = layer(lx)
        y.backward(lucid.tensor(sd))
        yn, gx = y.numpy(), lx.grad.numpy()
        if cfg["unbatched"]:
            yn, gx = yn[None], gx[None]
        if cfg["last"]:
            yn, gx = yn.transpose(_perm_first(rank)), gx.transpose(_perm_first(rank))
        ref_y, ref_gx = ty.detach().numpy(), tx.grad.numpy()
        if cfg["unbatched"]:
            ref_y, ref_gx = ref_y[:1], ref_gx[:1]
        tol = {"rtol": 1e-4, "atol": 1e-4}
        np.testing.assert_allclose(yn, ref_y, **tol, err_msg=str(cfg))
        np.testing.assert_allclose(gx, ref_gx, **tol, err_msg=str(cfg))
        if not cfg["unbatched"]:
            np.testing.assert_allclose(layer.weight.grad.numpy(), tw.grad.numpy(), **tol,
                                       err_msg=str(cfg))
            if b is not None:
                np.testing.assert_allclose(layer.bias.grad.numpy(), tb.grad.numpy(), **tol,
                                           err_msg=str(cfg))


def _config_t(rng, rank):
    groups = int(rng.choice([1, 2]))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = _ints(rng, 1, 4, rank)
    stride, dilation = _ints(rng, 1, 3, rank), _ints(rng, 1, 3, rank)
    padding = _ints(rng, 0, 2, rank)
    op = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    size = _ints(rng, 2, 4, rank)
    return {"rank": rank, "n": int(rng.integers(1, 3)), "cin": cin, "cout": cout,
            "groups": groups, "k": k, "stride": stride, "dilation": dilation,
            "padding": padding, "op": op, "size": size, "bias": bool(rng.integers(0, 2)),
            "last": rng.random() < 0.25}


@needs_torch
@pytest.mark.parametrize("rank", [1, 3])
def test_conv_transpose_grid_against_torch(backend, rank):
    rng = np.random.default_rng(10 + rank)
    tfn = {1: TF.conv_transpose1d, 3: TF.conv_transpose3d}[rank]
    done = 0
    while done < N_CONFIGS[rank] // 2:
        cfg = _config_t(rng, rank)
        x = rng.standard_normal((cfg["n"], cfg["cin"]) + cfg["size"])
        w = rng.standard_normal((cfg["cin"], cfg["cout"] // cfg["groups"]) + cfg["k"])
        b = rng.standard_normal(cfg["cout"]) if cfg["bias"] else None
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if b is not None else None
        try:
            ty = tfn(tx, tw, tb, cfg["stride"], cfg["padding"], cfg["op"], cfg["groups"],
                     cfg["dilation"])
        except RuntimeError:
            with pytest.raises(ValueError, match="output size would be negative"):
                (F.conv_transpose1d if rank == 1 else F.conv_transpose3d)(
                    lucid.tensor(x), lucid.tensor(w), None, cfg["stride"], cfg["padding"],
                    cfg["op"], cfg["groups"], cfg["dilation"])
            continue
        done += 1
        seed = rng.standard_normal(ty.shape)
        (ty * torch.tensor(seed)).sum().backward()
        layer = CONV_T[rank](cfg["cin"], cfg["cout"], cfg["k"], cfg["stride"], cfg["padding"],
                             cfg["op"], cfg["groups"], cfg["bias"], cfg["dilation"],
                             data_format="channels_last" if cfg["last"] else "channels_first")
        with lucid.no_grad():
            layer.weight.copy_(lucid.tensor(w))
            if b is not None:
                layer.bias.copy_(lucid.tensor(b))
        xin, sd = x, seed
        if cfg["last"]:
            xin, sd = x.transpose(_perm_last(rank)), seed.transpose(_perm_last(rank))
        lx = lucid.tensor(xin, requires_grad=True)
        y = layer(lx)
        y.backward(lucid.tensor(sd))
        yn, gx = y.numpy(), lx.grad.numpy()
        if cfg["last"]:
            yn, gx = yn.transpose(_perm_first(rank)), gx.transpose(_perm_first(rank))
        tol = {"rtol": 1e-4, "atol": 1e-4}
        np.testing.assert_allclose(yn, ty.detach().numpy(), **tol, err_msg=str(cfg))
        np.testing.assert_allclose(gx, tx.grad.numpy(), **tol, err_msg=str(cfg))
        np.testing.assert_allclose(layer.weight.grad.numpy(), tw.grad.numpy(), **tol,
                                   err_msg=str(cfg))
        if b is not None:
            np.testing.assert_allclose(layer.bias.grad.numpy(), tb.grad.numpy(), **tol)


@pytest.mark.parametrize("rank,kwargs", [
    (1, {"stride": 2, "padding": 1, "groups": 2}),
    (1, {"padding": "same", "dilation": 2, "input_dilation": 2}),
    (3, {"stride": (1, 2, 1), "padding": ((0, 1), (1, 0), (1, 1)), "groups": 2}),
    (3, {"dilation": (2, 1, 1), "input_dilation": (1, 2, 1)}),
])
def test_conv_finite_differences(rank, kwargs):
    rng = np.random.default_rng(rank)
    size = (7,) if rank == 1 else (4, 3, 4)
    k = (3,) if rank == 1 else (2, 2, 3)
    x = rng.standard_normal((2, 2) + size)
    w = rng.standard_normal((4, 2 // kwargs.get("groups", 1)) + k)
    b = rng.standard_normal(4)
    fn = F.conv1d if rank == 1 else F.conv3d
    check_grad(lambda x, w, b: fn(x, w, b, **kwargs), [x, w, b], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rank,kwargs", [
    (1, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
    (3, {"stride": (2, 1, 2), "padding": (1, 0, 0), "dilation": (1, 2, 1)}),
])
def test_conv_transpose_finite_differences(rank, kwargs):
    rng = np.random.default_rng(5 + rank)
    size = (5,) if rank == 1 else (3, 2, 3)
    k = (3,) if rank == 1 else (3, 2, 2)
    x = rng.standard_normal((2, 2) + size)
    w = rng.standard_normal((2, 4 // kwargs.get("groups", 1)) + k)
    b = rng.standard_normal(4)
    fn = F.conv_transpose1d if rank == 1 else F.conv_transpose3d
    check_grad(lambda x, w, b: fn(x, w, b, **kwargs), [x, w, b], rtol=1e-5, atol=1e-6)


# -- the NumPy path table on 1-D calls (lifted to 2-D of height 1) ---------------------------

@pytest.mark.parametrize("case", [
    # (n, L, cin, cout, k, stride, lo, hi, dilation, in_dil, groups, path)
    (2, 40, 8, 8, 9, 1, 4, 4, 1, 1, 8, "flat_taps"),          # depthwise, 'same'
    (2, 64, 8, 16, 16, 1, 7, 8, 1, 1, 1, "flat_gemm"),        # few channels, EEG-like
    (2, 20, 4, 4, 3, 1, 2, 2, 1, 2, 1, "stride_phases"),      # an input-dilated call
    (2, 30, 6, 12, 1, 1, 0, 0, 1, 1, 1, "pointwise"),
    (3, 25, 4, 8, 3, 2, 1, 1, 1, 1, 4, "strided_taps"),
])
def test_one_d_calls_take_the_two_d_paths(case, monkeypatch):
    n, length, cin, cout, k, s, lo, hi, d, di, g, path = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, length, cin))
    w = rng.standard_normal((cout, k, cin // g))
    geo = P.Geometry.of((n, 1, length, cin), (cout, 1, k, cin // g), (1, s), (0, lo), (0, hi),
                        (1, d), (1, di), g)
    taken = P.first(geo)
    assert taken is not None and taken.name == path
    y = nb.conv(x, w, (s,), (lo,), (hi,), (d,), (di,), g, False)
    ref = nb.conv_definition(x, w, (s,), (lo,), (hi,), (d,), (di,), g)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    yf = nb.conv(x, w, (s,), (lo,), (hi,), (d,), (di,), g, True)
    ref_f = nb.conv_definition(x, w[:, ::-1], (s,), (lo,), (hi,), (d,), (di,), g)
    np.testing.assert_allclose(yf, ref_f, rtol=1e-10, atol=1e-10)


# The 3-D table (PATHS_3D): a case per path, with pads, dilations, groups and flips on top.
THREE_D_CASES = [
    # (path, x shape, w shape, stride, lo, hi, dilation, input dilation, groups)
    ("flat_shift_3d", (2, 5, 6, 7, 6), (2, 3, 2, 3, 6), (1, 1, 1), (1, 0, 2), (0, 1, 1),
     (1, 2, 1), (1, 1, 1), 1),
    ("flat_shift_3d", (1, 4, 5, 5, 5), (3, 1, 3, 1, 5), (1, 1, 1), (0, 1, 0), (0, 1, 0),
     (1, 1, 1), (1, 1, 1), 1),
    ("flat_gemm_3d", (2, 5, 6, 7, 4), (6, 3, 3, 3, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1),
     (1, 1, 1), (1, 1, 1), 2),
    ("flat_gemm_3d", (2, 6, 5, 7, 3), (5, 2, 3, 2, 3), (1, 1, 1), (0, 2, 1), (1, 0, 1),
     (2, 1, 2), (1, 1, 1), 1),
    ("depth_taps", (1, 7, 5, 6, 3), (4, 2, 3, 1, 3), (2, 1, 2), (0, 1, 0), (1, 1, 2),
     (2, 1, 1), (1, 1, 1), 1),
    ("depth_taps", (2, 4, 4, 5, 2), (2, 2, 2, 2, 2), (1, 1, 1), (1, 0, 0), (0, 0, 0),
     (1, 1, 1), (1, 2, 2), 1),
    ("depth_taps", (2, 5, 6, 6, 20), (24, 3, 3, 3, 20), (1, 1, 1), (1, 1, 1), (1, 1, 1),
     (1, 1, 1), (1, 1, 1), 1),                    # more than _FLAT_GEMM_MAX channels each way
]


def test_three_d_cases_cover_every_path():
    assert {case[0] for case in THREE_D_CASES} == {p.name for p in P3.PATHS_3D}


@pytest.mark.parametrize("case", THREE_D_CASES)
@pytest.mark.parametrize("flip", [False, True])
def test_three_d_calls_take_their_path_and_equal_the_definition(case, flip):
    """Each 3-D path is the first that applies on its case, and ``conv`` (through the table)
    computes the definition's numbers, flipped kernels included."""
    path, xs, ws, s, lo, hi, d, di, g = case
    taken = P3.first_3d(P3.Volume.of(xs, ws, s, lo, hi, d, di, g))
    assert taken is not None and taken.name == path
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = nb.conv(x, w, s, lo, hi, d, di, g, flip)
    wd = w[:, ::-1, ::-1, ::-1] if flip else w
    y_def = nb.conv_definition(x, wd, s, lo, hi, d, di, g)
    assert y.shape == y_def.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, y_def, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(taken.run(x, wd, P3.Volume.of(xs, ws, s, lo, hi, d, di, g)),
                               y_def, rtol=1e-10, atol=1e-10)


def test_three_d_weight_gradient_shapes_use_the_definition():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 4, 2))
    w = np.random.default_rng(1).standard_normal((3, 3, 3, 3, 2))      # larger than the output
    assert P.lifted(x, w, (1,) * 3, (0,) * 3, (0,) * 3, (1,) * 3, (1,) * 3, 1) is None
    assert P.lifted(x, w[:, :1], (1,) * 3, (0,) * 3, (0,) * 3, (1,) * 3, (2, 1, 1), 1) is None


# -- arguments, layouts and errors ----------------------------------------------------------

def test_shapes_and_layouts(backend):
    c1 = nn.Conv1d(4, 6, 5, padding="same")
    assert c1.weight.shape == (6, 4, 5) and c1.kernel_size == (5,)
    assert c1(lucid.random.randn(2, 4, 11)).shape == (2, 6, 11)
    assert c1(lucid.random.randn(4, 11)).shape == (6, 11)
    c1l = nn.Conv1d(4, 6, 3, stride=2, data_format="channels_last")
    assert c1l(lucid.random.randn(2, 11, 4)).shape == (2, 5, 6)
    c3 = nn.Conv3d(2, 4, (1, 3, 3), padding=(0, 1, 1), groups=2)
    assert c3.weight.shape == (4, 1, 1, 3, 3)
    assert c3(lucid.random.randn(1, 2, 3, 5, 6)).shape == (1, 4, 3, 5, 6)
    assert c3(lucid.random.randn(2, 3, 5, 6)).shape == (4, 3, 5, 6)
    up = nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1)
    assert up(lucid.random.randn(1, 4, 5)).shape == (1, 2, 10)
    assert up(lucid.random.randn(1, 4, 5), output_size=(9,)).shape == (1, 2, 9)
    up3 = nn.ConvTranspose3d(2, 2, 2, stride=2)
    assert up3(lucid.random.randn(1, 2, 2, 3, 2)).shape == (1, 2, 4, 6, 4)


def test_per_side_padding_and_modes_one_d(numpy_backend):
    x = lucid.tensor(np.arange(6.0).reshape(1, 1, 6))
    conv = nn.Conv1d(1, 1, 3, padding=((2, 1),), padding_mode="reflect", bias=False)
    with lucid.no_grad():
        conv.weight.copy_(lucid.tensor([[[0.0, 0.0, 1.0]]]))
    # reflect by (2, 1): [2, 1, 0, 1, 2, 3, 4, 5, 4]; the last tap of each window
    np.testing.assert_allclose(conv(x).numpy()[0, 0], [0, 1, 2, 3, 4, 5, 4])
    assert conv.geometry.lo == (2,) and conv.geometry.hi == (1,)
    assert "padding=((2, 1),)" in repr(conv)


@pytest.mark.parametrize("cls,kwargs,exc,pattern", [
    (nn.Conv1d, {"padding": (1, 1)}, ValueError,
     r"padding must have length 1, 1 ints or \(\(lo, hi\),\), got 2 values"),
    (nn.Conv1d, {"kernel_size": (3, 3)}, ValueError,
     r"kernel_size must be an int or a 1-tuple \(length 1\), got 2 values"),
    (nn.Conv1d, {"stride": (1, 2)}, ValueError, r"stride must be an int or a 1-tuple"),
    (nn.Conv3d, {"kernel_size": (3, 3)}, ValueError,
     r"kernel_size must be an int or a triple \(length 3\), got 2 values"),
    (nn.Conv3d, {"dilation": (1, 0, 1)}, ValueError, r"dilation must be positive"),
    (nn.Conv3d, {"padding": ((1, 1), (1, 1))}, ValueError, r"padding must have length 3"),
    (nn.Conv3d, {"input_dilation": (2, 1)}, ValueError, r"input_dilation must be .* triple"),
    (nn.Conv3d, {"padding": "same", "stride": 2}, ValueError, "padding='same' needs stride 1"),
    (nn.Conv1d, {"groups": 3}, ValueError, "in_channels=2 must be divisible by groups=3"),
    (nn.ConvTranspose1d, {"padding": "same"}, ValueError,
     "ConvTranspose1d does not take padding='same'"),
    (nn.ConvTranspose3d, {"output_padding": (1, 0, 0)}, ValueError,
     r"output_padding \(1, 0, 0\) must be smaller than stride"),
    (nn.ConvTranspose3d, {"padding_mode": "reflect"}, ValueError,
     "ConvTranspose3d supports only padding_mode='zeros'"),
    (nn.Conv1d, {"dtype": "int32"}, TypeError, "floating"),
])
def test_bad_arguments_raise_before_any_parameter(monkeypatch, cls, kwargs, exc, pattern):
    import lucid.nn.layers.conv as L

    def no_parameter(*a, **k):
        raise AssertionError("a parameter was allocated before the arguments were checked")

    monkeypatch.setattr(L, "Parameter", no_parameter)
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": 3}
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        cls(**args)


def test_call_errors_name_the_rank_layout(numpy_backend):
    with pytest.raises(ValueError, match=r"expected a 2-D or 3-D input \(N, C, L\) or \(C, L\), "
                                         r"got shape \(1, 2, 3, 4\)"):
        nn.Conv1d(2, 2, 3)(lucid.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"\(N, D, H, W, C\) or \(D, H, W, C\)"):
        nn.Conv3d(2, 2, 3, data_format="channels_last")(lucid.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"weight must be 3-D \(out, in/groups, k\)"):
        F.conv1d(lucid.zeros(1, 2, 5), lucid.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"weight must be 5-D"):
        F.conv3d(lucid.zeros(1, 2, 5, 5, 5), lucid.zeros(2, 2, 3, 3))


@pytest.mark.parametrize("fn,x,w", [
    (F.conv1d, (1, 2, 5), (3, 2, 3)), (F.conv2d, (1, 2, 5, 5), (3, 2, 3, 3)),
    (F.conv3d, (1, 2, 4, 4, 4), (3, 2, 3, 3, 3)),
    (F.conv_transpose1d, (1, 2, 5), (2, 3, 3)), (F.conv_transpose2d, (1, 2, 4, 4), (2, 3, 3, 3)),
    (F.conv_transpose3d, (1, 2, 3, 3, 3), (2, 3, 2, 2, 2)),
])
def test_mixed_float_dtypes_raise_naming_both(numpy_backend, fn, x, w):
    """PyTorch's rule: a float64 weight is not cast down to a float32 input (nor the reverse)."""
    with pytest.raises(TypeError, match="input float32 and weight float64"):
        fn(lucid.zeros(*x), lucid.zeros(*w, dtype="float64"))
    with pytest.raises(TypeError, match="input float64 and weight float32"):
        fn(lucid.zeros(*x, dtype="float64"), lucid.zeros(*w))


def test_layer_with_mismatched_input_dtype_raises(numpy_backend):
    conv = nn.Conv3d(2, 2, 1, dtype="float64")
    with pytest.raises(TypeError, match="input float32 and weight float64"):
        conv(lucid.zeros(1, 2, 2, 2, 2))


def test_weight_mask_init_and_reset_every_rank(backend):
    mask = np.zeros((4, 2, 3))
    mask[..., 1] = 1.0
    c = nn.Conv1d(2, 4, 3, weight_mask=mask, bias_init=lucid.nn.init.zeros_)
    x = lucid.random.randn(1, 2, 6)
    ref = F.conv1d(x, c.weight * lucid.tensor(mask), c.bias)
    np.testing.assert_allclose(c(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(c.bias.numpy(), 0.0)
    c3 = nn.Conv3d(2, 4, 3, weight_init=lucid.nn.init.ones_)
    np.testing.assert_array_equal(c3.weight.numpy(), 1.0)
    bound = 1 / np.sqrt(2 * 27)
    c3b = nn.Conv3d(2, 4, 3)
    assert np.abs(c3b.weight.numpy()).max() <= bound


def test_mlx_conv_path_exports(mlx_only, tmp_path):
    """The MLX conv of every rank, with its forward and both gradients (the patches GEMM path
    included), goes through ``mx.export_function``: no ``mx.contiguous`` (whose primitive MLX
    0.32 cannot serialize) on the traced path."""
    import mlx.core as mx

    rng = np.random.default_rng(0)
    for rank, groups in ((1, 1), (2, 1), (2, 2), (3, 1), (3, 2)):
        size = (6,) * rank if rank < 3 else (3, 4, 4)
        x = mx.array(rng.standard_normal((2, 2) + size).astype(np.float32))
        w = mx.array(rng.standard_normal((4, 2 // groups) + (3,) * rank).astype(np.float32))
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]

        def fn(x, w, conv=conv, groups=groups):
            be = lucid.backends.load("mlx")
            lx = lucid.Tensor._wrap(x, be, requires_grad=True)
            lw = lucid.Tensor._wrap(w, be, requires_grad=True)
            y = conv(lx, lw, None, 1, 1, 1, groups)
            (y * y).sum().backward()
            return y.data, lx.grad.data, lw.grad.data

        path = str(tmp_path / f"conv{rank}_{groups}.mlxfn")
        mx.export_function(path, fn, x, w)
        got = mx.import_function(path)(x, w)
        for a, b in zip(got, fn(x, w)):
            np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-5)


def test_same_padding_of_every_rank(numpy_backend):
    """TF/Keras 'SAME' with a stride: ceil(size / stride) outputs in 1-D and 3-D too."""
    pads = nn.utils.same_padding((9,), 4, 2, rank=1)
    assert pads == ((1, 2),)
    assert nn.Conv1d(1, 1, 4, stride=2, padding=pads)(lucid.zeros(1, 1, 9)).shape == (1, 1, 5)
    pads3 = nn.utils.same_padding((5, 6, 7), 3, 2, rank=3)
    y = nn.Conv3d(1, 1, 3, stride=2, padding=pads3)(lucid.zeros(1, 1, 5, 6, 7))
    assert y.shape == (1, 1, 3, 3, 4)
    with pytest.raises(ValueError, match=r"input_size must be an int or a triple"):
        nn.utils.same_padding((5, 6), 3, rank=3)


@pytest.mark.parametrize("case", [c for c in THREE_D_CASES if c[0] != "depth_taps"])
def test_three_d_flat_paths_with_forced_blocks_equal_the_definition(case, monkeypatch):
    """Small column blocks: several blocks per volume (flat_gemm_3d on both cases,
    flat_shift_3d on the second), each block's reach read past it."""
    from lucid.backends import numpy_conv_flat as flat
    monkeypatch.setattr(flat, "_COL_BLOCK", 64)
    path, xs, ws, s, lo, hi, d, di, g = case
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    vol = P3.Volume.of(xs, ws, s, lo, hi, d, di, g)
    taken = P3.first_3d(vol)
    assert taken is not None and taken.name == path
    y = taken.run(x, w, vol)
    np.testing.assert_allclose(y, nb.conv_definition(x, w, s, lo, hi, d, di, g), rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("case", [c for c in THREE_D_CASES if c[0] != "depth_taps"])
def test_three_d_flat_paths_take_an_empty_batch(case):
    path, xs, ws, s, lo, hi, d, di, g = case
    xs = (0,) + xs[1:]
    vol = P3.Volume.of(xs, ws, s, lo, hi, d, di, g)
    taken = P3.first_3d(vol)
    assert taken is not None and taken.name == path
    x, w = np.zeros(xs), np.ones(ws)
    assert taken.run(x, w, vol).shape == nb.conv_definition(x, w, s, lo, hi, d, di, g).shape

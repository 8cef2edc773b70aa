"""conv2d on a seeded grid of random configurations, against a float64 direct-definition
reference (forward and all three gradients), float64 finite differences, and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from conv_reference import conv2d_ref
from helpers import check_grad

import lucid
import lucid.nn.functional as F
from lucid.nn.conv_args import resolve_padding

try:
    import torch  # one thread: set once for the session in conftest.py
except ImportError:  # the oracle is optional
    torch = None

N_CONFIGS = 300


def _config(rng):
    groups = int(rng.choice([1, 1, 2, 3, 0]))          # 0 -> depthwise
    cin = int(rng.integers(1, 4)) * (groups or 1)
    if groups == 0:
        groups = cin = int(rng.integers(2, 5))
        cout = cin * int(rng.integers(1, 3))
    else:
        cout = groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 4, 2))
    form = rng.choice(["int", "pair", "sides", "same", "valid", "Same"])
    if form in ("same", "Same"):
        stride = (1, 1)
        padding = str(form)
    elif form == "int":
        padding = int(rng.integers(0, 3))
    elif form == "pair":
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
    elif form == "sides":
        padding = tuple(tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(2))
    else:
        padding = "valid"
    need = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = int(rng.integers(need[0], need[0] + 5))
    w = int(rng.integers(need[1], need[1] + 5))
    if h == w:
        w += 1                                            # H != W catches axis mix-ups
    return {"n": int(rng.integers(1, 3)), "cin": cin, "cout": cout, "groups": groups,
            "k": (kh, kw), "stride": stride, "dilation": dilation, "padding": padding,
            "hw": (h, w), "bias": bool(rng.integers(0, 2))}


def _arrays(cfg, rng):
    x = rng.standard_normal((cfg["n"], cfg["cin"]) + cfg["hw"])
    w = rng.standard_normal((cfg["cout"], cfg["cin"] // cfg["groups"]) + cfg["k"])
    b = rng.standard_normal(cfg["cout"]) if cfg["bias"] else None
    return x, w, b


def _lucid(cfg, x, w, b, gy, dtype):
    xt = lucid.tensor(x, dtype=dtype, requires_grad=True)
    wt = lucid.tensor(w, dtype=dtype, requires_grad=True)
    bt = lucid.tensor(b, dtype=dtype, requires_grad=True) if b is not None else None
    y = F.conv2d(xt, wt, bt, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    y.backward(lucid.tensor(gy, dtype=dtype))
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()


def _configs():
    rng = np.random.default_rng(2024)
    return [_config(rng) for _ in range(N_CONFIGS)]


def test_grid_against_direct_definition(backend):
    rng = np.random.default_rng(1)
    dtype = "float64" if backend == "numpy" else "float32"
    tol = {"rtol": 1e-9, "atol": 1e-9} if dtype == "float64" else {"rtol": 2e-4, "atol": 2e-4}
    for i, cfg in enumerate(_configs()):
        x, w, b = _arrays(cfg, rng)
        lo, hi = resolve_padding(cfg["padding"], cfg["k"], cfg["dilation"], cfg["stride"])
        y_ref = conv2d_ref(x, w, b, cfg["stride"], lo, hi, cfg["dilation"], cfg["groups"])
        gy = rng.standard_normal(y_ref.shape)
        y_ref, dx_ref, dw_ref, db_ref = conv2d_ref(x, w, b, cfg["stride"], lo, hi,
                                                   cfg["dilation"], cfg["groups"], gy)
        y, dx, dw, db = _lucid(cfg, x, w, b, gy, dtype)
        msg = f"config {i}: {cfg}"
        np.testing.assert_allclose(y, y_ref, err_msg="forward " + msg, **tol)
        np.testing.assert_allclose(dx, dx_ref, err_msg="input grad " + msg, **tol)
        np.testing.assert_allclose(dw, dw_ref, err_msg="weight grad " + msg, **tol)
        if b is not None:
            np.testing.assert_allclose(db, db_ref, err_msg="bias grad " + msg, **tol)


@pytest.mark.parametrize("i", range(0, N_CONFIGS, 25))
def test_grid_finite_differences(i):
    cfg = dict(_configs()[i])
    cfg["n"], cfg["hw"] = 1, tuple(min(s, 7) for s in cfg["hw"])
    need = [d * (k - 1) + 1 for d, k in zip(cfg["dilation"], cfg["k"])]
    cfg["hw"] = tuple(max(s, n) for s, n in zip(cfg["hw"], need))
    x, w, b = _arrays(cfg, np.random.default_rng(i))
    fn = lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, cfg["stride"], cfg["padding"],
                                   cfg["dilation"], cfg["groups"])
    check_grad(fn, [x, w] + ([b] if b is not None else []), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")
def test_grid_against_torch(backend):
    rng = np.random.default_rng(3)
    for i, cfg in enumerate(_configs()):
        x, w, b = _arrays(cfg, rng)
        lo, hi = resolve_padding(cfg["padding"], cfg["k"], cfg["dilation"], cfg["stride"])
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if b is not None else None
        txp = torch.nn.functional.pad(tx, (lo[1], hi[1], lo[0], hi[0]))
        ty = torch.nn.functional.conv2d(txp, tw, tb, cfg["stride"], 0, cfg["dilation"],
                                        cfg["groups"])
        gy = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(gy))
        y, dx, dw, db = _lucid(cfg, x, w, b, gy, "float32")
        msg = f"config {i}: {cfg}"
        tol = {"rtol": 2e-4, "atol": 2e-4}
        np.testing.assert_allclose(y, ty.detach().numpy(), err_msg=msg, **tol)
        np.testing.assert_allclose(dx, tx.grad.numpy(), err_msg=msg, **tol)
        np.testing.assert_allclose(dw, tw.grad.numpy(), err_msg=msg, **tol)
        if b is not None:
            np.testing.assert_allclose(db, tb.grad.numpy(), err_msg=msg, **tol)


@pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")
def test_transposed_grid_against_torch(backend):
    rng = np.random.default_rng(4)
    for i in range(150):
        g = int(rng.choice([1, 2, 3]))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(min(v, (kk - 1) * dd // 2)) for v, kk, dd in zip(rng.integers(0, 3, 2), k, d))
        op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
        x = rng.standard_normal((2, cin, int(rng.integers(1, 7)), int(rng.integers(1, 7))))
        w = rng.standard_normal((cin, cout // g) + k)
        b = rng.standard_normal(cout)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g, d)
        gy = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(gy))
        lx, lw, lb = (lucid.tensor(a, requires_grad=True) for a in (x, w, b))
        ly = F.conv_transpose2d(lx, lw, lb, s, p, op, g, d)
        ly.backward(lucid.tensor(gy))
        msg = f"case {i}: g={g} k={k} s={s} d={d} p={p} op={op} x={x.shape}"
        for a, t in ((ly, ty), (lx.grad, tx.grad), (lw.grad, tw.grad), (lb.grad, tb.grad)):
            np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=2e-4, atol=2e-4,
                                       err_msg=msg)


@pytest.mark.parametrize("output_padding,stride,padding", [((0, 0), (1, 1), (0, 0)),
                                                          ((1, 0), (2, 3), (1, 0)),
                                                          ((1, 2), (2, 3), (0, 1))])
def test_transposed_finite_differences(output_padding, stride, padding):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2)), \
        rng.standard_normal(3)
    check_grad(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding),
               [x, w, b])

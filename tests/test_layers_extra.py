"""SiLU, Softplus, Hardtanh, LogSoftmax, channel dropout (by its distribution), Unflatten,
ZeroPad2d, ConstantPad2d: torch values and gradients on both backends, FD on NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_grad, run

import lucid
import lucid.nn.functional as F
from lucid import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

R = np.random.default_rng(5)
X = R.standard_normal((3, 4)) * 3
X[0, 0], X[0, 1] = 30.0, -30.0                  # softplus's threshold branch, both sides
X4 = R.standard_normal((2, 3, 4, 5))

ACTS = [
    ("silu", F.silu, TF.silu, X),
    ("softplus", F.softplus, TF.softplus, X),
    ("softplus-beta", lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0), X),
    ("softplus-neg-beta", lambda x: F.softplus(x, -0.5), lambda x: TF.softplus(x, -0.5), X),
    ("hardtanh", F.hardtanh, TF.hardtanh, X * 0.3 + 0.013),
    ("hardtanh-range", lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0),
     X * 0.3 + 0.013),
    ("log_softmax", lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0), X),
]
MODULES = [
    (lambda M: M.SiLU(), X), (lambda M: M.Softplus(beta=0.7, threshold=3.0), X),
    (lambda M: M.Hardtanh(-2.0, 2.5), X), (lambda M: M.LogSoftmax(dim=1), X),
    (lambda M: M.ZeroPad2d(2), X4), (lambda M: M.ZeroPad2d((1, 0, 2, 1)), X4),
    (lambda M: M.ConstantPad2d((0, 3, 1, 1), 1.5), X4),
    (lambda M: M.ConstantPad2d((-1, 2, 0, -2), 0.5), X4),         # negative pads crop
    (lambda M: M.ConstantPad2d(1, -1.0), X4[0]),                   # unbatched (C, H, W)
    (lambda M: M.Unflatten(1, (2, 2)), X), (lambda M: M.Unflatten(-1, (5, -1)), X4),
    (lambda M: M.Unflatten(0, (1, 3, 1)), X),
]


@pytest.mark.parametrize("name,fn,tfn,x", ACTS, ids=[a[0] for a in ACTS])
def test_activation_grad_matches_finite_differences(name, fn, tfn, x):
    check_grad(fn, [x], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,fn,tfn,x", ACTS, ids=[a[0] for a in ACTS])
def test_activation_matches_torch(backend, name, fn, tfn, x):
    seed = R.standard_normal(x.shape)
    out, (g,) = run(fn, [x], backend, seed_grad=seed)
    t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ref = tfn(t)
    ref.backward(torch.tensor(seed, dtype=torch.float32))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make,x", MODULES)
def test_modules_match_torch(backend, make, x):
    ours, theirs = make(nn), make(torch.nn)
    seed = R.standard_normal(theirs(torch.tensor(x)).shape)
    out, (g,) = run(ours, [x], backend, seed_grad=seed)
    t = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ref = theirs(t)
    ref.backward(torch.tensor(seed, dtype=torch.float32))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert repr(ours).split("(")[0] == type(theirs).__name__


def test_softplus_large_input_has_finite_gradient(backend):
    x = lucid.tensor([100.0, -100.0, 1000.0], requires_grad=True)
    F.softplus(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 1.0], atol=1e-30)


# -- channel dropout, by its distribution --------------------------------------------------------

@pytest.mark.parametrize("fn,shape,lead", [
    (F.dropout1d, (40, 25, 6), 2), (F.dropout1d, (200, 6), 1),
    (F.dropout2d, (20, 50, 3, 2), 2), (F.dropout2d, (40, 25, 6), 2),   # 3-D: (N, C, L)
    (F.dropout3d, (20, 50, 2, 2, 2), 2), (F.dropout3d, (200, 2, 3, 1), 1),
])
@pytest.mark.parametrize("p", [0.2, 0.6])
def test_channel_dropout_distribution(backend, fn, shape, lead, p):
    lucid.random.seed(11)
    x = lucid.tensor(R.uniform(1.0, 2.0, shape))
    y = fn(x, p).numpy()
    kept = y != 0
    chans = kept.reshape(shape[:lead] + (-1,))
    assert (chans.all(-1) | ~chans.any(-1)).all(), "a channel was partly dropped"
    np.testing.assert_allclose(y[kept], x.numpy()[kept] / (1 - p), rtol=1e-6)
    n = chans.shape[0] * (chans.shape[1] if lead == 2 else 1)
    dropped = int((~chans.any(-1)).sum())
    sd = np.sqrt(n * p * (1 - p))
    assert abs(dropped - n * p) < 4 * sd, (dropped, n * p)
    lucid.random.seed(11)
    np.testing.assert_array_equal(fn(x, p).numpy(), y)             # seeded


def test_channel_dropout_modes_and_layers(backend):
    x = lucid.ones(2, 3, 4, 4)
    assert F.dropout2d(x, 0.5, training=False) is x
    assert F.dropout2d(x, 0.0) is x
    assert (F.dropout2d(x, 1.0).numpy() == 0).all()
    layer = nn.Dropout2d(0.5)
    assert repr(layer) == "Dropout2d(p=0.5)"
    layer.eval()
    assert layer(x) is x
    layer.train()
    g = lucid.tensor(np.ones((2, 3, 4, 4)), requires_grad=True)
    lucid.random.seed(1)
    y = nn.Dropout1d(0.5)(g.reshape(2, 3, 16))
    y.sum().backward()
    np.testing.assert_array_equal(g.grad.numpy().reshape(2, 3, 16), y.numpy())


@pytest.mark.parametrize("call,err,match", [
    (lambda: F.dropout1d(lucid.ones(2, 3, 4, 5)), ValueError, "3-D"),
    (lambda: F.dropout2d(lucid.ones(2, 3)), ValueError, "4-D"),
    (lambda: F.dropout3d(lucid.ones(2, 3, 4)), ValueError, "5-D"),
    (lambda: nn.Dropout3d(1.5), ValueError, "probability"),
    (lambda: nn.Unflatten(1, (3, 0)), ValueError, "unflattened_size"),
    (lambda: nn.Unflatten(1, (3, 3))(lucid.ones(2, 8)), ValueError, "multiply"),
    (lambda: nn.Unflatten(2, (1, 2))(lucid.ones(2, 2)), IndexError, "range"),
    (lambda: nn.ZeroPad2d((1, 2)), ValueError, "padding"),
    (lambda: nn.ZeroPad2d(1)(lucid.ones(2, 2)), ValueError, "expects"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, "min_val"),
    (lambda: nn.Softplus(beta=0), ValueError, "beta"),
])
def test_checks(call, err, match):
    with pytest.raises(err, match=match):
        call()

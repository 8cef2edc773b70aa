"""Layers and functional ops: float64 finite differences, parity, and PyTorch where importable."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_grad, check_parity

import lucid
import lucid.nn.functional as F
from lucid import nn

try:
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")
rng = np.random.default_rng(0)
X = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1 - 6.05    # distinct values: no ties
TARGET = np.array([2, 0, 1, 2])


def idx(v):
    return lucid.tensor(v, dtype="int64")


FNS = [
    ("max_pool", lambda x: F.max_pool2d(x, 2), [X]),
    ("max_pool_blocks_crop", lambda x: F.max_pool2d(x, (2, 3)), [X]),
    ("max_pool_blocks_3d", lambda x: F.max_pool2d(x[0], 3), [X]),
    ("max_pool_stride_pad_dil", lambda x: F.max_pool2d(x, 3, 2, 1, 2), [X]),
    ("max_pool_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [X]),
    ("avg_pool", lambda x: F.avg_pool2d(x, 2), [X]),
    ("avg_pool_blocks_3d", lambda x: F.avg_pool2d(x[0], (3, 2)), [X]),
    ("avg_pool_pad_ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [X]),
    ("avg_pool_exclude_pad", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [X]),
    ("adaptive_avg", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [X]),
    ("adaptive_avg_1", lambda x: F.adaptive_avg_pool2d(x, 1), [X]),
    ("linear", lambda x, w, b: F.linear(x, w, b),
     [rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)]),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), [X]),
    ("gelu", lambda x: F.gelu(x), [rng.standard_normal((3, 4))]),
    ("elu", lambda x: F.elu(x, 0.7), [X]),
    ("gelu_tanh", lambda x: F.gelu(x, "tanh"), [rng.standard_normal((3, 4))]),
    ("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
     [rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)]),
    ("batch_norm_train_plain", lambda x: F.batch_norm(x, None, None, training=True),
     [rng.standard_normal((3, 2, 3))]),
    ("batch_norm_train_weight_only", lambda x, w: F.batch_norm(x, None, None, w, None, True),
     [rng.standard_normal((5, 2)), rng.standard_normal(2)]),
    ("batch_norm_eval", lambda x, w, b: F.batch_norm(
        x, lucid.tensor([0.3, -0.2, 1.0], dtype=x.dtype), lucid.tensor([1.5, 0.5, 2.0],
                                                                        dtype=x.dtype), w, b),
     [rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, idx(TARGET)), [rng.standard_normal((4, 3))]),
    ("cross_entropy_smooth_sum", lambda x: F.cross_entropy(x, idx(TARGET), "sum", 0.2),
     [rng.standard_normal((4, 3))]),
    ("mse", lambda x, y: F.mse_loss(x, y),
     [rng.standard_normal((3, 2)), rng.standard_normal((3, 2))]),
    ("bce_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y),
     [rng.standard_normal((3, 2)) * 3, rng.uniform(0, 1, (3, 2))]),
]


@pytest.mark.parametrize("name,fn,inputs", FNS, ids=[f[0] for f in FNS])
def test_gradients(name, fn, inputs):
    check_grad(fn, inputs)


@pytest.mark.parametrize("name,fn,inputs", FNS, ids=[f[0] for f in FNS])
def test_parity(name, fn, inputs):
    check_parity(fn, inputs)


TORCH = [
    (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
     lambda x: TF.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2)),
    (lambda x: F.max_pool2d(x, (3, 2)), lambda x: TF.max_pool2d(x, (3, 2))),
    (lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 1), 2),
     lambda x: TF.max_pool2d(x, (2, 3), (1, 2), (1, 1), 2)),
    (lambda x: F.avg_pool2d(x, 3, 2, 1, True, True),
     lambda x: TF.avg_pool2d(x, 3, 2, 1, True, True)),
    (lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
     lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False)),
    (lambda x: F.adaptive_avg_pool2d(x, (3, 4)), lambda x: TF.adaptive_avg_pool2d(x, (3, 4))),
    (lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    (lambda x: F.cross_entropy(x.reshape(-1, 6)[:4], idx([0, 5, 3, 3]), label_smoothing=0.1),
     lambda x: TF.cross_entropy(x.reshape(-1, 6)[:4], torch.tensor([0, 5, 3, 3]),
                                label_smoothing=0.1)),
]


@needs_torch
@pytest.mark.parametrize("i", range(len(TORCH)))
def test_against_torch(backend, i):
    ours, theirs = TORCH[i]
    x = lucid.tensor(X, requires_grad=True)
    y = ours(x)
    g = np.random.default_rng(i).standard_normal(y.shape)
    y.backward(lucid.tensor(g))
    tx = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    ty = theirs(tx)
    ty.backward(torch.tensor(g, dtype=torch.float32))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)


@needs_torch
def test_max_pool_ties_give_one_gradient_like_torch(backend):
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    lx = lucid.tensor(x, requires_grad=True)
    F.max_pool2d(lx, 2).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(tx, 2).sum().backward()
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())
    assert lx.grad.numpy().sum() == 4


@needs_torch
@pytest.mark.parametrize("args", [(2,), (3, 2, 1)], ids=["blocks", "taps"])
def test_max_pool_nan_wins_its_window_like_torch(backend, args):
    """A NaN is its window's maximum and takes the window's gradient; other windows keep theirs
    (both pooling paths: non-overlapping blocks and stacked taps)."""
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6) % 7
    x[0, 0, 1, 0] = np.nan
    lx = lucid.tensor(x, requires_grad=True)
    ly = F.max_pool2d(lx, *args)
    ly.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.max_pool2d(tx, *args)
    ty.sum().backward()
    np.testing.assert_array_equal(ly.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())
    assert lx.grad.numpy()[0, 0, 1, 0] >= 1


@needs_torch
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_module_against_torch(backend, training):
    bn, tbn = nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    with lucid.no_grad():
        bn.weight.copy_(lucid.tensor([1.0, 2.0, 0.5]))
    for _ in range(2):                                   # build up running statistics
        xb = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
        bn(lucid.tensor(xb)), tbn(torch.tensor(xb, dtype=torch.float32))
    bn.train(training), tbn.train(training)
    x = lucid.tensor(X, requires_grad=True)
    tx = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    y, ty = bn(x), tbn(tx)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-4)


def test_dropout_is_seeded_and_scaled(backend):
    d = nn.Dropout(0.5)
    lucid.random.seed(3)
    a = d(lucid.ones(1000)).numpy()
    lucid.random.seed(3)
    b = d(lucid.ones(1000)).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 2.0} and 400 < (a == 0).sum() < 600
    d.eval()
    np.testing.assert_array_equal(d(lucid.ones(5)).numpy(), np.ones(5))


def test_layer_shapes_and_reprs(backend):
    x = lucid.random.randn(2, 3, 8, 8)
    assert nn.MaxPool2D(2)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(3, 1, 1)(x).shape == (2, 3, 8, 8)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert nn.Flatten()(x).shape == (2, 192)
    assert nn.Identity()(x) is x
    assert nn.Softmax(1)(x).shape == x.shape
    for m in (nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.GELU(), nn.LeakyReLU(0.1), nn.ELU()):
        assert m(x).shape == x.shape
    assert nn.Linear(3, 4)(lucid.random.randn(5, 3)).shape == (5, 4)
    assert repr(nn.Linear(3, 4)) == "Linear(in_features=3, out_features=4, bias=True)"


@pytest.mark.parametrize("bad,pattern", [
    (lambda: nn.CrossEntropyLoss(reduction="avg"), "reduction must be"),
    (lambda: nn.Dropout(1.5), r"dropout probability must be in \[0, 1\]"),
    (lambda: nn.BatchNorm2d(0), "num_features must be a positive int"),
    (lambda: F.cross_entropy(lucid.zeros(2, 3), lucid.tensor([0.0, 1.0])), "integer targets"),
    (lambda: F.max_pool2d(lucid.zeros(1, 1, 4, 4), 2, padding=2), "at most half"),
    (lambda: nn.Linear(3, 4)(lucid.zeros(2, 5)), "input features 5"),
])
def test_errors(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        bad()

"""Rank-matched layers (issue 23): BatchNorm1d ((N, C) and (N, C, L)), BatchNorm3d, MaxPool1d/3d,
AvgPool1d/3d, AdaptiveAvgPool1d/3d and their F. functions, forward and input gradient against
torch on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid import nn

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None

pytestmark = pytest.mark.skipif(torch is None, reason="torch oracle not installed")


def _compare(lucid_fn, torch_fn, shape, seed=0, tol=1e-5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    lx = lucid.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = lucid_fn(lx), torch_fn(tx)
    g = rng.standard_normal(ty.shape).astype(np.float32)
    y.backward(lucid.tensor(g))
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


POOLS = [
    # (rank, kind, kwargs, input shape)
    (1, "max", {"kernel_size": 3}, (2, 3, 10)),
    (1, "max", {"kernel_size": 4, "stride": 2, "padding": 1, "dilation": 2}, (2, 2, 11)),
    (1, "max", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (3, 10)),
    (3, "max", {"kernel_size": 2}, (1, 2, 4, 5, 4)),
    (3, "max", {"kernel_size": (1, 3, 2), "stride": (1, 2, 1), "padding": (0, 1, 1)},
     (2, 3, 4, 5)),
    (1, "avg", {"kernel_size": 3, "stride": 2}, (2, 3, 9)),
    (1, "avg", {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True,
                "count_include_pad": False}, (2, 2, 11)),
    (3, "avg", {"kernel_size": 2, "padding": 1, "count_include_pad": True}, (1, 2, 3, 4, 3)),
    (3, "avg", {"kernel_size": (2, 3, 2), "stride": 2, "ceil_mode": True}, (1, 1, 5, 6, 5)),
    (1, "adaptive", {"output_size": 4}, (2, 3, 10)),
    (1, "adaptive", {"output_size": 5}, (2, 3, 10)),
    (3, "adaptive", {"output_size": (2, 3, None)}, (1, 2, 5, 7, 3)),
    (3, "adaptive", {"output_size": 2}, (2, 4, 4, 4)),
]


@pytest.mark.parametrize("rank,kind,kwargs,shape", POOLS)
def test_pooling_against_torch(backend, rank, kind, kwargs, shape):
    tfn = {"max": f"max_pool{rank}d", "avg": f"avg_pool{rank}d",
           "adaptive": f"adaptive_avg_pool{rank}d"}[kind]
    _compare(lambda x: getattr(F, tfn)(x, **kwargs),
             lambda x: getattr(torch.nn.functional, tfn)(x, **kwargs), shape)
    cls = {"max": f"MaxPool{rank}d", "avg": f"AvgPool{rank}d",
           "adaptive": f"AdaptiveAvgPool{rank}d"}[kind]
    _compare(getattr(nn, cls)(**kwargs), getattr(torch.nn, cls)(**kwargs), shape)


def test_pooling_errors_name_the_layout(numpy_backend):
    with pytest.raises(ValueError, match=r"1-D pooling expects \(N, C, L\) or \(C, L\) input"):
        F.max_pool1d(lucid.zeros(1, 2, 3, 4), 2)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a triple"):
        nn.MaxPool3d((2, 2))(lucid.zeros(1, 2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"adaptive pooling expects \(N, C, D, H, W\)"):
        F.adaptive_avg_pool3d(lucid.zeros(2, 2), 1)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 7)),
                                       ("BatchNorm3d", (2, 3, 3, 4, 2))])
def test_batch_norm_ranks_against_torch(backend, cls, shape):
    layer = getattr(nn, cls)(3, momentum=0.2)
    ref = getattr(torch.nn, cls)(3, momentum=0.2)
    with lucid.no_grad():
        layer.weight.copy_(lucid.tensor([0.5, 1.5, -1.0]))
        layer.bias.copy_(lucid.tensor([0.1, -0.2, 0.3]))
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        ref.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    _compare(layer, ref, shape, tol=1e-4)
    np.testing.assert_allclose(layer.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(layer.running_var.numpy(), ref.running_var.numpy(), rtol=1e-5)
    layer.eval()
    ref.eval()
    _compare(layer, ref, shape, seed=1, tol=1e-4)


def test_batch_norm_wrong_rank_names_the_layouts(numpy_backend):
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) expects \(N, 3\) or \(N, 3, L\)"):
        nn.BatchNorm1d(3)(lucid.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm3d\(3\) expects \(N, 3, D, H, W\)"):
        nn.BatchNorm3d(3)(lucid.zeros(2, 3, 4, 4))

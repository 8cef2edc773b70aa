"""copy.deepcopy and pickle of Tensors, Parameters and Modules (with parametrizations and
constrained layers), on both backends: values, backend and dtype kept; the copy independent and
trainable."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import lucid
from lucid import nn, optim
from lucid.nn import constraints as K
from lucid.nn.utils import parametrize as P


def _roundtrip(obj, how):
    return copy.deepcopy(obj) if how == "deepcopy" else pickle.loads(pickle.dumps(obj))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_tensor_roundtrip(backend, how, dtype):
    t = lucid.tensor(np.arange(6).reshape(2, 3) % 2, dtype=dtype)
    u = _roundtrip(t, how)
    assert type(u) is lucid.Tensor and u.backend == backend and u.dtype == t.dtype
    np.testing.assert_array_equal(u.numpy(), t.numpy())


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_parameter_roundtrip_keeps_requires_grad_and_deepcopy_keeps_grad(backend, how):
    p = nn.Parameter(lucid.tensor([[1.0, 2.0]]))
    (p * p).sum().backward()
    q = _roundtrip(p, how)
    assert isinstance(q, nn.Parameter) and q.requires_grad and q.is_leaf
    if how == "deepcopy":
        np.testing.assert_allclose(q.grad.numpy(), [[2.0, 4.0]])
        assert q.grad is not p.grad
    else:
        assert q.grad is None                  # as PyTorch: pickle drops the gradient
    with lucid.no_grad():
        q.copy_(lucid.tensor([[5.0, 5.0]]))
    np.testing.assert_allclose(p.numpy(), [[1.0, 2.0]])    # independent


def test_non_leaf_refused(backend):
    t = lucid.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        copy.deepcopy(t)
    with pytest.raises(RuntimeError, match="leaf"):
        pickle.dumps(t)


def _model():
    m = nn.Sequential(nn.Conv2d(2, 3, 3),
                      nn.ConstrainedConv2d(3, 3, 3, constraint="unit_l2", enforce="post_step"),
                      nn.ReLU(), nn.Flatten(), nn.Linear(3 * 2 * 2, 2))
    P.register_parametrization(m[4], "weight", K.MaxNorm(0.5, axis=1))
    P.register_parametrization(m[0], "bias", K.NonNeg(), enforce="pre_forward")
    return m


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_module_roundtrip_is_independent_and_trains(backend, how):
    lucid.random.seed(3)
    m = _model()
    x = lucid.random.randn(2, 2, 6, 6)
    m(x).sum().backward()
    before = m(x).numpy()
    c = _roundtrip(m, how)
    assert c[0].weight is not m[0].weight
    np.testing.assert_allclose(c(x).numpy(), before, rtol=1e-6)
    assert list(c.state_dict()) == list(m.state_dict())
    assert P.is_parametrized(c[4], "weight") and P.is_parametrized(c[1], "weight")
    opt = optim.SGD(c.parameters(), lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        c(x).sum().backward()
        opt.step()
    assert not np.allclose(c(x).numpy(), before)
    np.testing.assert_allclose(m(x).numpy(), before, rtol=1e-6)      # the original untouched
    # the copy's post_step constraint is projected after its optimizer's step, as the original's
    w = c[1].weight.numpy()
    np.testing.assert_allclose(np.sqrt((w ** 2).sum(axis=(2, 3))), 1.0, rtol=1e-5)
    # and its forward parametrization still applies
    assert np.linalg.norm(c[4].weight.numpy(), axis=1).max() <= 0.5 + 1e-6


def test_optimizer_state_dict_pickles(backend):
    p = nn.Parameter(lucid.tensor([1.0, 2.0]))
    opt = optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    sd = pickle.loads(pickle.dumps(opt.state_dict()))
    np.testing.assert_allclose(sd["state"][0]["exp_avg"].numpy(),
                               opt.state_dict()["state"][0]["exp_avg"].numpy())

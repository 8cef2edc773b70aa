"""lucid.compile(..., shapeless=True): one trace for every batch size when lucid can prove the
graph does not depend on it; otherwise a warning naming why, and per-shape traces — the results
equal eager ones either way."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lucid
from lucid import nn, optim

SIZES = (5, 7, 3, 5)


def _x(n, shape, seed=0):
    return lucid.tensor(np.random.default_rng(seed + n).standard_normal((n, *shape))
                        .astype(np.float32))


def test_one_trace_serves_every_batch_size(mlx_only):
    lucid.random.seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    f = lucid.compile(lambda x: net(x) * 2, state=[net], shapeless=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no fallback warning
        for n in SIZES:
            x = _x(n, (4,))
            got = f(x)
            assert got.shape == (n, 3)
            np.testing.assert_allclose(got.numpy(), (net(x) * 2).numpy(), rtol=1e-5, atol=1e-6)
    assert len(f._shapeless) == 1 and not f._traces     # one (shapeless) trace in all


def _conv_net():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


def _train(compiled, shapeless=False):
    lucid.random.seed(1)
    model = _conv_net()
    opt = optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = lucid.compile(step, state=[model, opt], shapeless=shapeless)
    losses = []
    for n in SIZES:
        y = lucid.tensor(np.random.default_rng(n).integers(0, 3, n))
        losses.append(step(_x(n, (1, 6, 6)), y).item())
    return losses, model, step


def test_a_graph_that_depends_on_the_batch_falls_back_per_shape(mlx_only):
    # Flatten reshapes to (batch, -1) and the loss's mean divides by the batch: an MLX
    # shapeless replay of this graph would be wrong, so lucid must refuse it
    eager, m_e, _ = _train(False)
    with pytest.warns(RuntimeWarning, match="shapeless=True.*once per input shape") as rec:
        comp, m_c, step = _train(True, shapeless=True)
    assert len(rec) == 1                                 # said once
    np.testing.assert_allclose(comp, eager, rtol=1e-5, atol=1e-6)
    for (k, a), (_, b) in zip(m_e.state_dict().items(), m_c.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6, err_msg=k)
    assert not step._shapeless and step._refused


def test_shapeless_on_numpy_runs_eagerly(backend):
    eager, *_ = _train(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        comp, *_ = _train(True, shapeless=True)
    np.testing.assert_allclose(comp, eager, rtol=1e-5, atol=1e-6)


def test_shapeless_must_be_a_bool():
    with pytest.raises(TypeError, match="shapeless must be True or False"):
        lucid.compile(lambda x: x, shapeless="yes")

"""Gradient clipping against PyTorch (clipped gradients and the returned norm), lazily and
inside lucid.compile."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
from lucid import nn, optim
from lucid.nn.utils import clip_grad_norm_, clip_grad_value_

torch = pytest.importorskip("torch")

G = [np.array([[0.5, -2.0, 1.0], [3.0, 0.1, -0.4]]), np.array([-1.5, 0.25])]


def _params(grads, lib):
    out = []
    for g in grads:
        if lib == "torch":
            p = torch.zeros(g.shape, requires_grad=True)
            p.grad = torch.tensor(g, dtype=torch.float32)
        else:
            p = nn.Parameter(lucid.zeros(*g.shape))
            p.grad = lucid.tensor(g)
        out.append(p)
    return out


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_torch(backend, max_norm, norm_type):
    ours, theirs = _params(G, "lucid"), _params(G, "torch")
    n = clip_grad_norm_(ours, max_norm, norm_type)
    tn = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert n.shape == () and n.backend == backend
    np.testing.assert_allclose(n.numpy(), tn.numpy(), rtol=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_single_tensor_and_no_grads(backend):
    p = _params(G[:1], "lucid")[0]
    n = clip_grad_norm_(p, 1.0)
    np.testing.assert_allclose(n.numpy(), np.linalg.norm(G[0]), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(p.grad.numpy()), 1.0, rtol=1e-5)
    assert clip_grad_norm_([nn.Parameter(lucid.zeros(2))], 1.0).item() == 0.0


@pytest.mark.parametrize("clip", [0.3, 2.0])
def test_clip_grad_value_matches_torch(backend, clip):
    ours, theirs = _params(G, "lucid"), _params(G, "torch")
    assert clip_grad_value_(ours, clip) is None
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy())


def test_errors(backend):
    ps = _params([np.array([1.0, np.inf])], "lucid")
    before = ps[0].grad.numpy()
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(ps[0].grad.numpy(), before)        # nothing scaled
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(ps, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(ps, -1.0)


def _step_fn(model, opt, error_if_nonfinite=False):
    def step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        norm = clip_grad_norm_(model.parameters(), 0.05, error_if_nonfinite=error_if_nonfinite)
        clip_grad_value_(model.parameters(), 0.02)
        opt.step()
        return loss, norm
    return step


def test_inside_compile_matches_eager(backend):
    rng = np.random.default_rng(0)
    x, y = lucid.tensor(rng.standard_normal((8, 3))), lucid.tensor(rng.standard_normal((8, 2)))
    results = []
    for compiled in (False, True):
        lucid.random.seed(1)
        model = nn.Linear(3, 2)
        opt = optim.SGD(model.parameters(), lr=0.5)
        step = _step_fn(model, opt)
        if compiled:
            step = lucid.compile(step, state=[model, opt])
        norms = [step(x, y)[1].numpy() for _ in range(3)]
        results.append((norms, model.weight.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)


def test_error_if_nonfinite_refused_inside_compile(backend):
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.5)
    step = lucid.compile(_step_fn(model, opt, error_if_nonfinite=True), state=[model, opt])
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        step(lucid.ones(4, 3), lucid.ones(4, 2))

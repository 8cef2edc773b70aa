"""Autograd engine: graph shapes, accumulation, grad modes and misuse."""

from __future__ import annotations

import numpy as np
import pytest

import lucid


def test_diamond_graph(backend):
    x = lucid.tensor([2.0, 3.0], requires_grad=True)
    a = x * 3
    b = a.exp() * 0 + a * a      # two paths from a
    c = a * 2
    (b + c).sum().backward()
    # d/dx [9x^2 + 6x] = 18x + 6
    np.testing.assert_allclose(x.grad.numpy(), [42.0, 60.0])


def test_leaf_used_twice(backend):
    x = lucid.tensor(3.0, requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad.item(), 6.0)


def test_shared_subexpression_visits_each_node_once(backend):
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    y = x * 2
    orig = type(y._ctx).backward

    def counting(self, g):
        calls.append(1)
        return orig(self, g)

    type(y._ctx).backward = counting
    try:
        (y + y + y).sum().backward()
    finally:
        type(y._ctx).backward = orig
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    assert len(calls) == 1


def test_deep_chain_has_no_recursion_limit(numpy_backend):
    x = lucid.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001 ** 10_000, rtol=1e-3)


def test_gradients_accumulate_across_backward_calls(backend):
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_non_scalar_backward_is_seeded_with_ones(backend):
    x = lucid.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_backward_with_explicit_gradient(backend):
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(lucid.tensor([1.0, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0])
    with pytest.raises(ValueError, match="shape"):
        (x * 3).backward(lucid.tensor([1.0]))


def test_second_backward_through_freed_graph_raises(backend):
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward(backend):
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_on_tensor_without_grad_raises(backend):
    with pytest.raises(RuntimeError, match="does not require grad"):
        lucid.tensor([1.0]).sum().backward()


def test_no_grad_and_detach(backend):
    x = lucid.tensor([1.0], requires_grad=True)
    with lucid.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = (x * 2).detach()
    assert not z.requires_grad and z.is_leaf

    @lucid.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert (x * 2).requires_grad


def test_requires_grad_propagation(backend):
    a = lucid.tensor([1.0], requires_grad=True)
    b = lucid.tensor([2.0])
    assert (a + b).requires_grad
    assert not (b + b).requires_grad
    assert not (a + b).is_leaf and a.is_leaf
    with pytest.raises(TypeError, match="floating"):
        lucid.tensor([1, 2], requires_grad=True)


def test_intermediate_grad_only_when_retained(backend):
    x = lucid.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    z = x * 3
    (y * z).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 6.0])
    assert z.grad is None


def test_inplace_change_after_forward_keeps_backward_correct(backend):
    w = lucid.tensor([2.0], requires_grad=True)
    x = lucid.tensor([3.0], requires_grad=True)
    y = (w * x).sum()
    with lucid.no_grad():
        w.copy_(lucid.tensor([100.0]))   # the saved array is not mutated
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0])

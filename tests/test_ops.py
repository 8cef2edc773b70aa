"""Every differentiable Tensor op: float64 finite differences and cross-backend parity."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_grad, check_parity

import lucid
import lucid.nn.functional as F

ANY, POS, SPREAD = "any", "pos", "spread"


def _data(shape, kind, rng):
    if kind == POS:
        return rng.uniform(0.5, 2.0, shape)
    if kind == SPREAD:  # distinct values, far from ties and from relu/abs/clip kinks
        n = int(np.prod(shape))
        v = (rng.permutation(n) - n / 2 + 0.5) * 0.37
        return v.reshape(shape)
    return rng.standard_normal(shape)


def idx(values):
    return lucid.tensor(values, dtype="int64")


# (name, fn, [(shape, kind), ...])
OPS = [
    ("add_bcast", lambda a, b: a + b, [((2, 3), ANY), ((3,), ANY)]),
    ("add_scalar", lambda a: 2.5 + a, [((2, 3), ANY)]),
    ("sub_bcast", lambda a, b: a - b, [((2, 1, 3), ANY), ((4, 1), ANY)]),
    ("rsub", lambda a: 1.0 - a, [((3,), ANY)]),
    ("mul_bcast", lambda a, b: a * b, [((2, 3, 1), ANY), ((1, 4), ANY)]),
    ("div", lambda a, b: a / b, [((2, 3), ANY), ((2, 3), POS)]),
    ("rdiv", lambda a: 2.0 / a, [((2, 3), POS)]),
    ("pow_tensor", lambda a, b: a ** b, [((2, 3), POS), ((3,), ANY)]),
    ("pow_scalar", lambda a: a ** 3, [((2, 3), ANY)]),
    ("rpow", lambda a: 2.0 ** a, [((4,), ANY)]),
    ("neg", lambda a: -a, [((3, 2), ANY)]),
    ("exp", lambda a: a.exp(), [((3, 2), ANY)]),
    ("log", lambda a: a.log(), [((3, 2), POS)]),
    ("sqrt", lambda a: a.sqrt(), [((3, 2), POS)]),
    ("tanh", lambda a: a.tanh(), [((3, 2), ANY)]),
    ("sigmoid", lambda a: a.sigmoid(), [((3, 2), ANY)]),
    ("erf", lambda a: a.erf(), [((3, 2), ANY)]),
    ("relu", lambda a: a.relu(), [((3, 4), SPREAD)]),
    ("abs", lambda a: a.abs(), [((3, 4), SPREAD)]),
    ("clip", lambda a: a.clip(-0.5, 0.6), [((3, 4), SPREAD)]),
    ("maximum", lambda a, b: lucid.maximum(a, b), [((3, 4), SPREAD), ((4,), ANY)]),
    ("minimum", lambda a, b: lucid.minimum(a, b), [((3, 4), SPREAD), ((3, 1), ANY)]),
    ("where", lambda a, b: lucid.where(a > 0, a, b), [((3, 4), SPREAD), ((4,), ANY)]),
    ("sum_all", lambda a: a.sum(), [((2, 3, 4), ANY)]),
    ("sum_axis", lambda a: a.sum(axis=1), [((2, 3, 4), ANY)]),
    ("sum_axes_keep", lambda a: a.sum(axis=(0, 2), keepdims=True), [((2, 3, 4), ANY)]),
    ("sum_neg_axis", lambda a: a.sum(axis=-1), [((2, 3, 4), ANY)]),
    ("mean_axis", lambda a: a.mean(axis=(1, 2)), [((2, 3, 4), ANY)]),
    ("mean_keep", lambda a: a.mean(axis=0, keepdims=True), [((2, 3, 4), ANY)]),
    ("var", lambda a: a.var(axis=1), [((3, 5), ANY)]),
    ("max_all", lambda a: a.max(), [((3, 4), SPREAD)]),
    ("max_axis_keep", lambda a: a.max(axis=1, keepdims=True), [((3, 4), SPREAD)]),
    ("min_axis", lambda a: a.min(axis=0), [((3, 4), SPREAD)]),
    ("softmax", lambda a: a.softmax(axis=-1), [((3, 5), ANY)]),
    ("log_softmax", lambda a: a.log_softmax(axis=0), [((3, 5), ANY)]),
    ("reshape", lambda a: a.reshape(4, -1) * 1.5, [((2, 3, 2), ANY)]),
    ("transpose_swap", lambda a: a.transpose(0, 2), [((2, 3, 4), ANY)]),
    ("permute", lambda a: a.permute(2, 0, 1), [((2, 3, 4), ANY)]),
    ("T", lambda a: a.T, [((2, 3), ANY)]),
    ("flatten", lambda a: a.flatten(1), [((2, 3, 4), ANY)]),
    ("unsqueeze_squeeze", lambda a: a.unsqueeze(1).squeeze(), [((2, 3), ANY)]),
    ("broadcast_to", lambda a: a.broadcast_to(2, 3, 4), [((3, 1), ANY)]),
    ("getitem_slices", lambda a: a[1:, ::2], [((3, 5), ANY)]),
    ("getitem_int", lambda a: a[0, 1:], [((3, 5), ANY)]),
    ("getitem_none_ellipsis", lambda a: a[None, ..., 1], [((2, 3, 4), ANY)]),
    ("getitem_neg_step", lambda a: a[::-1, -2], [((3, 4), ANY)]),
    ("getitem_index_repeat", lambda a: a[idx([0, 2, 0, 0])], [((3, 4), ANY)]),
    ("getitem_index_mixed", lambda a: a[idx([1, 1, 0]), 1:], [((3, 4), ANY)]),
    ("getitem_index_pair", lambda a: a[idx([0, 1, 1]), idx([2, 2, 0])], [((3, 4), ANY)]),
    ("matmul_2d", lambda a, b: a @ b, [((3, 4), ANY), ((4, 2), ANY)]),
    ("matmul_batch_bcast", lambda a, b: a @ b, [((2, 1, 3, 4), ANY), ((5, 4, 2), ANY)]),
    ("matmul_vec_mat", lambda a, b: a @ b, [((4,), ANY), ((4, 2), ANY)]),
    ("matmul_mat_vec", lambda a, b: a @ b, [((3, 4), ANY), ((4,), ANY)]),
    ("concatenate", lambda a, b: lucid.concatenate([a, b, a], axis=1),
     [((2, 3), ANY), ((2, 1), ANY)]),
    ("stack", lambda a, b: lucid.stack([a, b], axis=-1), [((2, 3), ANY), ((2, 3), ANY)]),
    ("chain", lambda a, b: ((a * b).exp() + a.tanh() * b).mean(axis=0),
     [((3, 2), ANY), ((2,), ANY)]),
    ("linear", lambda x, w, b: F.linear(x, w, b), [((3, 4), ANY), ((2, 4), ANY), ((2,), ANY)]),
    ("linear_3d_nobias", lambda x, w: F.linear(x, w), [((2, 3, 4), ANY), ((5, 4), ANY)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, idx([2, 0, 1, 2])), [((4, 3), ANY)]),
    ("cross_entropy_none_smooth", lambda x: F.cross_entropy(x, idx([2, 0, 1]), "none", 0.3),
     [((3, 3), ANY)]),
    ("cross_entropy_sum_ignore", lambda x: F.cross_entropy(x, idx([2, -100, 1]), "sum",
                                                           ignore_index=-100), [((3, 4), ANY)]),
    ("cross_entropy_mean_ignore", lambda x: F.cross_entropy(x, idx([-1, 0, 3]), ignore_index=-1,
                                                            label_smoothing=0.1),
     [((3, 4), ANY)]),
    ("nll_loss", lambda x: F.nll_loss(x.log_softmax(-1), idx([1, 0, 1])), [((3, 2), ANY)]),
]
IDS = [o[0] for o in OPS]


def _inputs(spec):
    rng = np.random.default_rng(abs(hash(str(spec))) % 2**32)
    return [_data(shape, kind, rng) for shape, kind in spec]


@pytest.mark.parametrize("name,fn,spec", OPS, ids=IDS)
def test_gradient_matches_finite_differences(name, fn, spec):
    check_grad(fn, _inputs(spec))


@pytest.mark.parametrize("name,fn,spec", OPS, ids=IDS)
def test_backends_agree(name, fn, spec):
    check_parity(fn, _inputs(spec))


def test_forward_values_match_numpy(backend):
    a = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    t = lucid.tensor(a)
    np.testing.assert_allclose((t * 2 - 1).numpy(), a * 2 - 1)
    np.testing.assert_allclose(t.max(axis=1).numpy(), [3.0, 4.0])
    np.testing.assert_allclose(t.min().item(), -2.0)
    np.testing.assert_array_equal(t.argmax(axis=1).numpy(), [2, 1])
    np.testing.assert_allclose(t.var().item(), a.var(), rtol=1e-6)
    np.testing.assert_allclose(t.softmax().numpy().sum(axis=-1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal((t > 0).numpy(), a > 0)
    np.testing.assert_array_equal((t <= 0.5).numpy(), a <= 0.5)
    np.testing.assert_array_equal((t == 3).numpy(), a == 3)


def test_max_ties_share_gradient(backend):
    x = lucid.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_maximum_ties_split_gradient(backend):
    a = lucid.tensor([1.0, 2.0], requires_grad=True)
    b = lucid.tensor([1.0, 1.0], requires_grad=True)
    lucid.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 1.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 0.0])


def test_softmax_is_stable_for_large_inputs(backend):
    x = lucid.tensor([[1000.0, 0.0, -1000.0]])
    assert np.isfinite(x.log_softmax().numpy()).all()
    np.testing.assert_allclose(x.softmax().numpy(), [[1.0, 0.0, 0.0]], atol=1e-6)
    assert np.isfinite(lucid.tensor([-1000.0, 1000.0]).sigmoid().numpy()).all()


def test_pow_tensor_exponent_at_zero_base_is_finite(backend):
    a = lucid.tensor([0.0, 2.0], requires_grad=True)
    b = lucid.tensor([2.0, 3.0], requires_grad=True)
    (a ** b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 12.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 8 * np.log(2)], rtol=1e-6)


def test_setitem_without_grad(backend):
    t = lucid.zeros(2, 3)
    t[0, 1:] = 5.0
    t[1] = lucid.tensor([1.0, 2.0, 3.0])
    np.testing.assert_allclose(t.numpy(), [[0, 5, 5], [1, 2, 3]])


def test_setitem_on_grad_tensor_raises(backend):
    t = lucid.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        t[0] = 1.0
    with lucid.no_grad():
        t[0] = 1.0
    assert t.numpy()[0] == 1.0


def test_boolean_mask_index_is_rejected(backend):
    t = lucid.tensor([1.0, -1.0])
    with pytest.raises(TypeError, match="lucid.where"):
        t[t > 0]


def test_dtype_promotion_is_the_same_on_every_backend(backend):
    i = lucid.tensor([1, 2])
    f = lucid.tensor([0.5, 0.5])
    assert i.dtype == lucid.int64
    assert (i + f).dtype == lucid.float32
    assert (i * 2).dtype == lucid.int64
    assert (i * 0.5).dtype == lucid.float32
    assert (i / 2).dtype == lucid.float32
    assert (f + 1).dtype == lucid.float32

"""Constraints of every rank (issue 23): ConstrainedConv1d/3d (and 2d) with each constraint family
and enforce timing against torch autograd through the formulas; slice axes from the weight's rank
or ``axes=``; constraint objects and callables; get_config/from_config round trips."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import nn, optim
from lucid.nn import constraints as K

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the oracle is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch oracle not installed")
LAYER = {1: nn.ConstrainedConv1d, 2: nn.ConstrainedConv2d, 3: nn.ConstrainedConv3d}
TCONV = {1: "conv1d", 2: "conv2d", 3: "conv3d"} if torch is None else \
    {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
SIZE = {1: (9,), 2: (5, 4), 3: (3, 4, 3)}

FAMILIES = [
    ("none", {}), ("nonneg", {}), ("sum_to_one", {}), ("zero_mean", {}), ("nonneg_sum1", {}),
    ("unit_l2", {}), ("max_l2", {"max_l2": 0.7}), ("fixed_center", {"center_value": -1.0}),
    ("max_norm", {"max_norm": 0.6}),
    ("min_max_norm", {"max_norm": 0.9, "min_norm": 0.5, "minmax_rate": 0.7}),
    ("unit_norm", {"max_norm": 1.0, "min_norm": 1.0}),
    ("max_norm_axis0", {"max_norm": 0.8, "axis_norm": 0}),
]


def torch_kernel(w, name, kw):
    """The formulas in torch (autograd gives the reference gradient), any rank."""
    sl = tuple(range(2, w.ndim))
    s = lambda a: a.sum(dim=sl, keepdim=True)
    eps = 1e-12
    if name == "none":
        return w
    if name == "nonneg":
        return w.clamp(min=0)
    if name == "sum_to_one":
        return w / (s(w) + eps)
    if name == "zero_mean":
        return w - w.mean(dim=sl, keepdim=True)
    if name == "nonneg_sum1":
        p = w.clamp(min=0)
        return p / (s(p) + eps)
    if name == "unit_l2":
        return w / (s(w * w) + eps).sqrt()
    if name == "max_l2":
        return w * (kw["max_l2"] / (s(w * w) + eps).sqrt()).clamp(max=1.0)
    if name == "fixed_center":
        c = torch.zeros((1, 1) + tuple(w.shape[2:]), dtype=w.dtype)
        c[(0, 0) + tuple(n // 2 for n in w.shape[2:])] = 1.0
        nb = w * (1 - c)
        return nb / (s(nb) + eps) + c * kw["center_value"]
    axes = (kw["axis_norm"],) if "axis_norm" in kw else tuple(range(1, w.ndim))
    n = (w * w).sum(dim=axes, keepdim=True).sqrt()
    if name.startswith("max_norm"):
        return w * n.clamp(0, kw["max_norm"]) / (1e-7 + n)
    if name == "min_max_norm":
        r = kw["minmax_rate"]
        return w * (r * n.clamp(kw["min_norm"], kw["max_norm"]) + (1 - r) * n) / (1e-7 + n)
    return w / (1e-7 + n)                                        # unit_norm


def _layer(rank, name, kw, enforce, **extra):
    kw = dict(kw)
    if not (name.startswith("max_norm") or name in ("min_max_norm", "unit_norm")):
        kw["constraint"] = name
    return LAYER[rank](2, 3, 3, padding=1, enforce=enforce, **kw, **extra)


def _weight(rng, rank):
    # ordinary slices: positive sums (sum_to_one / fixed_center) well away from zero
    return rng.standard_normal((3, 2) + (3,) * rank) * 0.5 + 0.4


@needs_torch
@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("enforce", ["forward", "post_step", "pre_forward"])
@pytest.mark.parametrize("name,kw", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family_timing_rank_against_torch(backend, rank, enforce, name, kw):
    rng = np.random.default_rng(rank)
    layer = _layer(rank, name, kw, enforce)
    w = _weight(rng, rank)
    x = rng.standard_normal((2, 2) + SIZE[rank])
    tw = torch.tensor(w, requires_grad=True)
    tk = torch_kernel(tw, name, kw)
    kernel = tk.detach().numpy()
    ty = TCONV[rank](torch.tensor(x), tk, torch.tensor(layer.bias.numpy(), dtype=torch.float64),
                     padding=1)
    seed = rng.standard_normal(ty.shape)
    tol = {"rtol": 1e-4, "atol": 1e-5}
    with lucid.no_grad():
        layer.weight.copy_(lucid.tensor(w))
    if enforce == "post_step":
        layer.project_()                      # what the optimizer does after each step
        np.testing.assert_allclose(layer.weight.numpy(), kernel, **tol)
    y = layer(lucid.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(layer.constrained_weight().numpy(), kernel, **tol)
    if enforce == "forward":
        (ty * torch.tensor(seed)).sum().backward()
        y.backward(lucid.tensor(seed))
        np.testing.assert_allclose(layer.weight.grad.numpy(), tw.grad.numpy(), **tol)
    else:
        # in place: the stored weight is the projected kernel; a step re-projects it
        np.testing.assert_allclose(layer.weight.numpy(), kernel, **tol)
        if enforce == "post_step":
            opt = optim.SGD(layer.parameters(), lr=0.1)
            (y * lucid.tensor(seed)).sum().backward()
            stepped = layer.weight.numpy() - 0.1 * layer.weight.grad.numpy()
            opt.step()
            ref = torch_kernel(torch.tensor(stepped), name, kw).numpy()
            np.testing.assert_allclose(layer.weight.numpy(), ref, **tol)


def test_fixed_center_fixes_the_centre_voxel(numpy_backend):
    layer = nn.ConstrainedConv3d(1, 2, (3, 5, 3), constraint="fixed_center", enforce="post_step")
    k = layer.weight.numpy()
    np.testing.assert_allclose(k[:, :, 1, 2, 1], -1.0, atol=1e-6)
    np.testing.assert_allclose(k.sum(axis=(2, 3, 4)) - k[:, :, 1, 2, 1], 1.0, atol=1e-5)
    one = nn.ConstrainedConv1d(1, 2, 5, constraint="fixed_center", enforce="post_step")
    np.testing.assert_allclose(one.weight.numpy()[:, :, 2], -1.0, atol=1e-6)


@pytest.mark.parametrize("cls,kwargs,pattern", [
    (nn.ConstrainedConv3d, {"kernel_size": (3, 2, 3), "constraint": "fixed_center"},
     r"odd kernel in every dim, got kernel_size=\(3, 2, 3\)"),
    (nn.ConstrainedConv1d, {"kernel_size": 1, "constraint": "fixed_center"},
     "needs neighbours: a 1 kernel"),
    (nn.ConstrainedConv3d, {"max_norm": 1.0, "axis_norm": (1, 5)}, "axis_norm must hold axes"),
    (nn.ConstrainedConv1d, {"constraint": K.UnitL2(), "max_norm": 1.0},
     "max_norm configure a constraint given by name"),
    (nn.ConstrainedConv1d, {"constraint": K.FixedCenter(), "kernel_size": 4},
     "odd size on every slice axis"),
    (nn.ConstrainedConv1d, {"constraint": K.MaxNorm(1.0, axis=(1, 2, 3))},
     "does not fit the weight"),
    (nn.ConstrainedConv1d, {"kernel_size": (3, 3)}, r"kernel_size must be an int or a 1-tuple"),
])
def test_constrained_validation_before_any_parameter(monkeypatch, cls, kwargs, pattern):
    import lucid.nn.layers.conv as L

    def no_parameter(*a, **k):
        raise AssertionError("a parameter was allocated before the arguments were checked")

    monkeypatch.setattr(L, "Parameter", no_parameter)
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        cls(**args)


def test_axis_norm_defaults_to_every_axis_but_zero():
    assert nn.ConstrainedConv1d(2, 3, 3, max_norm=1.0).constraint.axis == (1, 2)
    assert nn.ConstrainedConv2d(2, 3, 3, max_norm=1.0).constraint.axis == (1, 2, 3)
    assert nn.ConstrainedConv3d(2, 3, 3, max_norm=1.0).constraint.axis == (1, 2, 3, 4)


def test_constraint_object_and_callable(backend):
    obj = K.SumToOne()
    layer = nn.ConstrainedConv1d(2, 3, 3, constraint=obj)
    assert layer.constraint is obj and layer.constraint_name == "sum_to_one"
    np.testing.assert_allclose(layer.constrained_weight().numpy().sum(axis=2), 1.0, atol=1e-4)

    def halve(w):
        return w * 0.5

    lay3 = nn.ConstrainedConv3d(1, 2, 3, constraint=halve, enforce="post_step")
    assert lay3.constraint_name == "halve" and "fn=halve" in repr(lay3)
    before = lay3.weight.numpy().copy()
    lay3.project_()
    np.testing.assert_allclose(lay3.weight.numpy(), before * 0.5, rtol=1e-6)
    with pytest.raises(TypeError, match="constraint must be a name, a Constraint or a callable"):
        nn.ConstrainedConv2d(1, 2, 3, constraint=3)


def test_slice_axes_default_and_explicit(numpy_backend):
    rng = np.random.default_rng(0)
    for shape in [(3, 2, 5), (3, 2, 3, 4), (2, 2, 2, 3, 3)]:
        w = rng.standard_normal(shape) + 1.0
        out = K.ZeroMean()(lucid.tensor(w)).numpy()
        np.testing.assert_allclose(out.mean(axis=tuple(range(2, len(shape)))), 0, atol=1e-6)
    lin = rng.standard_normal((4, 6))
    np.testing.assert_allclose(K.ZeroMean()(lucid.tensor(lin)).numpy().mean(), 0, atol=1e-6)
    w = rng.standard_normal((3, 2, 4, 5)) + 1.0
    out = K.SumToOne(axes=3)(lucid.tensor(w)).numpy()
    np.testing.assert_allclose(out.sum(axis=3), 1.0, atol=1e-4)
    out = K.UnitL2(axes=(1, -1))(lucid.tensor(w)).numpy()
    np.testing.assert_allclose((out ** 2).sum(axis=(1, 3)), 1.0, atol=1e-4)
    fc = K.FixedCenter(axes=(-1,))(lucid.tensor(rng.standard_normal((2, 2, 4, 5)) + 1.0))
    np.testing.assert_allclose(fc.numpy()[..., 2], -1.0, atol=1e-6)
    with pytest.raises(ValueError, match="repeated axis"):
        K.ZeroMean(axes=(2, 2))


CONFIG_CASES = [
    K.NoConstraint(), K.NonNeg(), K.ZeroMean(), K.ZeroMean(axes=3), K.SumToOne(),
    K.SumToOne(eps=0.5, axes=(2, 3)), K.NonNegSumToOne(axes=[2]), K.UnitL2(1e-6), K.MaxL2(0.7),
    K.MaxL2(0.3, axes=-1), K.FixedCenter(), K.FixedCenter(-2.0, 2.0, axes=(2, 3, 4)),
    K.MaxNorm(2.0, axis=0), K.MaxNorm(1.0), K.MinMaxNorm(0.1, 0.5, 0.5, axis=1),
    K.UnitNorm(axis=[1, 2]),
]


@pytest.mark.parametrize("c", CONFIG_CASES, ids=lambda c: repr(c))
def test_get_config_round_trips_and_keeps_axes_as_given(c):
    cfg = c.get_config()
    again = type(c).from_config(cfg)
    assert type(again) is type(c) and again.get_config() == cfg
    for key in ("axis", "axes"):
        if key in cfg:
            assert not isinstance(cfg[key], list)
    if isinstance(c, K.MaxNorm) and c.axis == (0,):
        assert cfg["axis"] == 0                                   # an int stays an int
    if isinstance(c, K.MinMaxNorm):
        assert cfg["axis"] == 1


def test_every_constraint_class_has_from_config():
    classes = {type(c) for c in CONFIG_CASES}
    assert set(K.SLICE_CONSTRAINTS.values()) | set(K.NORM_CONSTRAINTS.values()) <= classes

"""nn.ConstrainedConv2d: every family against its formula (computed here in NumPy), gradients,
invariants after projection, enforcement timings, degenerate slices, and validation."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_grad

import lucid
import lucid.nn.functional as F
from lucid import nn, optim

EPS = 1e-12


def ref_kernel(w, name, eps=EPS, max_l2=1.0, cv=-1.0, ns=1.0, max_norm=None, min_norm=None,
               rate=1.0, axes=(1, 2, 3)):
    """The seed formulas, per slice W[o, i], in float64 NumPy (ordinary slices only)."""
    w = np.asarray(w, dtype=np.float64)
    s = lambda a: a.sum(axis=(2, 3), keepdims=True)
    if name == "none":
        return w
    if name == "nonneg":
        return np.maximum(w, 0)
    if name == "sum_to_one":
        return w / (s(w) + eps)
    if name == "zero_mean":
        return w - w.mean(axis=(2, 3), keepdims=True)
    if name == "nonneg_sum1":
        p = np.maximum(w, 0)
        return p / (s(p) + eps)
    if name == "unit_l2":
        return w / np.sqrt(s(w * w) + eps)
    if name == "max_l2":
        return w * np.minimum(1, max_l2 / np.sqrt(s(w * w) + eps))
    if name == "fixed_center":
        kh, kw = w.shape[2:]
        c = np.zeros((kh, kw))
        c[kh // 2, kw // 2] = 1
        nb = w * (1 - c)
        return nb * ns / (s(nb) + eps) + c * cv
    n = np.sqrt((w * w).sum(axis=axes, keepdims=True))
    if name == "max_norm":
        return w * np.clip(n, 0, max_norm) / (1e-7 + n)
    if name == "min_max_norm":
        return w * (rate * np.clip(n, min_norm, max_norm) + (1 - rate) * n) / (1e-7 + n)
    if name == "unit_norm":
        return w / (1e-7 + n)
    raise AssertionError(name)


FAMILIES = [
    ("none", {}), ("nonneg", {}), ("sum_to_one", {}), ("zero_mean", {}), ("nonneg_sum1", {}),
    ("unit_l2", {}), ("max_l2", {"max_l2": 0.7}), ("fixed_center", {"center_value": -1.0}),
    ("max_norm", {"max_norm": 0.6}),
    ("min_max_norm", {"max_norm": 0.9, "min_norm": 0.5, "minmax_rate": 0.7}),
    ("unit_norm", {"max_norm": 1.0, "min_norm": 1.0}),
    ("max_norm_axis0", {"max_norm": 0.8, "axis_norm": 0}),
]


def _layer(name, kw, **extra):
    kw = dict(kw)
    if name.startswith("max_norm") or name in ("min_max_norm", "unit_norm"):
        return nn.ConstrainedConv2d(2, 3, 3, padding=1, **kw, **extra)
    return nn.ConstrainedConv2d(2, 3, 3, padding=1, constraint=name, **kw, **extra)


def _ref_args(name, kw):
    ref = {"max_l2": kw.get("max_l2", 1.0), "max_norm": kw.get("max_norm"),
           "min_norm": kw.get("min_norm"), "rate": kw.get("minmax_rate", 1.0)}
    if "axis_norm" in kw:
        ref["axes"] = (kw["axis_norm"],)
    return ("max_norm" if name == "max_norm_axis0" else name), ref


def _weight(rng, shape=(3, 2, 3, 3)):
    # ordinary slices: positive sums (for sum_to_one / fixed_center) well away from zero
    return rng.standard_normal(shape) * 0.5 + 0.4


@pytest.mark.parametrize("name,kw", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_forward_equals_conv_with_formula_kernel(backend, name, kw):
    rng = np.random.default_rng(0)
    layer = _layer(name, kw)
    w = _weight(rng)
    with lucid.no_grad():
        layer.weight.copy_(lucid.tensor(w))
    x = lucid.tensor(rng.standard_normal((2, 2, 6, 5)))
    fam, ref = _ref_args(name, kw)
    kernel = ref_kernel(w, fam, **ref)
    expected = F.conv2d(x, lucid.tensor(kernel), layer.bias, padding=1)
    np.testing.assert_allclose(layer(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.constrained_weight().numpy(), kernel, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_gradient_wrt_raw_weight_matches_finite_differences(name, kw):
    layer = _layer(name, kw, dtype="float64", device="numpy")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 4, 4)), _weight(rng)
    if name == "nonneg":
        w = np.where(np.abs(w) < 0.05, 0.3, w)          # keep away from the kink at 0
    check_grad(lambda x, w: F.conv2d(x, layer.constraint(w), padding=1), [x, w], rtol=1e-4,
               atol=1e-6)


def _invariants(name, k, kw):
    s = k.sum(axis=(2, 3))
    n2 = np.sqrt((k ** 2).sum(axis=(2, 3)))
    axes = (kw["axis_norm"],) if "axis_norm" in kw else (1, 2, 3)
    nf = np.sqrt((k ** 2).sum(axis=axes))
    if name == "nonneg":
        assert k.min() >= 0
    elif name == "sum_to_one":
        np.testing.assert_allclose(s, 1, atol=1e-5)
    elif name == "zero_mean":
        np.testing.assert_allclose(k.mean(axis=(2, 3)), 0, atol=1e-5)
    elif name == "nonneg_sum1":
        assert k.min() >= 0
        np.testing.assert_allclose(s, 1, atol=1e-5)
    elif name == "unit_l2":
        np.testing.assert_allclose(n2, 1, atol=1e-5)
    elif name == "max_l2":
        assert n2.max() <= kw["max_l2"] + 1e-5
    elif name == "fixed_center":
        np.testing.assert_allclose(k[:, :, 1, 1], -1.0, atol=1e-5)
        np.testing.assert_allclose(s - k[:, :, 1, 1], 1.0, atol=1e-5)
    elif name == "max_norm":
        assert nf.max() <= kw["max_norm"] + 1e-5
    elif name == "min_max_norm":
        # rate < 1 moves each norm part of the way: n' = rate*clip(n) + (1 - rate)*n
        pass
    elif name == "unit_norm":
        np.testing.assert_allclose(nf, 1, atol=1e-5)


@pytest.mark.parametrize("name,kw", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_invariants_hold_after_project(backend, name, kw):
    layer = _layer(name, kw, enforce="post_step")
    with lucid.no_grad():
        layer.weight.copy_(lucid.tensor(_weight(np.random.default_rng(2)) * 3))
    layer.project_()
    _invariants(_ref_args(name, kw)[0], layer.weight.numpy().astype(np.float64), kw)


def test_min_max_norm_band_with_full_rate(backend):
    layer = nn.ConstrainedConv2d(2, 4, 3, max_norm=1.5, min_norm=0.5, enforce="post_step")
    w = np.random.default_rng(3).standard_normal((4, 2, 3, 3))
    w[0] *= 100
    w[1] *= 1e-3
    with lucid.no_grad():
        layer.weight.copy_(lucid.tensor(w))
    n = np.sqrt((layer.project_().weight.numpy() ** 2).sum(axis=(1, 2, 3)))
    assert np.all(n >= 0.5 - 1e-4) and np.all(n <= 1.5 + 1e-4)


# -- the lucid page's five examples ----------------------------------------------------------

def test_page_example_1_nonneg_sum1(backend):
    x = lucid.random.randn(8, 3, 64, 64)
    conv = nn.ConstrainedConv2d(3, 16, kernel_size=5, padding=2, constraint="nonneg_sum1")
    assert conv(x).shape == (8, 16, 64, 64)


def test_page_example_2_zero_mean(backend):
    x = lucid.random.randn(2, 3, 128, 128)
    conv = nn.ConstrainedConv2d(3, 12, kernel_size=3, padding=1, constraint="zero_mean")
    assert conv(x).shape == (2, 12, 128, 128)


def test_page_example_3_post_step_workflow(backend):
    conv = nn.ConstrainedConv2d(16, 16, kernel_size=3, padding=1, constraint="max_l2",
                                max_l2=1.0, enforce="post_step")
    opt = optim.SGD(conv.parameters(), lr=1e-2)
    x = lucid.random.randn(4, 16, 32, 32)
    y = conv(x).mean()
    y.backward()
    opt.step()
    assert conv.project_() is conv
    opt.zero_grad()
    n = np.sqrt((conv.weight.numpy() ** 2).sum(axis=(2, 3)))
    assert n.max() <= 1.0 + 1e-5 and conv.weight.grad is None


def test_page_example_4_fixed_center(backend):
    x = lucid.random.randn(1, 1, 64, 64)
    conv = nn.ConstrainedConv2d(1, 8, kernel_size=5, padding=2, constraint="fixed_center",
                                center_value=-1.0, neighbor_sum=1.0)
    assert conv(x).shape == (1, 8, 64, 64)


def test_page_example_5_grouped_unit_l2(backend):
    x = lucid.random.randn(2, 8, 32, 32)
    conv = nn.ConstrainedConv2d(8, 8, kernel_size=3, padding=1, groups=4, constraint="unit_l2")
    assert conv(x).shape == (2, 8, 32, 32)
    n = np.sqrt((conv.constrained_weight().numpy() ** 2).sum(axis=(2, 3)))
    np.testing.assert_allclose(n, 1.0, atol=1e-5)


@pytest.mark.parametrize("enforce", ["forward", "pre_forward"])
def test_selfeeg_example_corrected(backend, enforce):
    x = lucid.random.randn(4, 1, 8, 64)
    mdl = nn.ConstrainedConv2d(1, 4, (1, 15), padding="same", max_norm=0.5, enforce=enforce)
    assert mdl.constraint.name == "max_norm"
    mdl.weight = nn.Parameter(mdl.weight * 10)
    out = mdl(x)
    assert out.shape == (4, 4, 8, 64)
    assert not np.isnan(out.numpy()).any()
    used = mdl.weight if enforce == "pre_forward" else mdl.constrained_weight()
    norms = np.sqrt((used.numpy() ** 2).sum(axis=(1, 2, 3)))
    assert np.sum(norms > 0.5 + 1e-3) == 0


# -- enforcement timings ---------------------------------------------------------------------

def _assert_sums_to_one(w):
    # float32 normalisation: the sum is 1 to rounding, which grows with the cancellation
    # Σ|W| / |ΣW| of the slice being normalised
    s = w.sum(axis=(2, 3))
    cond = np.abs(w).sum(axis=(2, 3)) / np.abs(s)
    assert np.all(np.abs(s - 1) <= 1e-5 + 2e-7 * cond), (s, cond)


def test_post_step_is_applied_by_every_optimizer_step(backend):
    lucid.random.seed(1)
    conv = nn.ConstrainedConv2d(2, 4, 3, constraint="sum_to_one", enforce="post_step")
    _assert_sums_to_one(conv.weight.numpy())                                     # at init
    opt = optim.Adam(conv.parameters(), lr=0.1)
    param = conv.weight
    for _ in range(3):
        opt.zero_grad()
        before = conv.weight.numpy().copy()
        (conv(lucid.random.randn(2, 2, 6, 6)) ** 2).mean().backward()
        opt.step()
        assert conv.weight is param
        assert not np.array_equal(conv.weight.numpy(), before)
        _assert_sums_to_one(conv.weight.numpy())


def test_post_step_follows_a_newly_assigned_parameter(backend):
    conv = nn.ConstrainedConv2d(1, 2, 3, constraint="nonneg", enforce="post_step")
    conv.weight = nn.Parameter(lucid.tensor(-np.ones((2, 1, 3, 3))))
    assert conv.weight.numpy().min() == -1.0            # assignment stores it as given
    opt = optim.SGD(conv.parameters(), lr=0.0)
    conv(lucid.random.randn(1, 1, 4, 4)).sum().backward()
    opt.step()
    assert conv.weight.numpy().min() >= 0.0


def test_post_step_forward_uses_raw_weight(backend):
    conv = nn.ConstrainedConv2d(1, 1, 3, constraint="nonneg", enforce="post_step", bias=False)
    with lucid.no_grad():
        conv.weight.copy_(lucid.tensor(-np.ones((1, 1, 3, 3))))
    x = lucid.ones(1, 1, 3, 3)
    np.testing.assert_allclose(conv(x).numpy().ravel(), [-9.0])
    nn.utils.project_constraints(nn.Sequential(conv))
    np.testing.assert_allclose(conv(x).numpy().ravel(), [0.0])


def test_pre_forward_projects_in_place_without_grad(backend):
    conv = nn.ConstrainedConv2d(1, 2, 3, constraint="unit_l2", enforce="pre_forward")
    with lucid.no_grad():
        conv.weight.copy_(conv.weight * 5)
    y = conv(lucid.random.randn(1, 1, 5, 5))
    np.testing.assert_allclose(np.sqrt((conv.weight.numpy() ** 2).sum(axis=(2, 3))), 1, atol=1e-5)
    y.sum().backward()
    assert conv.weight.grad is not None and conv.weight.is_leaf


def test_forward_enforcement_keeps_raw_weight(backend):
    conv = nn.ConstrainedConv2d(1, 2, 3, constraint="nonneg_sum1")
    raw = conv.weight.numpy().copy()
    conv(lucid.random.randn(1, 1, 4, 4)).sum().backward()
    np.testing.assert_array_equal(conv.weight.numpy(), raw)


def test_weight_mask_then_constraint(backend):
    mask = np.ones((1, 1, 3, 3), dtype=np.float32)
    mask[..., 0, 0] = 0
    conv = nn.ConstrainedConv2d(1, 2, 3, constraint="nonneg", weight_mask=mask)
    k = conv.constrained_weight().numpy()
    assert np.all(k[..., 0, 0] == 0) and k.min() >= 0


# -- numerical safety ------------------------------------------------------------------------

def _degenerate_weights():
    z = np.zeros((2, 2, 3, 3))
    tiny = np.full((2, 2, 3, 3), 1e-30)
    tiny[:, :, ::2] *= -1
    alt = np.ones((2, 2, 3, 3))
    alt.reshape(2, 2, 9)[..., 1::2] = -1
    alt.reshape(2, 2, 9)[..., 0] = 0                     # 4 of +1 and 4 of -1: sum 0
    cancel = np.ones((2, 2, 3, 3))
    cancel[..., 1, 1] = -8.0                             # sums to 0; neighbours sum to 8
    nbzero = np.zeros((2, 2, 3, 3))
    nbzero[..., 0, :] = 1
    nbzero[..., 2, :] = -1                               # neighbour sum 0, centre 0
    return {"zeros": z, "tiny": tiny, "alternating": alt, "cancel": cancel, "nb_zero": nbzero}


def ruled_kernel(w, name, eps=EPS, cv=-1.0, ns=1.0, **ref):
    """The seed formula with the documented degenerate-slice rule: a sum family's slice whose
    denominator |S + eps| is at most 1e-5 of the magnitude M it normalises (or M = 0) becomes
    the uniform kernel that satisfies the constraint."""
    w = np.asarray(w, dtype=np.float64)
    s = lambda a: a.sum(axis=(2, 3), keepdims=True)
    k = w.shape[2] * w.shape[3]
    if name in ("sum_to_one", "nonneg_sum1"):
        p = w if name == "sum_to_one" else np.maximum(w, 0)
        m, d = s(np.abs(p)), s(p) + eps
        bad = (m == 0) | (np.abs(d) <= 1e-5 * m)
        return np.where(bad, 1.0 / k, p / np.where(bad, 1.0, d))
    if name == "fixed_center":
        c = np.zeros(w.shape[2:])
        c[w.shape[2] // 2, w.shape[3] // 2] = 1
        nb = w * (1 - c)
        m, d = s(np.abs(nb)), s(nb) + eps
        bad = (m == 0) | (np.abs(d) <= 1e-5 * m)
        return np.where(bad, (1 - c) * ns / (k - 1), nb * ns / np.where(bad, 1.0, d)) + c * cv
    return ref_kernel(w, name, eps=eps, cv=cv, ns=ns, **ref)


@pytest.mark.parametrize("name,kw", FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("case", list(_degenerate_weights()))
def test_degenerate_slices_stay_finite(backend, name, kw, case):
    w = _degenerate_weights()[case]
    norm_family = name.startswith("max_norm") or name in ("min_max_norm", "unit_norm")
    layer = nn.ConstrainedConv2d(2, 2, 3, padding=1, **kw,
                                 **({} if norm_family else {"constraint": name}))
    wt = lucid.tensor(w, requires_grad=True)
    k = layer.constraint(wt)
    kn = k.numpy()
    assert np.isfinite(kn).all()
    (k * k).sum().backward()
    assert np.isfinite(wt.grad.numpy()).all()
    fam, _ = _ref_args(name, kw)
    if fam in ("sum_to_one", "nonneg_sum1", "fixed_center"):
        np.testing.assert_allclose(kn, ruled_kernel(w, fam), rtol=1e-5, atol=1e-6)


def test_degenerate_rule_is_documented_uniform(backend):
    k = nn.ConstrainedConv2d(1, 1, 3, constraint="sum_to_one").constraint(lucid.zeros(1, 1, 3, 3))
    np.testing.assert_allclose(k.numpy(), np.full((1, 1, 3, 3), 1 / 9), rtol=1e-6)
    fc = nn.ConstrainedConv2d(1, 1, 3, constraint="fixed_center").constraint(
        lucid.zeros(1, 1, 3, 3))
    expected = np.full((3, 3), 1 / 8)
    expected[1, 1] = -1
    np.testing.assert_allclose(fc.numpy()[0, 0], expected, rtol=1e-6)


SUM_FAMILIES = ["sum_to_one", "nonneg_sum1", "fixed_center", "unit_l2", "max_l2"]


@pytest.mark.parametrize("eps", [1e-12, 1e-3, 0.25, 1.0])
@pytest.mark.parametrize("name", SUM_FAMILIES)
def test_seed_formula_holds_for_ordinary_slices_whatever_eps(backend, name, eps):
    # Random slices of either sign and every scale: each is ordinary (its denominator is far
    # from 0 beside its magnitude) and must get the formula exactly, eps included.
    rng = np.random.default_rng(int(eps * 1000) + len(name))
    w = rng.standard_normal((4, 3, 3, 3)) * rng.uniform(0.1, 3.0, (4, 3, 1, 1)) + 0.5
    kw = {"max_l2": 0.7} if name == "max_l2" else {}
    layer = nn.ConstrainedConv2d(3, 4, 3, constraint=name, eps=eps, **kw)
    k = layer.constraint(lucid.tensor(w)).numpy()
    expected = ref_kernel(w, name, eps=eps, max_l2=0.7)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(k, ruled_kernel(w, name, eps=eps, max_l2=0.7), rtol=1e-4,
                               atol=1e-6)
    ordinary = np.allclose(ruled_kernel(w, name, eps=eps, max_l2=0.7), expected)
    assert ordinary, "the random slices were meant to be ordinary"
    np.testing.assert_allclose(k, expected, rtol=1e-4, atol=1e-6)


def test_large_eps_keeps_the_seed_formula():
    # The reported case: eps=0.25 used to declare every slice degenerate (1/9 everywhere).
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    k = nn.ConstrainedConv2d(1, 1, 3, constraint="sum_to_one", eps=0.25).constraint(
        lucid.tensor(w, dtype="float64", device="numpy"))
    np.testing.assert_allclose(k.numpy(), w / (45.0 + 0.25), rtol=1e-12)


@pytest.mark.parametrize("eps", [1e-12, 1e-3, 0.25, 1.0])
@pytest.mark.parametrize("name", SUM_FAMILIES)
def test_degenerate_slices_finite_whatever_eps(backend, name, eps):
    w = np.stack([_degenerate_weights()[c][0] for c in ("zeros", "alternating", "nb_zero")])
    w[2, 0] = -eps / 8                     # neighbours (and all taps) cancel eps exactly
    w[2, 0, 1, 1] = 0.0
    kw = {"max_l2": 0.7} if name == "max_l2" else {}
    layer = nn.ConstrainedConv2d(2, 3, 3, constraint=name, eps=eps, **kw)
    wt = lucid.tensor(w, requires_grad=True)
    k = layer.constraint(wt)
    (k * k).sum().backward()
    assert np.isfinite(k.numpy()).all() and np.isfinite(wt.grad.numpy()).all()
    np.testing.assert_allclose(k.numpy(), ruled_kernel(w, name, eps=eps, max_l2=0.7),
                               rtol=1e-4, atol=1e-6)


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,pattern", [
    ({"constraint": "positive"}, "unknown constraint 'positive'; choose one of none, nonneg"),
    ({"enforce": "always"}, "unknown enforce 'always'; choose one of forward, post_step"),
    ({"constraint": "max_l2"}, "needs max_l2"),
    ({"constraint": "max_l2", "max_l2": 0}, "max_l2 must be > 0, got 0"),
    ({"constraint": "max_l2", "max_l2": -1.0}, "max_l2 must be > 0"),
    ({"constraint": "fixed_center", "kernel_size": 4}, r"odd kernel .* kernel_size=\(4, 4\)"),
    ({"constraint": "fixed_center", "kernel_size": (3, 2)}, "odd kernel"),
    ({"constraint": "fixed_center", "kernel_size": 1}, "1x1 kernel"),
    ({"max_norm": 0.5, "min_norm": 1.0}, "min_norm=1.0 must not exceed max_norm=0.5"),
    ({"max_norm": 0.0}, "max_norm must be > 0, got 0"),
    ({"max_norm": 1.0, "min_norm": -1.0}, "min_norm must be > 0"),
    ({"max_norm": 2.0, "min_norm": 1.0, "minmax_rate": 0.0}, r"minmax_rate must be in \(0, 1\]"),
    ({"max_norm": 2.0, "min_norm": 1.0, "minmax_rate": 1.5}, r"minmax_rate must be in \(0, 1\]"),
    ({"max_norm": 1.0, "axis_norm": (1, 4)}, "axis_norm must hold axes"),
    ({"max_norm": 1.0, "axis_norm": (1, 1)}, "repeated axis"),
    ({"constraint": "unit_l2", "max_norm": 1.0}, "max_norm/min_norm apply to the norm constraints"),
    ({"constraint": "nonneg", "max_l2": 1.0}, "max_l2=1.0 applies only to constraint='max_l2'"),
    ({"min_norm": 0.5}, "min_norm=0.5 needs max_norm"),
    ({"eps": -1.0}, "eps must be a number >= 0"),
    ({"in_channels": 3, "groups": 2}, "in_channels=3 must be divisible by groups=2"),
])
def test_validation(kwargs, pattern):
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        nn.ConstrainedConv2d(**args)


def test_extra_repr_shows_constraint_and_parameters():
    r = repr(nn.ConstrainedConv2d(1, 8, 5, padding=2, constraint="fixed_center",
                                  enforce="post_step"))
    assert "constraint='fixed_center'" in r and "enforce='post_step'" in r
    assert "center_value=-1.0" in r and "neighbor_sum=1.0" in r
    r = repr(nn.ConstrainedConv2d(1, 8, 5, max_norm=0.5, min_norm=0.1, minmax_rate=0.5))
    assert "constraint='min_max_norm'" in r and "rate=0.5" in r and "max_l2" not in r

"""Constraints on any parameter (lucid.nn.utils.parametrize), forward hooks, ConstrainedLinear."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numeric_grads

import lucid
import lucid.nn.functional as F
from lucid import nn, optim
from lucid.nn import constraints as K
from lucid.nn.utils import parametrize as P

try:
    import torch
except ImportError:
    torch = None


def _layer(kind, **kw):
    if kind == "linear":
        return nn.Linear(4, 3, **kw)
    if kind == "conv":
        return nn.Conv2d(2, 3, 3, padding=1, **kw)
    return nn.ConvTranspose2d(2, 3, 3, padding=1, **kw)


def _apply(kind, layer, x, w):
    if kind == "linear":
        return F.linear(x, w, layer.bias)
    if kind == "conv":
        return F.conv2d(x, w, layer.bias, padding=1)
    return F.conv_transpose2d(x, w, layer.bias, padding=1)


def _input(kind, rng, dtype="float32"):
    shape = (2, 4) if kind == "linear" else (2, 2, 5, 5)
    return lucid.tensor(rng.standard_normal(shape), dtype=dtype)


def _families(kind):
    axis = 1 if kind == "linear" else (1, 2, 3)
    fams = [K.NonNeg(), K.SumToOne(), K.ZeroMean(), K.NonNegSumToOne(), K.UnitL2(),
            K.MaxL2(0.5), K.MaxNorm(0.7, axis=axis), K.MinMaxNorm(0.3, 0.8, 0.6, axis=axis),
            K.UnitNorm(axis=axis)]
    if kind != "linear":
        fams.append(K.FixedCenter(-1.0, 1.0))
    return fams


CASES = [(k, c) for k in ("linear", "conv", "transpose") for c in _families(k)]
IDS = [f"{k}-{type(c).__name__}" for k, c in CASES]


@pytest.mark.parametrize("kind,constraint", CASES, ids=IDS)
def test_forward_timing_reads_the_constrained_tensor(backend, kind, constraint):
    rng = np.random.default_rng(0)
    layer = _layer(kind)
    raw = layer.weight
    P.register_parametrization(layer, "weight", constraint)
    assert layer.parametrizations.weight.original is raw
    assert any(p is raw for p in layer.parameters()) and "weight" not in layer._parameters
    assert list(layer.state_dict()) == ["bias", "parametrizations.weight.original"]  # PyTorch's
    expected = constraint(raw)
    np.testing.assert_allclose(layer.weight.numpy(), expected.numpy(), rtol=1e-6)
    x = _input(kind, rng)
    np.testing.assert_allclose(layer(x).numpy(), _apply(kind, layer, x, expected).numpy(),
                               rtol=1e-5, atol=1e-6)
    layer(x).sum().backward()
    assert raw.grad is not None and raw.grad.shape == raw.shape


@pytest.mark.parametrize("kind,constraint", [c for c in CASES if not isinstance(
    c[1], K.NonNeg)], ids=[i for i, c in zip(IDS, CASES) if not isinstance(c[1], K.NonNeg)])
def test_forward_timing_gradient_reaches_the_raw_parameter(kind, constraint):
    # backward through the parametrized module, against float64 central differences of the
    # same module in the raw parameter's values
    layer = _layer(kind, dtype="float64", device="numpy")
    P.register_parametrization(layer, "weight", constraint)
    raw = layer.parametrizations.weight.original
    rng = np.random.default_rng(1)
    w0 = raw.numpy() + 0.3
    x = _input(kind, rng, "float64")
    seed = rng.standard_normal(layer(x).shape)

    def f(w):
        with lucid.no_grad():
            raw._set_data(w.data)
        return layer(x)

    numeric = numeric_grads(f, [w0], seed)[0]
    with lucid.no_grad():
        raw._set_data(lucid.tensor(w0, dtype="float64").data)
    layer(x).backward(lucid.tensor(seed, dtype="float64"))
    np.testing.assert_allclose(raw.grad.numpy(), numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "AdamW"])
@pytest.mark.parametrize("kind", ["linear", "conv", "transpose"])
def test_post_step_holds_after_every_step(backend, kind, opt_name):
    layer = _layer(kind)
    axis = 1 if kind == "linear" else (1, 2, 3)
    P.register_parametrization(layer, "weight", K.MaxNorm(0.2, axis=axis), enforce="post_step")
    w = layer.weight
    assert "weight" in layer._parameters                 # stays the plain parameter
    opt = getattr(optim, opt_name)(layer.parameters(), lr=0.5)
    rng = np.random.default_rng(2)
    for _ in range(3):
        opt.zero_grad()
        (layer(_input(kind, rng)) ** 2).sum().backward()
        opt.step()
        assert layer.weight is w
        norms = np.sqrt((w.numpy() ** 2).sum(axis=axis))
        assert norms.max() <= 0.2 + 1e-5 and norms.max() > 0.19


def test_post_step_projects_at_registration_and_follows_a_new_parameter(backend):
    layer = nn.Linear(3, 2)
    with lucid.no_grad():
        layer.weight.copy_(-lucid.ones(2, 3))
    P.register_parametrization(layer, "weight", K.NonNeg(), enforce="post_step")
    assert layer.weight.numpy().min() == 0.0
    layer.weight = nn.Parameter(-lucid.ones(2, 3) * 2)   # stored as given ...
    opt = optim.SGD(layer.parameters(), lr=0.0)
    layer(lucid.ones(1, 3)).sum().backward()
    opt.step()
    assert layer.weight.numpy().min() == 0.0              # ... and projected after the step


def test_pre_forward_projects_before_each_forward(backend):
    layer = nn.Linear(3, 2)
    P.register_parametrization(layer, "weight", K.UnitNorm(axis=1), enforce="pre_forward")
    with lucid.no_grad():
        layer.weight.copy_(layer.weight * 7)
    layer(lucid.ones(1, 3))
    np.testing.assert_allclose(np.sqrt((layer.weight.numpy() ** 2).sum(axis=1)), 1, atol=1e-5)


@pytest.mark.parametrize("enforce", ["forward", "post_step", "pre_forward"])
def test_stacked_constraints_apply_in_order(backend, enforce):
    layer = nn.Linear(4, 3)
    first, second = K.NonNeg(), K.SumToOne()
    P.register_parametrization(layer, "weight", first, enforce=enforce)
    P.register_parametrization(layer, "weight", lambda w: w * 2.0, enforce=enforce)
    P.register_parametrization(layer, "weight", second, enforce=enforce)
    layer(lucid.ones(1, 4))
    w = layer.weight.numpy()
    assert w.min() >= 0 and abs(w.sum() - 1.0) < 1e-5         # SumToOne ran last
    if enforce == "forward":
        assert len(layer.parametrizations.weight._modules) == 3
        assert "Lambda" in repr(layer)


@pytest.mark.parametrize("enforce", ["forward", "post_step", "pre_forward"])
@pytest.mark.parametrize("leave", [True, False])
def test_remove_parametrizations(backend, enforce, leave):
    layer = nn.Linear(3, 2)
    raw = layer.weight.numpy().copy()
    P.register_parametrization(layer, "weight", K.MaxL2(0.1), enforce=enforce)
    constrained = layer.weight.numpy().copy()
    assert P.is_parametrized(layer) and P.is_parametrized(layer, "weight")
    assert not P.is_parametrized(layer, "bias")
    P.remove_parametrizations(layer, "weight", leave_parametrized=leave)
    assert not P.is_parametrized(layer)
    assert isinstance(layer.weight, nn.Parameter) and "parametrizations" not in layer._modules
    expected = constrained if leave or enforce != "forward" else raw
    np.testing.assert_allclose(layer.weight.numpy(), expected, rtol=1e-6)
    with lucid.no_grad():
        layer.weight.copy_(layer.weight * 100)
    layer(lucid.ones(1, 3))                                  # no longer projected
    assert np.sqrt((layer.weight.numpy() ** 2).sum()) > 0.2


def test_bad_arguments_change_nothing(backend):
    layer = nn.Linear(3, 2)
    before = (list(layer.state_dict()), layer.weight.numpy().copy())
    with pytest.raises(ValueError, match="unknown enforce 'later'"):
        P.register_parametrization(layer, "weight", K.NonNeg(), enforce="later")
    with pytest.raises(ValueError, match=r"'wieght' is not a parameter of Linear \(its "
                                         r"parameters: \['weight', 'bias'\]\)"):
        P.register_parametrization(layer, "wieght", K.NonNeg())
    with pytest.raises(TypeError, match="must be callable"):
        P.register_parametrization(layer, "weight", 0.5)
    P.register_parametrization(layer, "weight", K.NonNeg(), enforce="post_step")
    with pytest.raises(ValueError, match="one timing"):
        P.register_parametrization(layer, "weight", K.NonNeg())
    with pytest.raises(ValueError, match="no parametrization on 'bias'"):
        P.remove_parametrizations(layer, "bias")
    P.remove_parametrizations(layer, "weight")
    assert list(layer.state_dict()) == before[0]


def test_assigning_to_a_parametrized_name_sets_the_original(backend):
    layer = nn.Linear(2, 2)
    P.register_parametrization(layer, "weight", K.NonNeg())
    layer.weight = lucid.tensor([[1.0, -2.0], [-3.0, 4.0]])
    np.testing.assert_array_equal(layer.parametrizations.weight.original.numpy(),
                                  [[1, -2], [-3, 4]])
    np.testing.assert_array_equal(layer.weight.numpy(), [[1, 0], [0, 4]])
    with pytest.raises(ValueError, match="shape"):
        layer.weight = lucid.ones(3, 3)


def test_state_dict_round_trip_and_compile(backend):
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    for m in (a, b):
        P.register_parametrization(m, "weight", K.MaxNorm(0.5, axis=1))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.weight.numpy(), a.weight.numpy())
    opt = optim.SGD(b.parameters(), lr=0.1)

    @lucid.compile(state=[b, opt])
    def step(x):
        opt.zero_grad()
        b(x).sum().backward()
        opt.step()

    step(lucid.ones(4, 3))
    assert not np.array_equal(b.parametrizations.weight.original.numpy(),
                              a.parametrizations.weight.original.numpy())


@pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")
def test_state_dict_loads_into_a_torch_parametrized_module(tmp_path):
    import torch.nn.utils.parametrize as tp
    with lucid.using_backend("numpy"):
        ours = nn.Conv2d(2, 3, 3)
        P.register_parametrization(ours, "weight", K.UnitNorm())
        lucid.save(ours.state_dict(), tmp_path / "m.safetensors")
        x = lucid.random.randn(1, 2, 5, 5)
        y = ours(x).numpy()
    from safetensors.torch import load_file

    class Unit(torch.nn.Module):
        def forward(self, w):
            return w / (w.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-7)

    theirs = torch.nn.Conv2d(2, 3, 3)
    tp.register_parametrization(theirs, "weight", Unit())
    theirs.load_state_dict(load_file(tmp_path / "m.safetensors"))
    np.testing.assert_allclose(theirs(torch.tensor(x.numpy())).detach().numpy(), y, rtol=1e-5,
                               atol=1e-6)


# -- forward hooks ---------------------------------------------------------------------------

def test_forward_hooks_follow_pytorch(backend):
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: calls.append(("pre", m)) or
                                          (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: calls.append(("post", args)) or
                                       out + 1)
    out = layer(lucid.ones(1, 2))
    np.testing.assert_allclose(out.numpy(), layer.bias.numpy()[None] + 1, rtol=1e-6)
    assert [c[0] for c in calls] == ["pre", "post"] and calls[0][1] is layer
    pre.remove()
    post.remove()
    post.remove()                                            # removing twice is harmless
    np.testing.assert_allclose(layer(lucid.ones(1, 2)).numpy(),
                               F.linear(lucid.ones(1, 2), layer.weight, layer.bias).numpy())
    with layer.register_forward_hook(lambda m, a, o: o * 0):
        assert not layer(lucid.ones(1, 2)).numpy().any()
    assert layer(lucid.ones(1, 2)).numpy().any()
    with pytest.raises(TypeError, match="callable"):
        layer.register_forward_hook(3)


# -- ConstrainedLinear -----------------------------------------------------------------------

def _selfeeg_dense(w, max_norm, min_norm, rate, axis):
    """selfeeg's ConstrainedDense scaling (Keras's formulas), in float64 NumPy."""
    n = np.sqrt((w ** 2).sum(axis=axis, keepdims=True))
    if min_norm is None:
        target = np.clip(n, 0, max_norm)
    elif min_norm == max_norm == 1.0:
        target = 1.0
    else:
        target = rate * np.clip(n, min_norm, max_norm) + (1 - rate) * n
    return w * target / (1e-7 + n)


@pytest.mark.parametrize("kw", [{}, {"max_norm": 0.25}, {"max_norm": 0.9, "min_norm": 0.5,
                                                            "minmax_rate": 0.5},
                                {"max_norm": 1.0, "min_norm": 1.0}, {"axis_norm": 0}])
@pytest.mark.parametrize("enforce", ["forward", "post_step", "pre_forward"])
def test_constrained_linear_matches_selfeeg(backend, kw, enforce):
    layer = nn.ConstrainedLinear(6, 4, enforce=enforce, **kw)
    w = np.random.default_rng(3).standard_normal((4, 6)) * 2
    with lucid.no_grad():
        layer.weight.copy_(lucid.tensor(w))
    x = lucid.tensor(np.random.default_rng(4).standard_normal((3, 6)))
    if enforce == "post_step":
        layer.project_()                 # what the optimizer does after each step
    out = layer(x)
    ref = _selfeeg_dense(w, kw.get("max_norm", 2.0), kw.get("min_norm"),
                         kw.get("minmax_rate", 1.0), kw.get("axis_norm", 1))
    np.testing.assert_allclose(layer.constrained_weight().numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), x.numpy() @ ref.T + layer.bias.numpy(), rtol=1e-4,
                               atol=1e-5)
    if enforce == "forward":
        np.testing.assert_allclose(layer.weight.numpy(), w, rtol=1e-6)     # raw stays raw
    assert "constraint=" in repr(layer) and f"enforce='{enforce}'" in repr(layer)


def test_constrained_linear_errors():
    with pytest.raises(ValueError, match="unknown enforce"):
        nn.ConstrainedLinear(2, 2, enforce="never")
    with pytest.raises(ValueError, match="axis_norm"):
        nn.ConstrainedLinear(2, 2, axis_norm=2)
    with pytest.raises(ValueError, match="min_norm=0.5 needs max_norm"):
        nn.ConstrainedLinear(2, 2, max_norm=None, min_norm=0.5)
    assert nn.ConstrainedLinear(2, 2, max_norm=None).constraint.name == "none"


def test_project_constraints_covers_layers_and_parametrizations(backend):
    conv = nn.ConstrainedConv2d(1, 2, 3, constraint="nonneg", enforce="post_step")
    dense = nn.ConstrainedLinear(3, 2, max_norm=0.1, enforce="post_step")
    plain = nn.Linear(2, 2)
    P.register_parametrization(plain, "weight", K.NonNeg(), enforce="post_step")
    model = nn.Sequential(conv, nn.Flatten(), dense, plain)
    with lucid.no_grad():
        for p in (conv.weight, dense.weight, plain.weight):
            p.copy_(p * 0 - 3.0)
    nn.utils.project_constraints(model)
    assert conv.weight.numpy().min() == 0 and plain.weight.numpy().min() == 0
    assert np.sqrt((dense.weight.numpy() ** 2).sum(axis=1)).max() <= 0.1 + 1e-6


def test_constraints_get_config_and_repr():
    for c, cfg in [(K.MaxNorm(2.0, axis=0), {"max_value": 2.0, "axis": 0}),
                   (K.FixedCenter(), {"center_value": -1.0, "neighbor_sum": 1.0, "eps": 1e-12}),
                   (K.MinMaxNorm(0.1, 0.5), {"min_value": 0.1, "max_value": 0.5, "rate": 1.0,
                                            "axis": (1, 2, 3)})]:
        assert c.get_config() == cfg
        assert type(c)(**cfg).get_config() == cfg
        assert repr(c).startswith(type(c).__name__ + "(")
    assert repr(K.MaxL2(0.7)) == "MaxL2(max_l2=0.7, eps=1e-12)"
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        K.MaxNorm(0.0)
    with pytest.raises(TypeError, match="axis"):
        K.UnitNorm(axis="rows")


# -- PyTorch's rules found by its own suite ------------------------------------------------------

@pytest.mark.parametrize("fn,match", [
    (lambda w: w[:-1], "shape"),
    (lambda w: w.astype("float64"), "dtype"),
    (lambda w: w.numpy(), "Tensor"),
])
@pytest.mark.parametrize("enforce", ["forward", "post_step"])
def test_registration_checks_the_output_before_any_change(fn, match, enforce):
    layer = nn.Linear(3, 4)
    w = layer.weight
    with pytest.raises(ValueError, match=match):
        P.register_parametrization(layer, "weight", fn, enforce=enforce)
    assert layer.weight is w and not P.is_parametrized(layer)


def test_parametrization_list_len_index_and_mode(backend):
    layer = nn.Linear(3, 4).eval()
    P.register_parametrization(layer, "weight", K.NonNeg())
    P.register_parametrization(layer, "weight", K.UnitL2())
    plist = layer.parametrizations.weight
    assert len(plist) == 2
    assert isinstance(plist[0], K.NonNeg) and isinstance(plist[-1], K.UnitL2)
    with pytest.raises(IndexError):
        plist[2]
    assert [type(m) for m in plist] == [K.NonNeg, K.UnitL2]
    assert not plist.training and not plist[0].training
    layer.train()
    assert plist.training and plist[1].training

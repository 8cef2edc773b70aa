"""nn.DepthwiseConv2d, nn.SeparableConv2d and nn.ConstrainedConv1d against selfeeg 0.2.2's own
classes (its ``models/layers.py``), weights copied: outputs, gradients and the stored (projected)
weights after each forward, through SGD steps.

``import selfeeg`` fails next to torch 2.13 CPU (its torchaudio's C extension does not load, see
MEASUREMENTS.md), and only selfeeg's FilterBank needs torchaudio: the test loads the layers file
alone with ``torchaudio.functional`` and ``selfeeg.augmentation.functional`` stubbed. It skips
when torch or selfeeg is not installed (``pip install --no-deps selfeeg==0.2.2``, the Makefile's
oracle step)."""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import numpy as np
import pytest

import lucid
from lucid import nn, optim

try:
    import torch
except ImportError:  # the oracle is optional
    torch = None


def _selfeeg_layers():
    if torch is None:
        pytest.skip("torch oracle not installed")
    spec = importlib.util.find_spec("selfeeg")       # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("selfeeg not installed (pip install --no-deps selfeeg==0.2.2)")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "models", "layers.py")
    stubs = {}
    for name in ("torchaudio", "torchaudio.functional", "selfeeg", "selfeeg.augmentation",
                 "selfeeg.augmentation.functional"):
        stubs[name] = types.ModuleType(name)
    stubs["torchaudio.functional"].filtfilt = None            # FilterBank only
    stubs["selfeeg.augmentation.functional"].get_filter_coeff = None
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        mod_spec = importlib.util.spec_from_file_location("_selfeeg_layers", path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


@pytest.fixture(scope="module")
def selfeeg():
    return _selfeeg_layers()


def _copy(ours, theirs, rng, scale=3.0):
    """The same (large, so that the constraint acts) weights in both."""
    for name, p in theirs.named_parameters():
        value = rng.standard_normal(tuple(p.shape)) * scale
        with torch.no_grad():
            p.copy_(torch.tensor(value))
        mine = dict(ours.named_parameters())[name.replace(".parametrizations.weight.original",
                                                          ".weight")]
        with lucid.no_grad():
            mine.copy_(lucid.tensor(value))


def _steps(ours, theirs, shape, rng, steps=2):
    opt = optim.SGD(ours.parameters(), lr=0.1)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(steps):
        x = rng.standard_normal(shape).astype(np.float32)
        y, ty = ours(lucid.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        for (name, tp) in theirs.named_parameters():
            np.testing.assert_allclose(dict(ours.named_parameters())[name].numpy(),
                                       tp.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
        g = rng.standard_normal(ty.shape).astype(np.float32)
        y.backward(lucid.tensor(g))
        (ty * torch.tensor(g)).sum().backward()
        for (name, tp) in theirs.named_parameters():
            np.testing.assert_allclose(dict(ours.named_parameters())[name].grad.numpy(),
                                       tp.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
        opt.step()
        opt.zero_grad()
        topt.step()
        topt.zero_grad()


@pytest.mark.parametrize("kwargs", [
    {"max_norm": 0.5}, {"max_norm": 2.0, "min_norm": 1.5, "minmax_rate": 0.5},
    {"max_norm": 1.0, "min_norm": 1.0}, {"max_norm": 0.7, "axis_norm": (2, 3)},
    {"max_norm": None, "bias": True},
])
def test_depthwise_conv2d_matches_selfeeg(backend, selfeeg, kwargs):
    kw = dict(kwargs)
    bias = kw.pop("bias", False)
    axis = kw.pop("axis_norm", (1, 2, 3))
    theirs = selfeeg.DepthwiseConv2d(3, 2, (1, 5), bias=bias, axis_norm=list(axis), **kw)
    ours = nn.DepthwiseConv2d(3, 2, (1, 5), bias=bias, axis_norm=axis, **kw)
    assert ours.weight.shape == tuple(theirs.weight.shape) == (6, 1, 1, 5)
    assert ours.groups == theirs.groups == 3 and ours.padding == theirs.padding == "same"
    rng = np.random.default_rng(0)
    _copy(ours, theirs, rng)
    _steps(ours, theirs, (2, 3, 4, 16), rng)


@pytest.mark.parametrize("kwargs", [
    {},
    {"depth_max_norm": 0.5, "point_max_norm": 1.0},
    {"depth_max_norm": 2.0, "depth_min_norm": 1.0, "point_max_norm": 1.0, "point_min_norm": 1.0,
     "bias": True},
])
def test_separable_conv2d_matches_selfeeg(backend, selfeeg, kwargs):
    kw = dict(kwargs)
    bias = kw.pop("bias", False)
    theirs = selfeeg.SeparableConv2d(2, 5, (3, 3), bias=bias, depth_multiplier=2, **kw)
    ours = nn.SeparableConv2d(2, 5, 2, (3, 3), bias=bias, **kw)
    assert {n for n, _ in ours.named_parameters()} == {n for n, _ in theirs.named_parameters()}
    rng = np.random.default_rng(1)
    _copy(ours, theirs, rng)
    _steps(ours, theirs, (2, 2, 6, 7), rng)


@pytest.mark.parametrize("kwargs", [
    {"max_norm": 0.5}, {"max_norm": 2.0, "min_norm": 1.5, "minmax_rate": 0.5},
    {"max_norm": 0.7, "axis_norm": 2, "groups": 2, "dilation": 2},
    {"max_norm": 1.0, "padding": "causal", "dilation": 2},
])
def test_constrained_conv1d_matches_selfeeg(backend, selfeeg, kwargs):
    """selfeeg's ConstrainedConv1d (its timing: project before each forward) is
    nn.ConstrainedConv1d with enforce="pre_forward"; its 'causal' padding is the per-side
    padding (dilation·(k - 1), 0)."""
    kw = dict(kwargs)
    theirs = selfeeg.ConstrainedConv1d(4, 6, 5, **kw)
    if kw.get("padding") == "causal":
        kw["padding"] = ((kw.get("dilation", 1) * 4, 0),)
    ours = nn.ConstrainedConv1d(4, 6, 5, enforce="pre_forward", **{"padding": "same", **kw})
    rng = np.random.default_rng(2)
    _copy(ours, theirs, rng)
    _steps(ours, theirs, (2, 4, 20), rng)


def test_defaults_and_validation():
    d = nn.DepthwiseConv2d(4, 2, 3)
    assert d.out_channels == 8 and d.groups == 4 and d.bias is None
    assert d.padding == "same" and d.enforce == "pre_forward" and d.constraint_name == "none"
    s = nn.SeparableConv2d(4, 6, 3, (1, 7))
    assert s.depthwise.weight.shape == (12, 1, 1, 7)
    assert s.pointwise.weight.shape == (6, 12, 1, 1)
    with pytest.raises(ValueError, match="depth_multiplier must be a positive int"):
        nn.DepthwiseConv2d(4, 0, 3)
    with pytest.raises(ValueError, match="min_norm=2.0 must not exceed max_norm=1.0"):
        nn.SeparableConv2d(2, 2, 1, 3, depth_max_norm=1.0, depth_min_norm=2.0)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.DepthwiseConv2d(2, 1, 3, stride=2)

"""benchmarks/run.py end to end: ``--quick`` exits 0 and prints every section's tables (the
numbers are not checked: they depend on the machine). Without torch its rows are skipped
with a note, which ``--skip torch`` exercises on machines that have it. Plus the translator the
raw-framework rows depend on: same output shapes as the lucid net."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

HEADERS = [
    "## 1. Whole training steps",
    "| net             | batch | optimizer",
    "| net             | ratio",
    "## 2. Conv workloads of benchmarks/conv.py",
    "| workload          | pass    | lucid[numpy] | lucid[mlx] | raw MLX",
    "### 1×1 conv vs plain NumPy GEMMs",
    "| workload          | pass    | lucid[numpy] ms | NumPy GEMMs ms",
    "## 3. Constraint cost",
    "| backend",
    "## 4. MLX memory",
    "| net      | step",
    "## 5. Mixed precision",
    "| net        | precision | lucid[numpy]",
]
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_MLX = importlib.util.find_spec("mlx") is not None


def _run(*args: str, timeout: float) -> str:
    p = subprocess.run([sys.executable, RUN, *args], check=False, capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_quick_prints_every_section():
    out = _run("--quick", timeout=300)      # < 60 s on an idle 2-core box; slack for a busy one
    flat = " ".join(out.split())            # column widths follow the widest number
    for h in HEADERS:
        if h.startswith("| net      | step") and not HAVE_MLX:
            continue
        assert " ".join(h.split()) in flat, f"missing {h!r} in:\n{out}"
    if not HAVE_TORCH:
        assert "torch is not installed" in out


def test_skipped_implementation_is_a_note():
    out = _run("--smoke", "--only", "train", "--skip", "torch", timeout=300)
    assert "## 1. Whole training steps" in out and "## 2." not in out
    assert "tiny MLP torch, digits CNN torch, constrained net torch: skipped (--skip)" in out


def _lucid_net(net):
    import _steps

    import lucid
    lucid.set_backend("numpy")
    lucid.random.seed(0)
    model, shape, _ = _steps.lucid_net(net)
    return model, shape


NETS = ["tiny MLP", "digits CNN", "constrained net"]


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("net", NETS)
def test_torch_translation_same_output_shape(net):
    import torch
    from _translate import to_torch

    import lucid
    model, shape = _lucid_net(net)
    tmodel, projections = to_torch(model)
    x = np.zeros(shape, np.float32)
    assert tuple(tmodel(torch.from_numpy(x)).shape) == model(lucid.tensor(x)).shape
    assert projections == []                # the demo's constraint is enforced in the forward
    if net == "constrained net":            # fixed_center: centre -1, neighbours sum to 1
        w = tmodel[0].weight.detach().numpy()
        np.testing.assert_allclose(w[:, :, 2, 2], -1.0, atol=1e-6)
        np.testing.assert_allclose(w.sum(axis=(2, 3)), 0.0, atol=5e-5)


def _first_layers(enforce):
    """A lucid fixed_center layer with the given enforce and a random raw weight (projected for
    post_step, as after an optimizer step) in a Sequential, that raw weight, and an input."""
    import lucid
    from lucid import nn
    lucid.set_backend("numpy")
    lucid.random.seed(1)
    layer = nn.ConstrainedConv2d(1, 3, 5, padding=2, constraint="fixed_center", enforce=enforce)
    raw = np.random.default_rng(2).normal(size=(3, 1, 5, 5)).astype(np.float32)
    layer.weight.data = lucid.tensor(raw).data
    if enforce == "post_step":
        layer.project_()
    x = np.random.default_rng(0).normal(size=(2, 1, 9, 9)).astype(np.float32)
    return nn.Sequential(layer), layer, raw, x


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("enforce", ["forward", "post_step"])
def test_torch_fixed_center_matches_lucid(enforce):
    import torch
    from _translate import to_torch

    import lucid
    seq, layer, raw, x = _first_layers(enforce)
    tmodel, projections = to_torch(seq)
    assert len(projections) == (enforce == "post_step")
    conv = tmodel[0]
    with torch.no_grad():
        if enforce == "forward":            # the raw weight lies under the parametrization
            conv.parametrizations.weight.original.copy_(torch.from_numpy(raw))
        else:
            conv.weight.copy_(torch.from_numpy(raw))
            projections[0]()
        conv.bias.copy_(torch.from_numpy(layer.bias.numpy()))
        out = conv(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, layer(lucid.tensor(x)).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAVE_MLX, reason="mlx is not installed")
@pytest.mark.parametrize("enforce", ["forward", "post_step"])
def test_mlx_fixed_center_matches_lucid(enforce):
    import mlx.core as mx
    from _translate import to_mlx

    import lucid
    seq, layer, raw, x = _first_layers(enforce)
    mmodel, projections = to_mlx(seq)
    assert len(projections) == (enforce == "post_step")
    conv = mmodel.layers[0]
    conv.weight = mx.array(raw.transpose(0, 2, 3, 1))
    conv.bias = mx.array(layer.bias.numpy())
    for p in projections:
        p(mmodel)
    out = np.array(mmodel(mx.array(x.transpose(0, 2, 3, 1)))).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, layer(lucid.tensor(x)).numpy(), rtol=1e-4, atol=1e-4)
    assert set(conv.trainable_parameters()) == {"weight", "bias"}


@pytest.mark.skipif(not HAVE_MLX, reason="mlx is not installed")
@pytest.mark.parametrize("net", NETS)
def test_mlx_translation_same_output_shape(net):
    import mlx.core as mx
    from _translate import to_mlx

    import lucid
    model, shape = _lucid_net(net)
    mmodel, projections = to_mlx(model)
    x = np.zeros(shape, np.float32)
    xm = mx.array(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)
    assert tuple(mmodel(xm).shape) == model(lucid.tensor(x)).shape
    assert projections == []


def _rank_net(rank):
    """A small net of the issue-23 layers of one rank, and its input shape."""
    import lucid
    from lucid import nn
    lucid.set_backend("numpy")
    lucid.random.seed(3)
    if rank == 1:
        return nn.Sequential(nn.Conv1d(4, 6, 5, padding="same"), nn.BatchNorm1d(6), nn.ReLU(),
                             nn.MaxPool1d(2), nn.Conv1d(6, 6, 3, stride=2, groups=2),
                             nn.AvgPool1d(2), nn.Flatten(), nn.Linear(18, 3)), (2, 4, 32)
    return nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.Tanh(),
                         nn.MaxPool3d(2), nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1)),
                         nn.AvgPool3d((1, 2, 2)), nn.Flatten(), nn.Linear(32, 3)), (2, 2, 4, 8, 8)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("rank", [1, 3])
def test_torch_translation_of_every_rank_computes_lucids_net(rank):
    """Conv, BatchNorm and pooling of rank 1 and 3 translate; with lucid's weights copied in,
    the torch net computes lucid's outputs."""
    import torch
    from _translate import to_torch

    import lucid
    model, shape = _rank_net(rank)
    tmodel, projections = to_torch(model)
    assert projections == []
    lucid_params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(lucid_params[name].numpy()))
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(tmodel(torch.from_numpy(x)).detach().numpy(),
                               model(lucid.tensor(x)).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAVE_MLX, reason="mlx is not installed")
@pytest.mark.parametrize("rank", [1, 3])
def test_mlx_translation_of_every_rank_same_output_shape(rank):
    import mlx.core as mx
    from _translate import to_mlx

    import lucid
    model, shape = _rank_net(rank)
    mmodel, _ = to_mlx(model)
    x = np.zeros(shape, np.float32)
    xm = mx.array(x.transpose((0,) + tuple(range(2, x.ndim)) + (1,)))
    assert tuple(mmodel(xm).shape) == model(lucid.tensor(x)).shape


def test_asymmetric_same_padding_is_refused():
    from _translate import to_torch

    from lucid import nn
    with pytest.raises(TypeError, match="only symmetric padding is translated"):
        to_torch(nn.Sequential(nn.Conv1d(2, 2, 4, padding="same")))

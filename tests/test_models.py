"""lucid.models against their references: braindecode 1.8.1 as the oracle for EEGNet,
ShallowFBCSPNet and Deep4Net (its state dict loads strictly; outputs, losses, gradients and
five Adam steps agree); eegnet_keras and MISLnet by structure, shapes and constraints."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import lucid
from lucid import models, nn
from lucid.nn import functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))
from _braindecode import models as braindecode_models

torch = pytest.importorskip("torch")
BD = braindecode_models()
needs_bd = pytest.mark.skipif(BD is None, reason="braindecode (oracle extra) is not installed")

SETTINGS = {
    "EEGNet": [
        {"n_chans": 4, "n_outputs": 3, "n_times": 64, "F1": 4, "D": 2, "kernel_length": 16,
         "conv_spatial_max_norm": 0.4},
        {"n_chans": 3, "n_outputs": 2, "n_times": 70, "F1": 3, "D": 2, "F2": 5,
         "kernel_length": 15, "pool_mode": "max", "final_layer_with_constraint": True,
         "conv_spatial_max_norm": 0.5, "norm_rate": 0.3},
    ],
    "ShallowFBCSPNet": [
        {"n_chans": 3, "n_outputs": 3, "n_times": 60, "n_filters_time": 5, "n_filters_spat": 6,
         "filter_time_length": 7, "pool_time_length": 10, "pool_time_stride": 5},
        {"n_chans": 4, "n_outputs": 2, "n_times": 50, "n_filters_time": 4, "n_filters_spat": 5,
         "filter_time_length": 5, "pool_time_length": 8, "pool_time_stride": 4,
         "pool_mode": "max", "batch_norm": False},
    ],
    "Deep4Net": [
        {"n_chans": 3, "n_outputs": 3, "n_times": 120, "n_filters_time": 4, "n_filters_spat": 5,
         "filter_time_length": 5, "n_filters_2": 6, "filter_length_2": 3, "n_filters_3": 7,
         "filter_length_3": 3, "n_filters_4": 8, "filter_length_4": 3, "pool_time_length": 2,
         "pool_time_stride": 2},
        {"n_chans": 2, "n_outputs": 2, "n_times": 100, "n_filters_time": 3, "n_filters_spat": 4,
         "filter_time_length": 4, "n_filters_2": 5, "filter_length_2": 3, "n_filters_3": 5,
         "filter_length_3": 2, "n_filters_4": 6, "filter_length_4": 2, "pool_time_length": 2,
         "pool_time_stride": 2, "stride_before_pool": True, "later_pool_mode": "mean",
         "batch_norm": False},
    ],
}
# A bias followed by a training-mode BatchNorm has a true gradient of 0 (the BatchNorm removes
# any constant shift); both libraries compute it as rounding noise that Adam scales up to
# full-size steps of arbitrary sign, so five Adam steps cannot agree on it (its gradient is
# compared, at ~0, in the gradient test)
NULL_GRADIENT = {"bnorm_temporal.bias", "conv_time_spat.conv_time.bias"}
CASES = [(name, i) for name, settings in SETTINGS.items() for i in range(len(settings))]


def _pair(name: str, i: int, drop: bool = False):
    """(braindecode model, lucid model with its state dict loaded) for one setting."""
    kwargs = dict(SETTINGS[name][i])
    if not drop:
        kwargs["drop_prob"] = 0.0
    torch.manual_seed(i)
    ref = getattr(BD, name)(**kwargs)
    for m in ref.modules():
        if hasattr(m, "_pool_weights"):
            # braindecode's mean pool (AvgPool2dWithConv) caches a weight made during its
            # inference-mode shape probe, so its first training forward raises; make it anew
            m._pool_weights = None
    ours = getattr(models, name)(**kwargs)
    models.load_torch_state_dict(ours, ref.state_dict(), strict=True)
    return ref, ours, kwargs


def _x(kwargs: dict, n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, kwargs["n_chans"], kwargs["n_times"])).astype(np.float32)


@needs_bd
@pytest.mark.parametrize("name,i", CASES)
def test_fresh_state_dict_matches_braindecode(name, i, numpy_backend):
    kwargs = dict(SETTINGS[name][i])
    ref = getattr(BD, name)(**kwargs)
    ours = getattr(models, name)(**kwargs)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    for k, v in ref_sd.items():
        assert our_sd[k].shape == tuple(v.shape), k
        if "running" in k or "num_batches" in k or k.endswith("bias"):
            # deterministic buffers (incl. braindecode's training-mode shape probe) and biases
            np.testing.assert_allclose(our_sd[k].numpy(), v.numpy(), err_msg=k)
    assert ours.training == ref.training


@needs_bd
@pytest.mark.parametrize("name,i", CASES)
def test_eval_outputs_equal_braindecode(name, i, backend):
    ref, ours, kwargs = _pair(name, i, drop=True)
    x = _x(kwargs)
    ref.eval()
    ours.eval()
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    got = ours(lucid.tensor(x)).numpy()
    assert got.shape == want.shape == (3, kwargs["n_outputs"])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_bd
@pytest.mark.parametrize("name,i", CASES)
def test_train_loss_and_gradients_equal_braindecode(name, i, backend):
    ref, ours, kwargs = _pair(name, i)
    x, y = _x(kwargs, n=4, seed=1), np.arange(4) % kwargs["n_outputs"]
    ref_loss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
    ref_loss.backward()
    loss = F.cross_entropy(ours(lucid.tensor(x)), lucid.tensor(y))
    loss.backward()
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5)
    ref_grads = {k: p.grad.numpy() for k, p in ref.named_parameters()}
    our_grads = {k: p.grad.numpy() for k, p in ours.named_parameters()}
    assert list(our_grads) == list(ref_grads)
    for k, g in ref_grads.items():
        np.testing.assert_allclose(our_grads[k], g, rtol=1e-3, atol=2e-5, err_msg=k)
    # training mode also moved the running statistics the same way
    ref_sd = ref.state_dict()
    for k, v in ours.state_dict().items():
        if "running" in k:
            np.testing.assert_allclose(v.numpy(), ref_sd[k].numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=k)


@needs_bd
@pytest.mark.parametrize("name,i", [("EEGNet", 0), ("EEGNet", 1), ("Deep4Net", 0)])
def test_five_adam_steps_equal_braindecode_and_norms_hold(name, i, backend):
    ref, ours, kwargs = _pair(name, i)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    opt = lucid.optim.Adam(ours.parameters(), lr=0.05)
    for step in range(5):
        x, y = _x(kwargs, n=4, seed=10 + step), np.arange(4) % kwargs["n_outputs"]
        ref_opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        ref_opt.step()
        opt.zero_grad()
        F.cross_entropy(ours(lucid.tensor(x)), lucid.tensor(y)).backward()
        opt.step()
    ref_params = dict(ref.named_parameters())
    for k, p in ours.named_parameters():
        if k in NULL_GRADIENT and kwargs.get("batch_norm", True):
            continue
        np.testing.assert_allclose(p.numpy(), ref_params[k].detach().numpy(), rtol=2e-3,
                                   atol=1e-4, err_msg=k)
    if name == "EEGNet":
        bounds = [(ours.conv_spatial, kwargs.get("conv_spatial_max_norm", 1))]
        if kwargs.get("final_layer_with_constraint"):
            bounds.append((ours.final_layer.linearconstraint, kwargs["norm_rate"]))
        for layer, bound in bounds:
            w = layer.weight.numpy()                       # the constrained weight
            norms = np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(1))
            assert norms.max() <= bound + 1e-5
            raw = layer.parametrizations.weight.original.numpy()
            assert np.sqrt((raw.reshape(raw.shape[0], -1) ** 2).sum(1)).max() > bound


def test_renorm_matches_torch_and_has_finite_gradients(numpy_backend):
    from lucid.models._blocks import Renorm
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 2, 3)) * np.array([0.1, 1, 2, 0.0, 0.5])[:, None, None]
    t = torch.tensor(w, requires_grad=True)
    torch.renorm(t, 2, 0, 1.0).sum().backward()
    ours = lucid.tensor(w, dtype="float64", requires_grad=True)
    out = Renorm(1.0)(ours)
    out.sum().backward()
    np.testing.assert_allclose(out.numpy(), torch.renorm(t, 2, 0, 1.0).detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert np.isfinite(ours.grad.numpy()).all()            # the all-zero slice
    with pytest.raises(ValueError, match="max_norm"):
        Renorm(0.0)


def test_braindecode_failure_modes_are_errors(numpy_backend):
    with pytest.raises(ValueError, match="split_first_layer"):
        models.ShallowFBCSPNet(3, 2, 100, split_first_layer=False)
    with pytest.raises(ValueError, match="split_first_layer"):
        models.Deep4Net(3, 2, 500, split_first_layer=False)
    with pytest.raises(ValueError, match="441"):                 # defaults need 441 samples
        models.Deep4Net(3, 2, 440)
    assert models.fbcsp.min_n_times((10, 10, 10, 10), 3, 3) == 441
    models.Deep4Net(2, 2, 441, n_filters_time=2, n_filters_spat=2, n_filters_2=2,
                    n_filters_3=2, n_filters_4=2)
    with pytest.raises(ValueError, match="too short"):
        models.ShallowFBCSPNet(3, 2, 98)
    with pytest.raises(ValueError, match="pool_mode"):
        models.EEGNet(3, 2, 64, pool_mode="median")
    with pytest.raises(ValueError, match="n_chans"):
        models.EEGNet(0, 2, 64)
    with pytest.raises(TypeError, match="n_times"):
        models.EEGNet(3, 2, 64.0)
    with pytest.raises(ValueError, match="drop_prob"):
        models.EEGNet(3, 2, 64, drop_prob=1.5)


# -- eegnet_keras ------------------------------------------------------------------------------

def _keras_param_count(c: int, t: int, n: int, f1: int = 8, d: int = 2, f2: int = 16,
                       k: int = 64) -> int:
    """Trainable parameters of arl-eegmodels' EEGNet, from its layer list."""
    conv1 = f1 * k
    bn1 = 2 * f1
    depthwise = c * f1 * d
    bn2 = 2 * f1 * d
    separable = f1 * d * 16 + f1 * d * f2
    bn3 = 2 * f2
    dense = f2 * (t // 32) * n + n
    return conv1 + bn1 + depthwise + bn2 + separable + bn3 + dense


@pytest.mark.parametrize("c,t,n", [(4, 128, 3), (8, 96, 2)])
def test_eegnet_keras_structure(c, t, n, backend):
    m = models.eegnet_keras(c, n, t)
    assert sum(p.numel() for p in m.parameters()) == _keras_param_count(c, t, n)
    assert m(lucid.random.randn(2, c, t)).shape == (2, n)
    assert m.block1.conv_temporal.weight.shape == (8, 1, 1, 64)
    assert m.dense.weight.shape == (n, 16 * (t // 32))


def test_eegnet_keras_max_norms_hold_after_steps(backend):
    m = models.eegnet_keras(4, 2, 64, kernel_length=16)
    opt = lucid.optim.SGD(m.parameters(), lr=5.0)           # large steps push norms up
    for step in range(3):
        x = lucid.random.randn(4, 4, 64)
        opt.zero_grad()
        F.cross_entropy(m(x), lucid.tensor(np.arange(4) % 2)).backward()
        opt.step()
    dw = m.block1.conv_depthwise.weight.numpy()             # (F1·D, 1, C, 1)
    assert np.sqrt((dw ** 2).sum(axis=(1, 2, 3))).max() <= 1.0 + 1e-5
    w = m.dense.weight.numpy()                               # (out, in): one norm per unit
    norms = np.sqrt((w ** 2).sum(axis=1))
    assert norms.max() <= 0.25 + 1e-5
    assert norms.max() > 0.2                                 # the bound is reached, not idle


def test_eegnet_keras_depthwise_init_uses_keras_fans(numpy_backend):
    lucid.random.seed(1)
    m = models.eegnet_keras(16, 2, 64)
    w = m.block1.conv_depthwise.weight.numpy()
    bound = np.sqrt(6.0 / (16 * (8 + 2)))
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.8 * bound


# -- MISLnet -----------------------------------------------------------------------------------

def _misl_param_count(flat_side: int, n_classes: int = 5) -> int:
    convs = [(1, 3, 5, False), (3, 96, 7, True), (96, 64, 5, True), (64, 64, 5, True),
             (64, 128, 1, True)]
    total = sum(i * o * k * k + (o if b else 0) for i, o, k, b in convs)
    total += 2 * (96 + 64 + 64 + 128)                                   # BatchNorm scale, shift
    flat = flat_side * flat_side * 128
    return total + flat * 200 + 200 + 200 * 200 + 200 + 200 * n_classes + n_classes


@pytest.mark.parametrize("patch,side", [(256, 6), (128, 2)])
def test_mislnet_structure(patch, side, numpy_backend):
    m = models.MISLnet(patch_size=patch)
    assert sum(p.numel() for p in m.parameters()) == _misl_param_count(side)
    assert m.fc1.linear.weight.shape == (200, side * side * 128)
    conv1 = m.conv1.conv.geometry               # TF 'SAME' at stride 2: 2 before, 3 after
    assert (conv1.lo, conv1.hi, conv1.stride, conv1.kernel) == ((2, 2), (3, 3), (2, 2), (7, 7))
    assert m.constrained.geometry.lo == (0, 0) and m.constrained.bias is None


def test_mislnet_forward_and_constraint_after_steps(backend):
    m = models.MISLnet(patch_size=128, n_classes=3)
    w = m.constrained.weight.numpy()
    np.testing.assert_allclose(w[:, :, 2, 2], -1.0, atol=1e-6)
    opt = lucid.optim.SGD(m.parameters(), lr=0.1)
    x = lucid.random.randn(2, 1, 128, 128)
    out = m(x)
    assert out.shape == (2, 3)
    opt.zero_grad()
    F.cross_entropy(out, lucid.tensor([0, 2])).backward()
    opt.step()
    w = m.constrained.weight.numpy()
    np.testing.assert_allclose(w[:, :, 2, 2], -1.0, atol=1e-6)
    mask = np.ones((5, 5), bool)
    mask[2, 2] = False
    np.testing.assert_allclose(w[:, :, mask].sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="expects"):
        m(lucid.random.randn(1, 1, 64, 64))


def test_mislnet_bad_arguments():
    with pytest.raises(ValueError, match="patch_size"):
        models.MISLnet(patch_size=64)
    with pytest.raises(ValueError, match="enforce"):
        models.MISLnet(enforce="sometimes")
    with pytest.raises(ValueError, match="n_classes"):
        models.MISLnet(n_classes=0)


# -- load_torch_state_dict ---------------------------------------------------------------------

def _torch_twin(m: nn.Module) -> dict:
    rng = np.random.default_rng(5)
    return {k: torch.from_numpy(rng.standard_normal(v.shape).astype(np.float32))
            if v.dtype == lucid.float32 else torch.tensor(7) for k, v in m.state_dict().items()}


def test_load_torch_state_dict_from_tensors_and_file(tmp_path, backend):
    from safetensors.torch import save_file
    m = models.EEGNet(3, 2, 64, kernel_length=8)
    sd = _torch_twin(m)
    assert models.load_torch_state_dict(m, sd) is m
    got = m.state_dict()
    for k, v in sd.items():
        np.testing.assert_array_equal(got[k].numpy(), v.numpy())
    assert got["bnorm_1.num_batches_tracked"].dtype == lucid.int64
    path = tmp_path / "eegnet.safetensors"
    save_file({k: v * 2 if v.is_floating_point() else v for k, v in sd.items()}, str(path))
    m2 = models.EEGNet(3, 2, 64, kernel_length=8)
    models.load_torch_state_dict(m2, path)                   # os.PathLike
    np.testing.assert_array_equal(m2.state_dict()["conv_temporal.weight"].numpy(),
                                  2 * sd["conv_temporal.weight"].numpy())
    models.load_torch_state_dict(m2, str(path))              # str
    assert m2.state_dict()["conv_temporal.weight"].backend == backend


def test_load_torch_state_dict_errors_are_atomic(numpy_backend):
    m = models.EEGNet(3, 2, 64, kernel_length=8)
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = _torch_twin(m)
    missing = dict(sd)
    del missing["conv_temporal.weight"]
    missing["conv_tempral.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="conv_temporal.weight") as e:
        models.load_torch_state_dict(m, missing)
    assert "conv_tempral.weight" in str(e.value)
    bad_shape = dict(sd, **{"bnorm_1.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="bnorm_1.weight"):
        models.load_torch_state_dict(m, bad_shape)
    # bfloat16 loads since lucid has it (test_mixed_precision); a sparse tensor NumPy can't take
    sparse = dict(sd, **{"bnorm_1.bias": sd["bnorm_1.bias"].to_sparse()})
    with pytest.raises(TypeError, match="bnorm_1.bias"):
        models.load_torch_state_dict(m, sparse)
    with pytest.raises(TypeError, match="mapping"):
        models.load_torch_state_dict(m, [1, 2])
    with pytest.raises(FileNotFoundError):
        models.load_torch_state_dict(m, "/nonexistent/file.safetensors")
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    # non-strict: what is there loads, the missing keys stay
    partial = {"conv_temporal.weight": sd["conv_temporal.weight"]}
    models.load_torch_state_dict(m, partial, strict=False)
    np.testing.assert_array_equal(m.conv_temporal.weight.numpy(),
                                  sd["conv_temporal.weight"].numpy())
    np.testing.assert_array_equal(m.bnorm_1.weight.numpy(), before["bnorm_1.weight"])

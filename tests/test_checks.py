"""No silent wrong answers: every class of bad argument raises the same error on every backend,
names the bad value, and changes nothing. (The property-based differential fuzzer is
tests/test_fuzz.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lucid
import lucid.nn.functional as F
from lucid import nn, optim

try:
    import torch
except ImportError:
    torch = None


def _t(shape=(2, 2)):
    return lucid.tensor(np.arange(float(np.prod(shape))).reshape(shape))


# -- axes ------------------------------------------------------------------------------------

AXIS_CASES = [
    ("sum", lambda t: t.sum(axis=2), 2),
    ("sum_neg", lambda t: t.sum(axis=-3), -3),
    ("sum_tuple", lambda t: t.sum(axis=(0, 5)), 5),
    ("mean", lambda t: t.mean(axis=2), 2),
    ("var", lambda t: t.var(axis=-3), -3),
    ("max", lambda t: t.max(axis=2), 2),
    ("min", lambda t: t.min(axis=3), 3),
    ("argmax", lambda t: t.argmax(axis=2), 2),
    ("argmin", lambda t: t.argmin(axis=-3), -3),
    ("softmax", lambda t: t.softmax(axis=2), 2),
    ("log_softmax", lambda t: t.log_softmax(axis=-3), -3),
    ("F.softmax", lambda t: F.softmax(t, dim=4), 4),
    ("transpose", lambda t: t.transpose(0, 2), 2),
    ("permute", lambda t: t.permute(0, 2), 2),
    ("flatten", lambda t: t.flatten(3), 3),
    ("unsqueeze", lambda t: t.unsqueeze(5), 5),
    ("unsqueeze_neg", lambda t: t.unsqueeze(-4), -4),
    ("squeeze", lambda t: t.squeeze(4), 4),
    ("stack", lambda t: lucid.stack([t, t], axis=3), 3),
    ("concatenate", lambda t: lucid.concatenate([t, t], axis=2), 2),
    ("concatenate_neg", lambda t: lucid.concatenate([t, t], axis=-3), -3),
    ("cumsum", lambda t: t.cumsum(2), 2),
    ("norm", lambda t: t.norm(axis=2), 2),
    ("size", lambda t: t.size(2), 2),
    ("max_norm_axis", lambda t: nn.constraints.MaxNorm(1.0, axis=(1, 4))(
        lucid.zeros(2, 2, 3, 3)), 4),
]


@pytest.mark.parametrize("name,op,bad", AXIS_CASES, ids=[c[0] for c in AXIS_CASES])
def test_out_of_range_axis_is_an_index_error(backend, name, op, bad):
    t = _t()
    before = t.numpy().copy()
    with pytest.raises(IndexError, match=r"Dimension out of range") as e:
        op(t)
    msg = str(e.value)
    assert f"got {bad})" in msg and "range of [" in msg and "dims" in msg
    np.testing.assert_array_equal(t.numpy(), before)


def test_valid_ranges_follow_pytorch(backend):
    t = _t()
    assert t.unsqueeze(2).shape == (2, 2, 1) and t.unsqueeze(-3).shape == (1, 2, 2)
    assert lucid.stack([t, t], axis=2).shape == (2, 2, 2)
    assert lucid.stack([t, t], axis=-3).shape == (2, 2, 2)
    s = lucid.tensor(3.0)
    assert s.sum(axis=0).shape == () and s.sum(axis=-1).shape == ()   # a 0-d tensor takes 0, -1
    with pytest.raises(IndexError):
        s.sum(axis=1)


@pytest.mark.parametrize("op", [lambda t: t.sum(axis=(0, 0)), lambda t: t.mean(axis=(1, -1)),
                                lambda t: t.permute(0, 0), lambda t: t.transpose((1, 1))])
def test_repeated_axes_are_refused(backend, op):
    with pytest.raises(ValueError, match="repeat"):
        op(_t())


def test_axis_must_be_an_int(backend):
    with pytest.raises(TypeError, match="must be an int"):
        _t().sum(axis=1.0)


def test_flatten_start_after_end(backend):
    with pytest.raises(ValueError, match="start_dim 1 comes after end_dim 0"):
        _t((2, 3, 4)).flatten(1, 0)


def test_constrained_conv_axis_norm_out_of_range():
    with pytest.raises(ValueError, match="axis_norm"):
        nn.ConstrainedConv2d(1, 2, 3, max_norm=1.0, axis_norm=(1, 4))


# -- indices ---------------------------------------------------------------------------------

INDEX_CASES = [
    ("int_high", lambda t: t[3], "index 3 is out of bounds for dimension 0 with size 3"),
    ("int_low", lambda t: t[-4], "index -4 is out of bounds for dimension 0 with size 3"),
    ("int_huge", lambda t: t[10 ** 6], "index 1000000 is out of bounds for dimension 0"),
    ("second_axis", lambda t: t[:, 4], "index 4 is out of bounds for dimension 1 with size 4"),
    ("after_ellipsis", lambda t: t[..., -5], "index -5 is out of bounds for dimension 1"),
    ("list", lambda t: t[[0, 7]], "index 7 is out of bounds for dimension 0 with size 3"),
    ("numpy", lambda t: t[np.array([0, -9])], "index -9 is out of bounds for dimension 0"),
    ("tensor", lambda t: t[lucid.tensor([2, 5])], "index 5 is out of bounds for dimension 0"),
    ("pair", lambda t: t[lucid.tensor([0, 1]), lucid.tensor([3, 4])],
     "index 4 is out of bounds for dimension 1 with size 4"),
    ("too_many", lambda t: t[0, 0, 0], "too many indices for tensor of dimension 2"),
    ("two_ellipses", lambda t: t[..., ...], "single ellipsis"),
]


@pytest.mark.parametrize("name,op,msg", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_out_of_range_index_is_an_index_error(backend, name, op, msg):
    t = _t((3, 4))
    with pytest.raises(IndexError, match=msg.replace("(", r"\(")):
        op(t)


def test_setitem_out_of_range_changes_nothing(backend):
    t = _t((3, 4))
    before = t.numpy().copy()
    for index in (3, (0, -5), [1, 9], lucid.tensor([4])):
        with pytest.raises(IndexError, match="out of bounds"):
            t[index] = 1.0
    np.testing.assert_array_equal(t.numpy(), before)


def test_in_range_indices_still_work(backend):
    t = _t((3, 4))
    np.testing.assert_array_equal(t[-3].numpy(), [0, 1, 2, 3])
    np.testing.assert_array_equal(t[[2, -1], -1].numpy(), [11, 11])
    np.testing.assert_array_equal(t[np.array([[0], [2]]), 1:3].numpy(), [[[1, 2]], [[9, 10]]])
    assert t[[]].shape == (0, 4)
    assert t[None, ..., 0].shape == (1, 3)


def test_bool_and_float_indices_are_refused(backend):
    t = _t((3, 4))
    for index in (True, lucid.tensor([0.0, 1.0]), np.array([True, False, True])):
        with pytest.raises(TypeError):
            t[index]


def test_lazy_index_is_safe_and_poisons_float_results(mlx_only):
    # An index that is still a lazy MLX graph cannot be checked without evaluating it: lucid
    # never reads out of bounds, and the out-of-range entries of a float result are NaN.
    t = _t((3, 4))
    idx = lucid.tensor([0, 1]) * 2                  # [0, 2]: in range, but lazy
    np.testing.assert_array_equal(t[idx].numpy(), t.numpy()[[0, 2]])
    bad = lucid.tensor([1, 2]) * 3 - 4              # [-1, 2] fine; then [3, ...] below
    out = t[bad + lucid.tensor([4, 0])].numpy()     # [3, 2]: row 3 is out of range
    assert np.isnan(out[0]).all() and np.array_equal(out[1], t.numpy()[2])
    cols = t[:, lucid.tensor([0, 5]) * 1].numpy()   # column 5 is out of range
    assert np.isnan(cols[:, 1]).all() and np.array_equal(cols[:, 0], t.numpy()[:, 0])
    with pytest.raises(IndexError, match="not known yet"):
        t[idx] = 0.0


def test_lazy_index_gradient_reaches_valid_entries(mlx_only):
    x = lucid.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    idx = lucid.tensor([2, 0, 2]) * 1
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1], [0, 0], [2, 2]])


# -- class targets ---------------------------------------------------------------------------

@pytest.mark.parametrize("target,bad", [([0, 3], 3), ([-1, 1], -1), ([7, 0], 7)])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "module"])
def test_class_targets_outside_range_raise(backend, target, bad, loss):
    x = lucid.tensor(np.zeros((2, 3)), requires_grad=True)
    fn = {"cross_entropy": F.cross_entropy, "nll_loss": F.nll_loss,
          "module": nn.CrossEntropyLoss()}[loss]
    with pytest.raises(IndexError, match=rf"Target {bad} is out of bounds.*\[0, 3\) for 3 "):
        fn(x, lucid.tensor(target))
    with pytest.raises(IndexError, match=f"Target {bad}"):
        fn(x, np.array(target))
    assert x.grad is None


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_class_target_check_lists_and_arrays_agree(backend, data):
    """The target check reads up to _LIST_CHECK targets as a Python list, more as a NumPy
    array: both forms raise on the same targets, naming the same one, and count the same
    ignored rows (the loss equals a direct NumPy reference)."""
    from lucid.nn.functional import loss as loss_mod
    c = data.draw(st.integers(1, 4))
    ignore = data.draw(st.sampled_from([-100, -1, 0, c - 1, c]))
    y = np.array(data.draw(st.lists(st.integers(-2, c + 1), min_size=0, max_size=7)), np.int64)
    x = np.random.default_rng(len(y)).standard_normal((len(y), c))
    kept = y != ignore
    out_of_range = kept & ((y < 0) | (y >= c))
    results = []
    for limit in (0, 10_000):                        # always an array / always a list
        old, loss_mod._LIST_CHECK = loss_mod._LIST_CHECK, limit
        try:
            results.append(F.cross_entropy(lucid.tensor(x), lucid.tensor(y),
                                           ignore_index=ignore, reduction="sum").item())
        except IndexError as e:
            results.append(str(e))
        finally:
            loss_mod._LIST_CHECK = old
    assert results[0] == results[1]
    if out_of_range.any():
        bad = y[out_of_range]
        worst = bad.min() if bad.min() < 0 else bad.max()
        assert results[0].startswith(f"Target {worst} is out of bounds")
    else:
        z = x - x.max(axis=1, keepdims=True) if len(y) else x
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        ref = -sum(logp[i, t] for i, t in enumerate(y) if t != ignore)
        np.testing.assert_allclose(results[0], ref, rtol=1e-5, atol=1e-6)


def test_lazy_targets_give_nan_not_a_finite_loss(mlx_only):
    x = lucid.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    good = lucid.tensor([1, 0, 3]) * 1
    bad = lucid.tensor([1, 2, 2]) * 2                    # 4 is out of range, and lazy
    assert np.isfinite(F.cross_entropy(x, good).item())
    assert np.isnan(F.cross_entropy(x, bad).item())
    assert np.isnan(F.cross_entropy(x, bad, reduction="none").numpy()[1])
    assert np.isfinite(F.cross_entropy(x, bad, reduction="none").numpy()[0])
    np.testing.assert_allclose(F.cross_entropy(x, good).item(),
                               F.cross_entropy(x, lucid.tensor([1, 0, 3])).item(), rtol=1e-6)


@pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_ignore_index_matches_torch(backend, reduction, smoothing):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.array([1, -100, 3, 0, -100])
    ours = lucid.tensor(x, requires_grad=True)
    out = F.cross_entropy(ours, lucid.tensor(y), reduction, smoothing)
    out.backward(lucid.ones(*out.shape))
    theirs = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs, torch.tensor(y), reduction=reduction,
                                            label_smoothing=smoothing)
    ref.backward(torch.ones_like(ref))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_all_targets_ignored_is_nan_like_torch(backend):
    loss = F.cross_entropy(lucid.zeros(2, 3), lucid.tensor([-100, -100]))
    assert np.isnan(loss.item())


# -- names -----------------------------------------------------------------------------------

def test_unknown_to_target_lists_backends_and_dtypes(backend):
    t = _t()
    m = nn.Linear(2, 2)
    w = m.weight.numpy().copy()
    for call in (lambda: t.to("bogus"), lambda: m.to("bogus")):
        with pytest.raises(ValueError, match="bogus") as e:
            call()
        msg = str(e.value)
        assert "numpy" in msg and "mlx" in msg and "float32" in msg and "int64" in msg
    np.testing.assert_array_equal(m.weight.numpy(), w)
    assert t.to("float16").dtype == lucid.float16 and t.to(lucid.int32).dtype == lucid.int32


def test_device_reports_where_the_backend_runs(backend):
    t = _t()
    expected = lucid.backends.load(backend).device_type()
    assert t.device == expected and t.device.type == expected
    assert t.device.backend == backend and t.device == backend
    assert t.to(t.device) is t                          # a device keeps the backend
    if backend == "numpy":
        assert t.device == "cpu"


def test_mlx_cpu_build_reports_cpu(mlx_only):
    import mlx.core as mx
    on_gpu = mx.default_device().type == mx.DeviceType.gpu
    assert lucid.zeros(1).device == ("gpu" if on_gpu else "cpu")


# -- state dicts -----------------------------------------------------------------------------

def test_load_state_dict_rejects_non_mappings_and_non_arrays(backend):
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    before = [p.numpy().copy() for p in m.parameters()]
    sd = m.state_dict()
    with pytest.raises(TypeError, match="mapping"):
        m.load_state_dict(list(sd.values()))
    bad = dict(sd)
    bad["0.weight"] = lucid.ones(3, 2) * 5               # valid, would load first
    bad["1.bias"] = "not a tensor"
    with pytest.raises(TypeError, match=r"state_dict\['1.bias'\] must be a Tensor or an array"):
        m.load_state_dict(bad)
    bad["1.bias"] = np.zeros((2,))
    with pytest.raises(ValueError, match="1.bias"):
        m.load_state_dict(bad)
    for p, b in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)      # nothing was loaded
    bad["1.bias"] = np.zeros((1,))
    m.load_state_dict(bad)                               # arrays are accepted
    np.testing.assert_array_equal(m[0].weight.numpy(), np.full((3, 2), 5.0))


# -- checkpoints -----------------------------------------------------------------------------

def test_save_into_missing_folder(tmp_path, backend):
    target = tmp_path / "no" / "such" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match="no/such"):
        lucid.save({"w": _t()}, target)
    assert not (tmp_path / "no").exists()


def test_save_killed_half_way_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    with lucid.using_backend("numpy"):
        lucid.save({"w": lucid.tensor([1.0, 2.0])}, path)
    code = ("import numpy as np, lucid, sys\nlucid.set_backend('numpy')\n"
            "lucid.save({'w': lucid.tensor(np.ones(int(sys.argv[2]), np.float32))}, sys.argv[1])")
    for size in (2 ** 25, 2 ** 27):                     # 128 MB, then 512 MB if the first raced
        proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(size)])
        killed = False
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if any(f.name.startswith(".tmp") for f in tmp_path.iterdir()):
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.0005)
        proc.wait()
        if killed:
            break
        with lucid.using_backend("numpy"):               # it finished first: start over
            lucid.save({"w": lucid.tensor([1.0, 2.0])}, path)
    assert killed, "the save finished before it could be killed"
    with lucid.using_backend("numpy"):
        np.testing.assert_array_equal(lucid.load(path)["w"].numpy(), [1.0, 2.0])


# -- small truths ----------------------------------------------------------------------------

def test_comparisons_with_nan_are_false(backend):
    a = lucid.tensor([1.0, float("nan"), 2.0])
    b = lucid.tensor([1.0, 1.0, float("nan")])
    for op in ("__le__", "__ge__", "__lt__", "__gt__", "__eq__"):
        got = getattr(a, op)(b).numpy()
        expected = getattr(np.array([1.0, np.nan, 2.0]), op)(np.array([1.0, 1.0, np.nan]))
        np.testing.assert_array_equal(got, expected, err_msg=op)
    np.testing.assert_array_equal((a != b).numpy(), [False, True, True])


def test_zero_grad_set_to_none_false_zeroes(backend):
    m = nn.Linear(2, 2)
    opt = optim.SGD(m.parameters(), lr=0.1)
    m(lucid.ones(1, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    m(lucid.ones(1, 2)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_sums_of_empty_tensors_finish(mlx_only):
    # MLX's own CPU reduction of an empty array hangs after a few such calls (0.32); the sequence
    # below did, every time. A subprocess, so that a regression fails instead of hanging.
    code = ("import lucid\nlucid.set_backend('mlx')\nx = lucid.zeros(0)\n"
            "for ax, kd in [((), False), ((), True), ((0,), False), ((0,), True)] * 3:\n"
            "    assert x.sum(axis=ax, keepdims=kd).numpy().sum() == 0\n"
            "print(lucid.zeros(0, 3).sum(0, keepdims=True).shape, lucid.zeros(2, 0).mean(1).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.split() == ["(1,", "3)", "(2,)"]


def test_dataloader_targets_are_checked_on_mlx(mlx_only):
    # DataLoader batches are evaluated as they are handed out, so a bad label is an error on
    # MLX too (not a NaN loss)
    x = lucid.tensor(np.zeros((4, 3), np.float32))
    y = lucid.tensor([0, 1, 5, 2])
    loader = lucid.data.DataLoader(lucid.data.TensorDataset(x, y), batch_size=2)
    xb, yb = next(iter(loader))
    assert yb._ready and np.isfinite(F.cross_entropy(xb, yb).item())
    batches = list(loader)
    with pytest.raises(IndexError, match=r"Target 5 is out of bounds.*\[0, 3\)"):
        F.cross_entropy(batches[1][0], batches[1][1])

"""bfloat16, the dtype table, lucid.autocast and Module casts (GradScaler: test_grad_scaler.py).
torch is the oracle for promotion, bfloat16 rounding and autocast values."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid import backends, dtypes, nn
from tests.helpers import check_grad

torch = pytest.importorskip("torch")
BF16 = ml_dtypes.bfloat16


# -- the dtype table -------------------------------------------------------------------------

def test_promotion_matches_torch_for_every_pair():
    tmap = {"bool": torch.bool, "int32": torch.int32, "int64": torch.int64,
            "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
            "float64": torch.float64}
    for a in dtypes.names():
        for b in dtypes.names():
            want = str(torch.promote_types(tmap[a], tmap[b])).removeprefix("torch.")
            assert dtypes.promote(a, b) == want, (a, b)


def test_table_agrees_with_the_backends_and_numpy():
    for name in backends.available():
        assert backends.load(name).dtypes == dtypes.supported(name)
    assert "bfloat16" in dtypes.supported("mlx") and "float64" not in dtypes.supported("mlx")
    for n in dtypes.names():
        d = dtypes.by_name(n)
        np_type = BF16 if n == "bfloat16" else np.bool_ if n == "bool" else np.dtype(n)
        assert d.itemsize == np.dtype(np_type).itemsize
    assert [n for n in dtypes.names() if dtypes.by_name(n).autocast_ok] == ["float16",
                                                                            "bfloat16"]
    assert dtypes.get("bf16") is lucid.bfloat16 and dtypes.get(torch.bfloat16) is lucid.bfloat16
    assert dtypes.get(BF16) is lucid.bfloat16


# -- bfloat16 on both backends ---------------------------------------------------------------

def test_bfloat16_rounds_to_nearest_even_like_torch(backend):
    # ties (1 + 2^-8 -> 1, 1 + 3·2^-8 -> 1 + 2^-6 ... ), a non-tie, huge, tiny, inf, NaN
    vals = np.array([1.00390625, 1.01171875, 1.0048828, 3.4e38, 1e-40, -np.inf, np.nan, -0.0],
                    np.float32)
    want = torch.tensor(vals).to(torch.bfloat16).float().numpy()
    t = lucid.tensor(vals).astype(lucid.bfloat16)
    assert t.dtype == lucid.bfloat16
    out = t.numpy()
    assert out.dtype == np.dtype(BF16)
    np.testing.assert_array_equal(out.astype(np.float32), want)     # NaN == NaN here
    assert np.isnan(out.astype(np.float32)[6])
    # made directly from host data too, and back to float32 exactly
    u = lucid.tensor(vals, dtype="bfloat16")
    np.testing.assert_array_equal(u.float().numpy(), want)
    assert lucid.tensor(out).dtype == lucid.bfloat16      # an ml_dtypes array keeps its type


def test_bfloat16_tensor_methods_and_module_casts(backend):
    conv = nn.Conv2d(2, 3, 3)
    bn = nn.BatchNorm2d(3)
    model = nn.Sequential(conv, bn)
    ids = [id(p) for p in model.parameters()]
    assert model.bfloat16() is model
    assert [id(p) for p in model.parameters()] == ids
    assert all(p.dtype == lucid.bfloat16 for p in model.parameters())
    assert bn.running_mean.dtype == lucid.bfloat16
    assert bn.num_batches_tracked.dtype == lucid.int64          # integer buffers left alone
    conv.weight.grad = lucid.ones(*conv.weight.shape)
    assert model.half() is model and conv.weight.dtype == lucid.float16
    assert conv.weight.grad.dtype == lucid.float16                # the gradient follows
    assert model.float() is model and conv.weight.dtype == lucid.float32
    assert model.to(lucid.bfloat16) is model and conv.bias.dtype == lucid.bfloat16
    with pytest.raises(TypeError, match="floating dtype"):
        model.to(lucid.int32)
    assert conv.weight.dtype == lucid.bfloat16
    x = lucid.random.randn(1, 2, 5, 5)
    assert x.to(lucid.bfloat16).dtype == lucid.bfloat16 and x.to("bf16").dtype == "bfloat16"
    assert x.bfloat16().dtype == lucid.bfloat16 and x.half().dtype == lucid.float16


def test_bfloat16_safetensors_round_trip(tmp_path, backend):
    from safetensors import safe_open
    t = lucid.tensor([1.0, -2.5, 3.140625, float("nan")], dtype="bfloat16")
    path = tmp_path / "bf.safetensors"
    lucid.save({"w": t}, path)
    back = lucid.load(path)["w"]
    assert back.dtype == lucid.bfloat16
    np.testing.assert_array_equal(back.numpy().view(np.uint16), t.numpy().view(np.uint16))
    with safe_open(str(path), framework="pt") as f:              # torch reads it as bf16
        key = next(k for k in f.keys() if k.endswith("w"))  # noqa: SIM118 - no __iter__
        assert f.get_tensor(key).dtype == torch.bfloat16


def test_torch_bfloat16_state_dict_loads():
    from lucid.models import load_torch_state_dict
    lin = nn.Linear(3, 2)
    sd = {"weight": torch.randn(2, 3).to(torch.bfloat16), "bias": torch.zeros(2)}
    load_torch_state_dict(lin, sd)
    np.testing.assert_array_equal(lin.weight.numpy(), sd["weight"].float().numpy())


# -- half-precision behaviour per op family: NumPy and MLX agree, torch close ----------------

FAMILIES = {
    "elementwise": (lambda a, b: (a * b + a).tanh() - b.exp(), [(4, 5), (4, 5)]),
    "reduce": (lambda a: a.sum(0) + a.mean(1).sum() + a.max(1).sum(), [(64, 48)]),
    "matmul": (lambda a, b: a @ b, [(8, 32), (32, 6)]),
    "conv": (lambda x, w: F.conv2d(x, w, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3)]),
    "softmax": (lambda a: a.softmax(-1) * a.log_softmax(-1), [(4, 9)]),
    "norm": (lambda x: F.batch_norm(x, None, None, training=True) + F.layer_norm(x, (5, 5)),
             [(3, 2, 5, 5)]),
}


def _run_half(fn, arrays, backend, dtype):
    with lucid.using_backend(backend):
        ts = [lucid.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
        out = fn(*ts)
        assert out.dtype == dtype
        out.sum().backward()
        return (out.float().numpy(), [t.grad.float().numpy() for t in ts])


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_parity_numpy_mlx_and_float64(family, dtype):
    fn, shapes = FAMILIES[family]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in shapes]
    arrays = [a.astype(BF16 if dtype == "bfloat16" else np.float16).astype(np.float32)
              for a in arrays]
    ref, ref_grads = _run_half(fn, arrays, "numpy", "float64")
    tol = 6e-2 if dtype == "bfloat16" else 1e-2     # a few ulps of the half type, relative
    scale = max(1.0, float(np.abs(ref).max()))
    for be in backends.available():
        out, grads = _run_half(fn, arrays, be, dtype)
        np.testing.assert_allclose(out, ref, atol=tol * scale, rtol=tol, err_msg=be)
        for g, r in zip(grads, ref_grads):
            gs = max(1.0, float(np.abs(r).max()))
            np.testing.assert_allclose(g, r, atol=tol * gs, rtol=tol, err_msg=be)
    if "mlx" in backends.available():
        a, _ = _run_half(fn, arrays, "numpy", dtype)
        b, _ = _run_half(fn, arrays, "mlx", dtype)
        np.testing.assert_allclose(a, b, atol=tol * scale / 2, rtol=tol / 2)


def test_half_sum_accumulates_in_float32(backend):
    # 4096 ones: a bfloat16 running sum would stall at 256 (its spacing there is 2)
    x = lucid.ones(4096, dtype="bfloat16")
    assert x.sum().dtype == lucid.bfloat16 and float(x.sum().float().item()) == 4096.0
    assert float(x.mean().float().item()) == 1.0
    c = x.cumsum(0)
    assert c.dtype == lucid.bfloat16 and float(c[-1].float().item()) == 4096.0


def test_cast_gradient_is_cast_back(backend):
    # d/da sum(c · bf16(a)) = c, delivered in a's dtype (float32): the master-weight rule
    a = lucid.tensor([0.3, -1.7, 2.2], requires_grad=True)
    c = lucid.tensor([1.5, -2.0, 0.25], dtype="bfloat16")
    (a.bfloat16() * c).sum().backward()
    assert a.grad.dtype == lucid.float32
    np.testing.assert_array_equal(a.grad.numpy(), [1.5, -2.0, 0.25])


def test_promoting_ops_keep_finite_difference_gradients():
    # the mixed-dtype paths autocast takes (float32 with float64 promotion) differentiate
    check_grad(lambda a, b: (a @ b).softmax(-1).log(), [np.ones((2, 3)) * 0.3,
                                                        np.arange(6.0).reshape(3, 2) / 7])


# -- autocast ----------------------------------------------------------------------------

def _inputs():
    x = lucid.random.randn(2, 3, 6, 6)
    return x


def test_autocast_lists(backend):
    x = _inputs()
    conv1, conv2, conv3 = nn.Conv1d(3, 4, 3), nn.Conv2d(3, 4, 3), nn.Conv3d(3, 4, 1)
    convt = nn.ConvTranspose2d(3, 2, 3)
    lin = nn.Linear(6, 5)
    bn, ln, gn = nn.BatchNorm2d(3), nn.LayerNorm(5), nn.GroupNorm(1, 3)
    target = lucid.tensor([1, 0])
    with lucid.autocast(dtype=lucid.bfloat16):
        half = {"conv1d": conv1(x[:, :, 0]), "conv2d": conv2(x), "conv3d": conv3(x[:, :, None]),
                "conv_transpose2d": convt(x), "linear": lin(x), "matmul": x @ x}
        logits = lin(x).sum((1, 2))[:, :2]
        wide = {"softmax": half["linear"].softmax(-1), "log_softmax": F.log_softmax(logits),
                "cross_entropy": F.cross_entropy(logits, target),
                "mse_loss": F.mse_loss(logits, logits.detach()),
                "bce_logits": F.binary_cross_entropy_with_logits(logits, logits.detach() * 0),
                "sum": half["linear"].sum(), "mean": half["linear"].mean(1),
                "exp": half["linear"].exp(), "log": half["linear"].abs().log(),
                "pow": half["linear"] ** 2, "batch_norm": bn(half["conv2d"][:, :3]),
                "layer_norm": ln(half["linear"]),
                "group_norm": gn(x.bfloat16())}
        other = {"relu": half["linear"].relu(), "add": half["linear"] + x.sum(),
                 "max": half["linear"].max()}
    for k, v in half.items():
        assert v.dtype == lucid.bfloat16, k
    for k, v in wide.items():
        assert v.dtype == lucid.float32, k
    assert other["relu"].dtype == lucid.bfloat16 and other["max"].dtype == lucid.bfloat16
    assert other["add"].dtype == lucid.float32               # the widest input
    assert bn.running_mean.dtype == lucid.float32 and bn.weight.dtype == lucid.float32
    assert float(bn.running_mean.abs().sum().item()) > 0       # updated in place, float32


def test_autocast_master_weights_get_float32_grads(backend):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
    with lucid.autocast("cuda", dtype=lucid.bfloat16):       # torch's device_type: ignored
        loss = F.cross_entropy(model(_inputs()), lucid.tensor([0, 1]))
    assert loss.dtype == lucid.float32
    loss.backward()
    for p in model.parameters():
        assert p.dtype == lucid.float32 and p.grad.dtype == lucid.float32


def test_autocast_state_nesting_exceptions_decorator():
    from lucid import precision
    assert precision.state() is None
    with lucid.autocast(dtype=lucid.float16):
        assert precision.state() == "float16"
        with lucid.autocast(enabled=False):
            assert precision.state() is None
            with pytest.raises(KeyError), lucid.autocast(lucid.bfloat16):
                assert precision.state() == "bfloat16"
                raise KeyError("boom")
            assert precision.state() is None
        assert precision.state() == "float16"
    assert precision.state() is None

    @lucid.autocast(dtype=lucid.bfloat16)
    def f(a):
        return a @ a, precision.state()

    y, seen = f(lucid.ones(2, 2))
    assert seen == "bfloat16" and y.dtype == lucid.bfloat16 and precision.state() is None
    assert lucid.amp.autocast is lucid.autocast


@pytest.mark.parametrize("bad", [lucid.float32, "int32", lucid.float64])
def test_autocast_rejects_a_dtype_it_cannot_compute_in(bad):
    with pytest.raises(ValueError, match="bfloat16 or lucid.float16"):
        lucid.autocast(dtype=bad)
    with pytest.raises(ValueError, match="device_type"):
        lucid.autocast("tpu")


def test_float64_is_never_cast():
    with lucid.using_backend("numpy"), lucid.autocast():
        a = lucid.ones(2, 2, dtype="float64")
        assert (a @ a).dtype == lucid.float64 and a.softmax().dtype == lucid.float64


# -- torch autocast as the value oracle ------------------------------------------------------

class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(F.max_pool2d(self.conv(x).relu(), 2).flatten(1))


class _TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.nn.functional.max_pool2d(self.conv(x).relu(), 2).flatten(1))


def _pair():
    lucid.random.seed(3)
    net = _Net()
    tnet = _TorchNet()
    with torch.no_grad():
        for (_, p), (_, tp) in zip(net.named_parameters(), tnet.named_parameters()):
            tp.copy_(torch.tensor(p.numpy()))
    return net, tnet


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n))


def test_autocast_values_match_torch_autocast(backend):
    net, tnet = _pair()
    net.to(backend)
    x, y = _data()
    with lucid.autocast(dtype=lucid.bfloat16):
        logits = net(lucid.tensor(x))
        loss = F.cross_entropy(logits, lucid.tensor(y))
    loss.backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tlogits = tnet(torch.tensor(x))
        tloss = torch.nn.functional.cross_entropy(tlogits.float(), torch.tensor(y))
    tloss.backward()
    assert tlogits.dtype == torch.bfloat16 and logits.dtype == lucid.bfloat16
    np.testing.assert_allclose(logits.float().numpy(), tlogits.float().detach().numpy(),
                               atol=3e-2, rtol=3e-2)
    np.testing.assert_allclose(float(loss.item()), float(tloss.detach()), rtol=1e-2)
    for (_, p), (_, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert p.grad.dtype == lucid.float32
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), atol=3e-2, rtol=5e-2)


def test_bf16_training_stays_near_torch_bf16_and_fp32(backend):
    def train_lucid(precision_on):
        net, _ = _pair()
        net.to(backend)
        opt = lucid.optim.SGD(net.parameters(), lr=0.1)
        losses = []
        for _ in range(20):
            x, y = _data(16, 0)          # one batch, memorised: the loss must fall
            with lucid.autocast(dtype=lucid.bfloat16, enabled=precision_on):
                loss = F.cross_entropy(net(lucid.tensor(x)), lucid.tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
        return np.array(losses)

    _, tnet = _pair()
    topt = torch.optim.SGD(tnet.parameters(), lr=0.1)
    tlosses = []
    for _ in range(20):
        x, y = _data(16, 0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = tnet(torch.tensor(x))
        loss = torch.nn.functional.cross_entropy(out.float(), torch.tensor(y))
        topt.zero_grad()
        loss.backward()
        topt.step()
        tlosses.append(float(loss.detach()))
    bf16, fp32 = train_lucid(True), train_lucid(False)
    np.testing.assert_allclose(bf16, tlosses, atol=3e-2)
    np.testing.assert_allclose(bf16, fp32, atol=5e-2)
    assert bf16[-5:].mean() < bf16[:5].mean()                # it learns


def test_compiled_equals_eager_under_autocast(backend):
    net, _ = _pair()
    net.to(backend)
    eager, _ = _pair()
    eager.to(backend)
    opt = lucid.optim.SGD(net.parameters(), lr=0.1)
    eopt = lucid.optim.SGD(eager.parameters(), lr=0.1)

    def body(model, o, x, y):
        with lucid.autocast(dtype=lucid.bfloat16):
            loss = F.cross_entropy(model(x), y)
        o.zero_grad()
        loss.backward()
        o.step()
        return loss

    step = lucid.compile(lambda x, y: body(net, opt, x, y), state=[net, opt])
    for i in range(3):
        x, y = _data(8, i)
        a = step(lucid.tensor(x), lucid.tensor(y))
        b = body(eager, eopt, lucid.tensor(x), lucid.tensor(y))
        np.testing.assert_allclose(float(a.item()), float(b.item()), rtol=1e-5)
    for p, q in zip(net.parameters(), eager.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5, atol=1e-6)


def test_autocast_state_is_part_of_the_compile_key(backend):
    w = lucid.random.randn(4, 4)
    f = lucid.compile(lambda x: x @ w, state=[w])
    x = lucid.random.randn(2, 4)
    assert f(x).dtype == lucid.float32
    with lucid.autocast(dtype=lucid.bfloat16):
        assert f(x).dtype == lucid.bfloat16
    with lucid.autocast(dtype=lucid.float16):
        assert f(x).dtype == lucid.float16
    assert f(x).dtype == lucid.float32

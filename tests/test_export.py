"""lucid.export: the eval-mode forward of small CNNs written as .mlxfn (run with plain
mx.import_function) and as ONNX (run with onnxruntime), from either backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lucid
from lucid import nn, tracing
from lucid.export import to_mlxfn, to_onnx

needs_mlx = pytest.mark.skipif("mlx" not in lucid.backends.available(), reason="mlx not installed")


@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the export "
                               "extra: pip install -e '.[export]')")


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _trained_bn(model, shape):
    """Move the BatchNorm running statistics off their initial values (two training forwards)."""
    for seed in (1, 2):
        model(lucid.tensor(_input(shape, seed) * 2 + 1))
    return model


def constrained_forward():
    return nn.Sequential(nn.ConstrainedConv2d(2, 3, 3, padding=1, constraint="zero_mean"),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4)), (3, 2, 6, 6)


def constrained_post_step():
    conv = nn.ConstrainedConv2d(2, 3, 3, constraint="unit_l2", enforce="post_step")
    model = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), nn.Linear(48, 2))
    opt = lucid.optim.SGD(model.parameters(), lr=0.5)
    model(lucid.tensor(_input((3, 2, 6, 6), 3))).sum().backward()
    opt.step()                              # the step, then the projection of the kernel
    return model, (3, 2, 6, 6)


def conv1d_bn():
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(),
                          nn.MaxPool1d(3, 2, 1), nn.AvgPool1d(2), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(8, 3), nn.Softmax(-1))
    return _trained_bn(model, (3, 2, 8)), (3, 2, 8)


def conv2d_bn():
    """Shapeless-friendly: no slices or pads on the forward (MLX replays neither at a new
    shape); non-overlapping max and average pooling are reshapes."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.AvgPool2d(3), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(4, 3))
    return _trained_bn(model, (3, 2, 6, 6)), (3, 2, 6, 6)


MODELS = [constrained_forward, constrained_post_step, conv1d_bn, conv2d_bn]


def _reference(model, x):
    """The eval-mode output, and the training flags it must leave as they were."""
    model.train()
    model.eval()
    ref = model(x).numpy()
    model.train()
    return ref


def _state(model):
    return [(p.backend, p.numpy().copy()) for p in list(model.parameters()) +
            list(model.buffers())]


def _same_state(before, model):
    after = _state(model)
    assert [b for b, _ in before] == [b for b, _ in after]
    for (_, a), (_, b) in zip(before, after):
        np.testing.assert_array_equal(a, b)


@needs_mlx
@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_mlxfn_runs_without_lucid_as_the_eval_forward(backend, build, tmp_path):
    import mlx.core as mx

    model, shape = build()
    x = lucid.tensor(_input(shape))
    ref = _reference(model, x)
    before = _state(model)
    path = tmp_path / "model.mlxfn"
    to_mlxfn(model, path, x)
    assert all(m.training for m in model.modules())         # the mode is restored
    _same_state(before, model)                                # nor are parameters moved
    fn = mx.import_function(str(path))
    got = fn(mx.array(x.numpy()))
    assert len(got) == 1
    np.testing.assert_allclose(np.array(got[0]), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_onnx_runs_in_onnxruntime_as_the_eval_forward(backend, build, tmp_path, ort):
    model, shape = build()
    x = lucid.tensor(_input(shape))
    ref = _reference(model, x)
    other = _input((5,) + shape[1:], seed=9)                  # dynamic_batch: another size
    model.eval()
    ref5 = model(lucid.tensor(other)).numpy()
    model.train()
    before = _state(model)
    path = tmp_path / "model.onnx"
    to_onnx(model, path, x)
    assert all(m.training for m in model.modules())
    _same_state(before, model)
    session = ort.InferenceSession(str(path))
    assert [i.shape[0] for i in session.get_inputs()] == ["N"]
    np.testing.assert_allclose(session.run(None, {"input_0": x.numpy()})[0], ref,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(session.run(None, {"input_0": other})[0], ref5,
                               rtol=1e-4, atol=1e-4)


def test_onnx_fixed_batch_refuses_another(numpy_backend, tmp_path, ort):
    model, shape = conv2d_bn()
    path = tmp_path / "fixed.onnx"
    to_onnx(model, path, lucid.tensor(_input(shape)), dynamic_batch=False)
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].shape == list(shape)
    with pytest.raises(Exception, match="[Ii]nvalid|[Dd]imension|[Gg]ot"):
        session.run(None, {"input_0": _input((5,) + shape[1:])})


@pytest.mark.parametrize("build", [
    lambda: nn.Conv3d(2, 3, 3, stride=2, padding=1, bias=False),
    lambda: nn.Conv3d(2, 4, (1, 2, 3), padding="same", groups=2, dilation=(1, 2, 1)),
    lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, padding=1, output_padding=1),
    lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, groups=2, dilation=2),
    lambda: nn.ConvTranspose3d(2, 3, 2, stride=2),
    lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
    lambda: nn.Conv2d(2, 3, 3, padding=2, padding_mode="reflect", stride=2),
    lambda: nn.Conv2d(2, 3, 3, padding=1, data_format="channels_last"),
    lambda: nn.Sequential(nn.Conv1d(2, 3, 3), nn.LeakyReLU(0.1), nn.ELU(), nn.GELU(),
                          nn.SiLU(), nn.Softplus(), nn.Hardtanh(), nn.LogSoftmax(1)),
    lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.GroupNorm(2, 4), nn.LayerNorm(3),
                          nn.InstanceNorm1d(4, affine=True)),
], ids=["conv3d", "conv3d_same_groups", "convT1d", "convT2d_groups", "convT3d",
        "circular", "reflect", "channels_last", "activations", "norms"])
def test_onnx_conv_of_every_rank_and_activations(backend, build, tmp_path, ort):
    layer = build()
    layer.eval()
    rank = {nn.Conv1d: 1, nn.ConvTranspose1d: 1, nn.Conv2d: 2, nn.ConvTranspose2d: 2}
    r = next((v for k, v in rank.items() if type(layer) is k), 3)
    if isinstance(layer, nn.Sequential):
        r = 1
    shape = (2, 2) + (5,) * r
    if getattr(layer, "data_format", "") == "channels_last" or "channels_last" in repr(layer):
        shape = (2, 5, 5, 2)
    x = lucid.tensor(_input(shape))
    other = _input((3,) + shape[1:], seed=7)                 # dynamic_batch: another size
    ref, ref3 = layer(x).numpy(), layer(lucid.tensor(other)).numpy()
    path = tmp_path / "layer.onnx"
    to_onnx(layer, path, x)
    session = ort.InferenceSession(str(path))
    got = session.run(None, {"input_0": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(session.run(None, {"input_0": other})[0], ref3, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_onnx_opsets(numpy_backend, opset, tmp_path, ort):
    """ReduceMax and ReduceMean take their axes as an attribute before opset 18 and as an
    input from 18."""
    model, shape = conv1d_bn()
    model = nn.Sequential(nn.GroupNorm(2, 2), model)
    x = lucid.tensor(_input(shape))
    ref = _reference(model, x)
    path = tmp_path / "m.onnx"
    to_onnx(model, path, x, opset=opset)
    onnx = pytest.importorskip("onnx")
    assert onnx.load(str(path)).opset_import[0].version == opset
    got = ort.InferenceSession(str(path)).run(None, {"input_0": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@needs_mlx
def test_mlxfn_shapeless_runs_another_batch(backend, tmp_path):
    import mlx.core as mx

    model, shape = conv2d_bn()
    x = lucid.tensor(_input(shape))
    other = _input((5,) + shape[1:], seed=4)
    model.eval()
    ref, ref5 = model(x).numpy(), model(lucid.tensor(other)).numpy()
    path = tmp_path / "any_batch.mlxfn"
    to_mlxfn(model, path, x, shapeless=True)
    fn, meta = mx.import_function(str(path), return_metadata=True)
    np.testing.assert_allclose(np.array(fn(mx.array(other))[0]), ref5, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(fn(mx.array(x.numpy()))[0]), ref, rtol=1e-5, atol=1e-5)
    meta = json.loads(meta)
    assert meta["shapeless"] is True
    assert meta["inputs"] == [{"name": "input_0", "shape": [None, 2, 6, 6], "dtype": "float32",
                               "layout": "NCHW"}]
    assert meta["lucid_version"] == lucid.__version__
    # without shapeless, the file takes the example's shape only
    to_mlxfn(model, tmp_path / "fixed.mlxfn", x)
    with pytest.raises(ValueError):
        mx.import_function(str(tmp_path / "fixed.mlxfn"))(mx.array(other))


@needs_mlx
def test_mlxfn_shapeless_with_a_long_staged_sum(backend, tmp_path):
    """A global average over 1024 pixels: MLX's staged sum (blocks of 256) names no batch."""
    import mlx.core as mx

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(32), nn.Flatten())
    x = lucid.tensor(_input((2, 1, 32, 32)))
    path = tmp_path / "gap.mlxfn"
    to_mlxfn(model, path, x, shapeless=True)
    other = _input((3, 1, 32, 32), seed=8)
    got = mx.import_function(str(path))(mx.array(other))[0]
    np.testing.assert_allclose(np.array(got), model(lucid.tensor(other)).numpy(), rtol=1e-5,
                               atol=1e-5)


@needs_mlx
def test_mlxfn_shapeless_refused_where_mlx_cannot_replay(numpy_backend, tmp_path):
    """Padded pooling slices its input: MLX 0.32 cannot replay a Slice at another shape."""
    model, shape = conv1d_bn()
    path = tmp_path / "m.mlxfn"
    with pytest.raises(ValueError,
                       match="shapeless=True.*another batch size.*(Slice|Pad) cannot infer"):
        to_mlxfn(model, path, lucid.tensor(_input(shape)), shapeless=True)
    assert not path.exists()


@needs_mlx
def test_mlxfn_captures_strided_parameters_in_order(mlx_only, tmp_path):
    """A parameter whose MLX array is a transposed view: MLX 0.32 would write its memory as it
    lies (wrong order); the export captures a row-major copy."""
    import mlx.core as mx

    lin = nn.Linear(3, 2, bias=False)
    w = mx.transpose(mx.array(np.arange(6, dtype=np.float32).reshape(3, 2)))    # (2, 3) view
    mx.eval(w)
    lin.weight._set_data(w)
    x = lucid.tensor(_input((2, 3)))
    path = tmp_path / "lin.mlxfn"
    to_mlxfn(lin, path, x)
    got = mx.import_function(str(path))(mx.array(x.numpy()))[0]
    np.testing.assert_allclose(np.array(got), x.numpy() @ np.array(w).T, rtol=1e-6)
    assert lin.weight.data is w                              # the module keeps its own array


@needs_mlx
def test_mlxfn_pre_forward_projection_leaves_no_tracer(backend, tmp_path):
    """enforce="pre_forward" projects the kernel in place at each forward: during the export
    that write holds an MLX tracer, and the original array is put back afterwards."""
    conv = nn.ConstrainedConv2d(2, 2, 3, constraint="nonneg", enforce="pre_forward")
    x = lucid.tensor(_input((2, 2, 5, 5)))
    ref = conv(x).numpy()
    before = _state(conv)
    to_mlxfn(conv, tmp_path / "c.mlxfn", x)
    _same_state(before, conv)
    np.testing.assert_allclose(conv(x).numpy(), ref, rtol=1e-6)


@needs_mlx
def test_mlxfn_of_a_function(mlx_only, tmp_path):
    import mlx.core as mx

    def fn(a, b):
        return (a * b).sum(axis=1), a.exp()

    a, b = lucid.tensor(_input((2, 3))), lucid.tensor(_input((2, 3), 1))
    to_mlxfn(fn, tmp_path / "f.mlxfn", a, b)
    s, e = mx.import_function(str(tmp_path / "f.mlxfn"))(mx.array(a.numpy()), mx.array(b.numpy()))
    np.testing.assert_allclose(np.array(s), (a.numpy() * b.numpy()).sum(1), rtol=1e-5)
    np.testing.assert_allclose(np.array(e), np.exp(a.numpy()), rtol=1e-5)


@needs_mlx
def test_mlxfn_failed_trace_leaves_no_file_and_the_module_as_it_was(backend, tmp_path):
    class HostRead(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            y = self.lin(x)
            return y * float(y.sum().item())         # a value read while MLX traces

    model = HostRead()
    before = _state(model)
    path = tmp_path / "m.mlxfn"
    with pytest.raises(ValueError, match="eval"):           # MLX: no evaluation mid-trace
        to_mlxfn(model, path, lucid.tensor(_input((2, 3))))
    assert not path.exists()
    _same_state(before, model)
    assert model.training


def test_mlxfn_without_mlx_raises_import_error_naming_mlx(numpy_backend, tmp_path, monkeypatch):
    from lucid.export import mlxfn

    real = lucid.backends.load

    def no_mlx(name):
        if name == "mlx":
            raise ImportError("No module named 'mlx'")
        return real(name)

    monkeypatch.setattr(mlxfn.backends, "load", no_mlx)
    path = tmp_path / "m.mlxfn"
    with pytest.raises(ImportError, match="to_mlxfn needs mlx"):
        to_mlxfn(nn.Linear(2, 2), path, lucid.ones(2, 2))
    assert not path.exists()


class _Indexing(nn.Module):
    """Basic indexing (reversed and stepped slices, ints, None), cumsum, reductions, clip and
    a comparison feeding where: the movement and elementwise emitters."""

    def forward(self, x):
        return (x[..., ::-1], x[:, 1, None, 2:0:-1], x[:, -1:, 1].unsqueeze(-1),
                x.transpose(0, 2, 1).reshape(x.shape[0], -1).cumsum(1),
                x.max(axis=1).sum(axis=-1, keepdims=True),
                lucid.maximum(x, lucid.tensor(0.1)).clip(-1.0, 0.5).sqrt().log().abs(),
                lucid.where(x > 0.2, x, x * x).softmax(1))


def test_onnx_indexing_and_elementwise(backend, tmp_path, ort):
    path = tmp_path / "ix.onnx"
    model = _Indexing()
    to_onnx(model, path, lucid.tensor(_input((2, 3, 4))))
    session = ort.InferenceSession(str(path))
    for batch in (2, 5):
        x = _input((batch, 3, 4), seed=batch)
        got = session.run(None, {"input_0": x})
        refs = model(lucid.tensor(x))
        assert len(got) == len(refs) == 7
        for g, r in zip(got, refs):
            np.testing.assert_allclose(g, r.numpy(), rtol=1e-5, atol=1e-6)


class _BatchShapedConstant(nn.Module):
    def forward(self, x):
        return x + lucid.full_like(x, 0.5)        # a host-made tensor of the example's shape


class _FixedBatch(nn.Module):
    def forward(self, x):
        return x.reshape(2, 2, 2)


def test_onnx_model_of_one_batch_size_needs_fixed_batch(numpy_backend, tmp_path, ort):
    x = lucid.tensor(_input((2, 4)))
    with pytest.raises(ValueError, match="fails on an input of shape \\(3, 4\\).*"
                                         "dynamic_batch=False"):
        to_onnx(_FixedBatch(), tmp_path / "a.onnx", x)
    to_onnx(_FixedBatch(), tmp_path / "b.onnx", x, dynamic_batch=False)
    got = ort.InferenceSession(str(tmp_path / "b.onnx")).run(None, {"input_0": x.numpy()})[0]
    np.testing.assert_array_equal(got, x.numpy().reshape(2, 2, 2))


class _Loss(nn.Module):
    def forward(self, x):
        return nn.functional.cross_entropy(x, lucid.tensor([0, 3]))


class _ArgmaxHead(nn.Module):
    def forward(self, x):
        return x.argmax(1)


class _ValueBranch(nn.Module):
    """A forward that picks its op from a value it reads on the host."""

    def forward(self, x):
        return x.exp() if x.sum().item() > 0 else x.abs()


@pytest.mark.parametrize("module, x, error, match", [
    (_Loss(), (2, 4), NotImplementedError, "lucid op ClassLoss .* has no ONNX emitter"),
    (nn.Conv1d(1, 1, 3, input_dilation=2), (2, 1, 5), NotImplementedError,
     "lucid op Conv with input_dilation \\(2,\\) cannot be expressed"),
    (_ArgmaxHead(), (2, 4), ValueError, "output 0 is not computed"),
    (_ValueBranch(), (2, 4), ValueError, "branches on values"),
    (_BatchShapedConstant(), (2, 4), ValueError, "op Add depends on the model's input"),
], ids=["loss", "input_dilation", "argmax", "branch", "batch_shaped"])
def test_onnx_refuses_what_it_cannot_express(numpy_backend, module, x, error, match, tmp_path):
    pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    with pytest.raises(error, match=match):
        to_onnx(module, path, lucid.tensor(_input(x) + 3))
    assert not path.exists()
    assert tracing._recorder is None                        # the recording ended


@pytest.mark.parametrize("call, error, match", [
    (lambda p: to_onnx(nn.Linear(2, 2), p), ValueError, "at least one example input"),
    (lambda p: to_onnx(nn.Linear(2, 2), p, np.ones((2, 2))), TypeError,
     "example input 0 must be a lucid Tensor"),
    (lambda p: to_onnx(nn.Linear(2, 2), p / "no" / "m.onnx", lucid.ones(2, 2)),
     FileNotFoundError, "does not exist"),
    (lambda p: to_onnx(nn.Linear(2, 2), p, lucid.ones(2, 2), opset=12), ValueError,
     "opset must be an int in \\[13, "),
    (lambda p: to_onnx(nn.Linear(2, 2), p, lucid.ones(1, 2)), ValueError,
     "example batch of at least 2"),
    (lambda p: to_onnx(nn.Linear(2, 2), p, lucid.ones(2, 2), dynamic_batch=1), TypeError,
     "dynamic_batch must be a bool"),
    (lambda p: to_mlxfn(nn.Linear(2, 2), p, lucid.ones(2, 2), shapeless="yes"), TypeError,
     "shapeless must be a bool"),
    (lambda p: to_mlxfn(nn.Linear(2, 2).to(lucid.float64), p, lucid.ones(2, 2)), ValueError,
     "float64 .* MLX has no float64"),
    (lambda p: to_mlxfn(42, p, lucid.ones(2, 2)), TypeError, "a lucid Module or a function"),
], ids=["no_input", "array_input", "folder", "opset", "batch_1", "dynamic_bool",
        "shapeless_bool", "float64", "not_callable"])
def test_bad_arguments_raise_before_writing(numpy_backend, call, error, match, tmp_path):
    pytest.importorskip("onnx")
    path = tmp_path / "m.file"
    with pytest.raises(error, match=match):
        call(path if "folder" not in match else tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_onnx_metadata_records_the_inputs(numpy_backend, tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    to_onnx(nn.Conv1d(2, 3, 3), path, lucid.tensor(_input((2, 2, 6))))
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["lucid_version"] == lucid.__version__
    assert json.loads(props["inputs"]) == [{"name": "input_0", "shape": [None, 2, 6],
                                            "dtype": "float32", "layout": "NCL"}]


def test_onnx_half_precision_exports_as_float32(backend, tmp_path, ort):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(48, 2)).to(lucid.float16)
    x = lucid.tensor(_input((2, 2, 4, 4)).astype(np.float16))
    model.eval()
    ref = model(x).numpy().astype(np.float32)
    path = tmp_path / "half.onnx"
    to_onnx(model, path, x)
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].type == "tensor(float)"
    got = session.run(None, {"input_0": x.numpy().astype(np.float32)})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-2)     # lucid's own run is float16

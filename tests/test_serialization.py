"""Checkpoints: safetensors round trips, across backends, through MLX's and torch's loaders, and
bad files."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import backends, nn, optim


def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))


def test_round_trip(backend, tmp_path):
    m = _model()
    lucid.save(m.state_dict(), tmp_path / "m.safetensors")
    sd = lucid.load(tmp_path / "m.safetensors")
    assert list(sd) == list(m.state_dict())
    tracked = sd["1.num_batches_tracked"]
    assert tracked.dtype == lucid.int64 and tracked.shape == ()
    m2 = _model()
    m2.load_state_dict(sd)
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


@pytest.mark.skipif("mlx" not in backends.available(), reason="needs mlx")
def test_across_backends_and_mlx_loader(tmp_path):
    import mlx.core as mx
    with lucid.using_backend("mlx"):
        m = _model()
        lucid.save(m.state_dict(), tmp_path / "m.safetensors")
    with lucid.using_backend("numpy"):
        m2 = _model()
        m2.load_state_dict(lucid.load(tmp_path / "m.safetensors"))
        assert m2[0].weight.backend == "numpy"
    raw = mx.load(str(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(np.array(raw["0.weight"]), m[0].weight.numpy())
    np.testing.assert_array_equal(m2[0].weight.numpy(), m[0].weight.numpy())


def test_torch_loader(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    pytest.importorskip("torch")
    m = _model()
    lucid.save(m.state_dict(), tmp_path / "m.safetensors")
    raw = st_torch.load_file(str(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(raw["3.weight"].numpy(), m[3].weight.numpy())


def test_optimizer_state_and_metadata(backend, tmp_path):
    m = _model()
    opt = optim.Adam(m.parameters(), lr=0.01)
    m(lucid.random.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    lucid.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
                "note": "hi"}, tmp_path / "c.safetensors")
    c = lucid.load(tmp_path / "c.safetensors")
    assert c["epoch"] == 3 and c["note"] == "hi"
    opt2 = optim.Adam(m.parameters())
    opt2.load_state_dict(c["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    p0 = next(iter(m.parameters()))
    np.testing.assert_array_equal(np.array(opt2.state[p0]["exp_avg"]),
                                  np.array(opt.state[p0]["exp_avg"]))


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        lucid.load(tmp_path / "missing.safetensors")
    good = tmp_path / "g.safetensors"
    lucid.save(_model().state_dict(), good)
    data = good.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "c.safetensors").write_bytes(b"\xff" * 64)
    import pickle
    (tmp_path / "p.safetensors").write_bytes(pickle.dumps({"a": 1}))
    for name in ("t", "c", "p"):
        with pytest.raises(ValueError, match="not a valid safetensors checkpoint"):
            lucid.load(tmp_path / f"{name}.safetensors")
    with pytest.raises(TypeError, match="cannot save a set"):
        lucid.save({"x": {1, 2}}, tmp_path / "s.safetensors")

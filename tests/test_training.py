"""End to end: a small CNN learns a seeded task on each backend, both backends follow the same
trajectory, and a long MLX loop keeps memory flat."""

from __future__ import annotations

import functools
import operator

import numpy as np
import pytest

import lucid
from lucid import backends, nn, optim
from lucid.data import DataLoader, TensorDataset


def _task(n=256, seed=0):
    """Bright horizontal bar vs vertical bar in noise, 8x8."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.5
    y = rng.integers(0, 2, n)
    pos = rng.integers(1, 7, n)
    for i in range(n):
        if y[i]:
            x[i, 0, :, pos[i]] += 1.5
        else:
            x[i, 0, pos[i], :] += 1.5
    return x, y


def _cnn(constrained=False):
    first = (nn.ConstrainedConv2d(1, 4, 3, padding=1, constraint="zero_mean") if constrained
             else nn.Conv2d(1, 4, 3, padding=1))
    return nn.Sequential(first, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 2))


@pytest.mark.parametrize("constrained", [False, True])
def test_small_cnn_reaches_95_percent(backend, constrained):
    lucid.random.seed(0)
    x, y = _task()
    model = _cnn(constrained)
    opt = optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(lucid.tensor(x), lucid.tensor(y)), batch_size=32,
                        shuffle=True)
    for _ in range(6):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    xt, yt = _task(200, seed=1)
    model.eval()
    with lucid.no_grad():
        acc = (model(lucid.tensor(xt)).argmax(axis=1).numpy() == yt).mean()
    assert acc >= 0.95, acc


@pytest.mark.skipif("mlx" not in backends.available(), reason="needs both backends")
@pytest.mark.parametrize("make_opt", [lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                                      lambda p: optim.Adam(p, lr=0.01)], ids=["sgd", "adam"])
def test_backends_follow_the_same_trajectory(make_opt):
    x, y = _task(64)
    losses = {}
    lucid.random.seed(5)
    init = _cnn().state_dict()
    for name in ("numpy", "mlx"):
        with lucid.using_backend(name):
            model = _cnn()
            model.load_state_dict(init)
            opt = make_opt(model.parameters())
            xs, ys = lucid.tensor(x), lucid.tensor(y)
            out = []
            for step in range(20):
                sl = slice((step * 16) % 64, (step * 16) % 64 + 16)
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xs[sl]), ys[sl])
                loss.backward()
                opt.step()
                out.append(loss.item())
            losses[name] = np.array(out)
    np.testing.assert_allclose(losses["mlx"], losses["numpy"], rtol=1e-4)


def test_mlx_memory_stays_flat_over_1000_steps(mlx_only):
    import mlx.core as mx
    x, y = _task(32)
    model = _cnn(constrained=True)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = lucid.tensor(x), lucid.tensor(y)
    samples = []
    for step in range(1000):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xs), ys).backward()
        opt.step()
        if step in (50, 999):
            samples.append(mx.get_active_memory())
    assert samples[1] <= samples[0] + 256 * 1024, samples


def test_dataloader_batching_and_shuffle(backend):
    ds = TensorDataset(lucid.arange(10), lucid.arange(10) * 2)
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader(ds, 4, drop_last=True)) == 2
    lucid.random.seed(1)
    a = [b[0].tolist() for b in DataLoader(ds, 3, shuffle=True)]
    lucid.random.seed(1)
    b = [b[0].tolist() for b in DataLoader(ds, 3, shuffle=True)]
    assert a == b and a != [[0, 1, 2]]
    assert sorted(functools.reduce(operator.iadd, a, [])) == list(range(10))
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(lucid.zeros(3), lucid.zeros(4))

"""Optimizers against PyTorch's update rules, param groups, state dicts, schedulers, laziness."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
from lucid import nn, optim

try:
    import torch
except ImportError:
    torch = None

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.5}),
]


def _trajectory(make_opt, lib):
    w0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    target = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = []
    if lib == "torch":
        w = torch.tensor(w0, dtype=torch.float32, requires_grad=True)
        opt = make_opt([w])
        for _ in range(10):
            opt.zero_grad()
            ((w - torch.tensor(target, dtype=torch.float32)) ** 2).sum().backward()
            opt.step()
            out.append(w.detach().numpy().copy())
    else:
        w = nn.Parameter(lucid.tensor(w0))
        opt = make_opt([w])
        for _ in range(10):
            opt.zero_grad()
            ((w - lucid.tensor(target)) ** 2).sum().backward()
            opt.step()
            out.append(w.numpy().copy())
    return np.array(out)


@pytest.mark.skipif(torch is None, reason="torch not installed (optional oracle)")
@pytest.mark.parametrize("name,kw", CASES)
def test_ten_steps_match_torch(backend, name, kw):
    ours = _trajectory(lambda p: getattr(optim, name)(p, **kw), "lucid")
    theirs = _trajectory(lambda p: getattr(torch.optim, name)(p, **kw), "torch")
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_param_groups_and_state_dict_round_trip(backend):
    a, b = nn.Parameter(lucid.ones(2)), nn.Parameter(lucid.ones(3))
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    for _ in range(2):
        opt.zero_grad()
        ((a * a).sum() + (b * b).sum()).backward()
        opt.step()
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 2 and sd["param_groups"][1]["params"] == [1]
    opt2 = optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.5
    np.testing.assert_array_equal(np.array(opt2.state[b]["exp_avg"]),
                                  np.array(opt.state[b]["exp_avg"]))


def test_optimizer_errors():
    p = nn.Parameter(lucid.ones(1))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate must be >= 0"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="leaf Tensors that require grad"):
        optim.SGD([lucid.ones(1)], lr=0.1)


def test_schedulers():
    p = nn.Parameter(lucid.ones(1))
    opt = optim.SGD([p], lr=1.0)
    s = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(s.get_last_lr()[0])
        s.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt = optim.SGD([p], lr=1.0)
    c = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    got = []
    for _ in range(5):
        got.append(opt.param_groups[0]["lr"])
        c.step()
    expect = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(got, expect)


def test_step_evaluates_once(mlx_only, monkeypatch):
    from lucid import backends
    be = backends.load("mlx")
    calls = []
    real = be.eval
    monkeypatch.setattr(be, "eval", lambda *a: (calls.append(len(a)), real(*a)))
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(lucid.random.randn(5, 3)).sum().backward()
    assert calls == []                                   # forward and backward stay lazy
    opt.step()
    assert len(calls) == 1 and calls[0] == 4 * 4   # 4 params + their moments and step count
    # the loss a backward ran from is evaluated in the step's one sync: reading it is free
    calls.clear()
    loss = model(lucid.random.randn(5, 3)).sum()
    loss.backward()
    opt.step()
    assert len(calls) == 1 and calls[0] == 4 * 4 + 1
    assert np.isfinite(loss.item())


def test_step_evaluates_buffers_written_in_place(mlx_only, monkeypatch):
    """BatchNorm's running statistics (and any copy_ outside lucid.compile) are evaluated in
    the step's one sync: unevaluated, each step's update would chain onto the last one."""
    from lucid import backends
    be = backends.load("mlx")
    seen: list = []
    real = be.eval
    monkeypatch.setattr(be, "eval", lambda *a: (seen.append(list(a)), real(*a)))
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    extra = lucid.zeros(2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        model(lucid.random.randn(5, 3)).sum().backward()
        extra.copy_(extra + 1)
        opt.step()
        bn = model[1]
        written = [bn.running_mean.data, bn.running_var.data, bn.num_batches_tracked.data,
                   extra.data]
        assert len(seen) == 1
        assert all(any(a is w for a in seen[0]) for w in written)
        seen.clear()
    # written once, evaluated once: the next step has nothing left over
    model.eval()
    model(lucid.random.randn(5, 3)).sum().backward()
    opt.step()
    assert not any(any(a is bn.running_mean.data for a in call) for call in seen)
    np.testing.assert_allclose(extra.numpy(), [2.0, 2.0])

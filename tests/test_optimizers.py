"""RMSprop, Adagrad, NAdam, RAdam against PyTorch (25-step trajectories), compiled against
eager, and state-dict resumes."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import nn, optim

torch = pytest.importorskip("torch")

CASES = [
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.8, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.2, "lr_decay": 0.05, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5}),
    ("NAdam", {"lr": 0.02}),
    ("NAdam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.05}),
    ("RAdam", {"lr": 0.05, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.02, "weight_decay": 0.3, "decoupled_weight_decay": True, "eps": 1e-6}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
TARGET = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _loss(w, t):
    return ((w - t) ** 2 * (w - t) ** 2).sum() + (w * t).sum()


def _torch_trajectory(name, kw, steps=25):
    w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    opt = getattr(torch.optim, name)([w], **kw)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(w, torch.tensor(TARGET, dtype=torch.float32)).backward()
        opt.step()
        out.append(w.detach().numpy().copy())
    return np.array(out)


def _lucid_run(w, opt, steps, compiled=False):
    t = lucid.tensor(TARGET)

    def step():
        opt.zero_grad()
        loss = _loss(w, t)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = lucid.compile(step, state=[w, opt])
    out = []
    for _ in range(steps):
        step()
        out.append(w.numpy().copy())
    return np.array(out)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_25_steps_match_torch(backend, name, kw):
    w = nn.Parameter(lucid.tensor(W0))
    ours = _lucid_run(w, getattr(optim, name)([w], **kw), 25)
    np.testing.assert_allclose(ours, _torch_trajectory(name, kw), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name,kw", CASES[::2], ids=IDS[::2])
def test_compiled_matches_eager(backend, name, kw):
    runs = []
    for compiled in (False, True):
        w = nn.Parameter(lucid.tensor(W0))
        runs.append(_lucid_run(w, getattr(optim, name)([w], **kw), 8, compiled))
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_state_dict_resume(backend, name, kw):
    w = nn.Parameter(lucid.tensor(W0))
    whole = _lucid_run(w, getattr(optim, name)([w], **kw), 12)
    w = nn.Parameter(lucid.tensor(W0))
    opt = getattr(optim, name)([w], **kw)
    _lucid_run(w, opt, 5)
    sd = opt.state_dict()
    w2 = nn.Parameter(lucid.tensor(w.numpy()))
    opt2 = getattr(optim, name)([w2], **kw)
    opt2.load_state_dict(sd)
    np.testing.assert_allclose(_lucid_run(w2, opt2, 7), whole[5:], rtol=1e-5, atol=1e-6)


BAD = [("RMSprop", {"alpha": -0.1}), ("RMSprop", {"momentum": -1}), ("Adagrad", {"lr_decay": -1}),
       ("NAdam", {"betas": (1.0, 0.9)}), ("RAdam", {"eps": -1}), ("NAdam", {"momentum_decay": -1}),
       ("Adagrad", {"lr": -1})]


@pytest.mark.parametrize("name,kw", BAD)
def test_bad_hyper_parameters(name, kw):
    with pytest.raises(ValueError):
        getattr(optim, name)([nn.Parameter(lucid.zeros(2))], **kw)

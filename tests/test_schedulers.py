"""Learning-rate schedulers: 30-step sequences against PyTorch's (two param groups, momentum and
beta1 for OneCycleLR), state-dict resumes, argument checks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lucid
from lucid import nn, optim

torch = pytest.importorskip("torch")


class Halve:
    """A callable object as lr_lambda (its attributes are saved, as in PyTorch)."""

    def __init__(self) -> None:
        self.rate = 0.5

    def __call__(self, epoch):
        return self.rate ** (epoch // 7)


CASES = {
    "lambda": lambda S, o: S.LambdaLR(o, lambda e: 0.9 ** e + 0.1 * (e % 3)),
    "lambda-list": lambda S, o: S.LambdaLR(o, [lambda e: 1.0 / (e + 1), Halve()]),
    "multistep": lambda S, o: S.MultiStepLR(o, [3, 8, 8, 20], gamma=0.5),
    "multistep-unsorted": lambda S, o: S.MultiStepLR(o, [12, 4], gamma=0.3),
    "exponential": lambda S, o: S.ExponentialLR(o, 0.9),
    "exponential-slow": lambda S, o: S.ExponentialLR(o, 0.995),
    "linear": lambda S, o: S.LinearLR(o),
    "linear-warmup": lambda S, o: S.LinearLR(o, start_factor=0.1, end_factor=1.0,
                                             total_iters=8),
    "linear-decay": lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                            total_iters=25),
    "onecycle": lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=31),
    "onecycle-linear": lambda S, o: S.OneCycleLR(o, max_lr=0.8, epochs=4, steps_per_epoch=8,
                                                 pct_start=0.25, anneal_strategy="linear",
                                                 div_factor=10.0, base_momentum=0.8),
    "onecycle-3phase": lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=40,
                                                 three_phase=True, final_div_factor=100.0),
    "onecycle-nomomentum": lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=30 + 1,
                                                     cycle_momentum=False),
    "sequential": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.2, total_iters=5), S.ExponentialLR(o, 0.9)], [5]),
    "sequential-3": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.5, total_iters=3), S.MultiStepLR(o, [4, 9], 0.5),
            S.CosineAnnealingLR(o, 10, eta_min=0.01)], [6, 18]),
    "step": lambda S, o: S.StepLR(o, 4, 0.5),
}


def _optimizer(lib, kind):
    if lib == "torch":
        ps = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
        O = torch.optim
    else:
        ps = [nn.Parameter(lucid.zeros(2)), nn.Parameter(lucid.zeros(3))]
        O = optim
    groups = [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.3}]
    if kind == "adam":
        return O.Adam(groups, lr=0.1, betas=(0.9, 0.99))
    return O.SGD(groups, lr=0.1, momentum=0.9)


def _record(opt):
    out = [g["lr"] for g in opt.param_groups]
    for key in ("momentum", "betas"):
        if key in opt.param_groups[0]:
            out += [np.ravel(g[key])[0] for g in opt.param_groups]
    return out


def _sequence(lib, name, kind, steps=30):
    opt = _optimizer(lib, kind)
    S = torch.optim.lr_scheduler if lib == "torch" else optim.lr_scheduler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = CASES[name](S, opt)
        seq = [_record(opt)]
        for _ in range(steps):
            opt.step()
            sched.step()
            seq.append(_record(opt))
    return np.array(seq, dtype=np.float64), sched, opt


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(CASES))
def test_30_steps_match_torch(name, kind):
    ours, sched, _ = _sequence("lucid", name, kind)
    theirs, tsched, _ = _sequence("torch", name, kind)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_resume_from_state_dicts(name):
    whole, _, _ = _sequence("lucid", name, "adam", 20)
    _, sched, opt = _sequence("lucid", name, "adam", 9)
    s_sd, o_sd = sched.state_dict(), opt.state_dict()
    opt2 = _optimizer("lucid", "adam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched2 = CASES[name](optim.lr_scheduler, opt2)
    opt2.load_state_dict(o_sd)
    sched2.load_state_dict(s_sd)
    rest = [_record(opt2)]
    for _ in range(11):
        opt2.step()
        sched2.step()
        rest.append(_record(opt2))
    np.testing.assert_allclose(np.array(rest), whole[9:], rtol=1e-12)


METRICS = [1.0, 0.9, 0.95, 0.9, 0.91, 0.92, 0.93, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9,
           0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.69999, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
PLATEAU = [
    {"patience": 4},
    {"patience": 2, "factor": 0.5, "cooldown": 1, "min_lr": [0.01, 0.05]},
    {"mode": "max", "patience": 1, "threshold": 0.05, "threshold_mode": "abs", "factor": 0.3},
]


def _plateau(lib, kw, metrics):
    opt = _optimizer(lib, "sgd")
    S = torch.optim.lr_scheduler if lib == "torch" else optim.lr_scheduler
    sched = S.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        sched.step(m)
        out.append([g["lr"] for g in opt.param_groups])
    return np.array(out), sched, opt


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_matches_torch(kw):
    ours, _, _ = _plateau("lucid", kw, METRICS)
    theirs, _, _ = _plateau("torch", kw, METRICS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert (np.diff(ours[:, 0]) != 0).any()


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_resume(kw):
    whole, _, _ = _plateau("lucid", kw, METRICS)
    _, sched, opt = _plateau("lucid", kw, METRICS[:12])
    opt2 = _optimizer("lucid", "sgd")
    sched2 = optim.lr_scheduler.ReduceLROnPlateau(opt2, **kw)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    rest = []
    for m in METRICS[12:]:
        sched2.step(lucid.tensor(m))                    # a 0-d Tensor metric reads as a float
        rest.append([g["lr"] for g in opt2.param_groups])
    np.testing.assert_allclose(np.array(rest), whole[12:], rtol=1e-6)


def test_onecycle_past_total_steps():
    opt = _optimizer("lucid", "sgd")
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()


@pytest.mark.parametrize("make", [
    lambda S, o: S.LinearLR(o, start_factor=0.0),
    lambda S, o: S.LinearLR(o, end_factor=1.5),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
    lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
    lambda S, o: S.OneCycleLR(o, max_lr=[1.0], total_steps=10),
    lambda S, o: S.ReduceLROnPlateau(o, factor=1.0),
    lambda S, o: S.ReduceLROnPlateau(o, mode="up"),
    lambda S, o: S.LambdaLR(o, [lambda e: 1.0]),
    lambda S, o: S.SequentialLR(o, [S.ExponentialLR(o, 0.9)], [3]),
])
def test_bad_arguments(make):
    with pytest.raises(ValueError):
        make(optim.lr_scheduler, _optimizer("lucid", "sgd"))


def test_onecycle_needs_momentum():
    with pytest.raises(ValueError, match="momentum"):
        optim.lr_scheduler.OneCycleLR(optim.Adagrad([nn.Parameter(lucid.zeros(1))]), 1.0,
                                      total_steps=5)
    assert math.isclose(optim.lr_scheduler.OneCycleLR(
        optim.Adagrad([nn.Parameter(lucid.zeros(1))]), 1.0, total_steps=5,
        cycle_momentum=False).get_last_lr()[0], 0.04)

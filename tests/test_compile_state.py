"""lucid.compile resolves its state once per structure version: every change of layout made
between two calls (a replaced parameter, eval mode, a new param group, a hyper-parameter, a
loaded optimizer state, a requires_grad flag) takes effect on the next call, exactly as eagerly."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import nn, optim, structure


def _replace_weight(model, opt):
    new = nn.Parameter(lucid.tensor(np.full((3, 4), 0.25, np.float32)))
    model[0].weight = new
    opt.param_groups[0]["params"][0] = new       # the optimizer follows (a plain list slot)
    opt.state[new] = {}
    opt._init_state(new, opt.state[new])


def _eval(model, opt):
    model.eval()


def _add_group(model, opt):
    extra = nn.Parameter(lucid.tensor(np.full(3, 0.5, np.float32)))
    model.extra = extra
    opt.add_param_group({"params": [extra], "lr": 0.2})


def _hyper(model, opt):
    opt.param_groups[0]["weight_decay"] = 0.5
    opt.param_groups[0]["betas"] = (0.5, 0.9)


def _lr(model, opt):
    opt.param_groups[0]["lr"] = 0.02              # an input: no new trace, a new value


def _beta_off(model, opt):
    opt.param_groups[0]["betas"] = (0.0, 0.999)   # an input, but a zero: traced again


def _beta_in_place(model, opt):
    opt.param_groups[0]["betas"][0] = 0.5          # the list itself changes (see _run)


def _load_state(model, opt):
    sd = opt.state_dict()
    for entry in sd["state"].values():
        entry["exp_avg"] = entry["exp_avg"] * 0 + 0.3
        entry["step"] = 7
    opt.load_state_dict(sd)


def _freeze_bias(model, opt):
    model[0].bias.requires_grad = False          # a plain attribute, no structure bump


CHANGES = {"replace_parameter": _replace_weight, "eval": _eval, "add_param_group": _add_group,
           "hyper_parameter": _hyper, "lr": _lr, "beta_off": _beta_off,
           "beta_list_in_place": _beta_in_place, "load_optimizer_state": _load_state,
           "requires_grad_attribute": _freeze_bias}


def _run(compiled: bool, change) -> tuple[list[float], dict]:
    lucid.random.seed(0)
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    opt = optim.Adam(model.parameters(), lr=0.1)
    # betas as a list, so that a change can edit it in place (nothing tells lucid.compile)
    opt.param_groups[0]["betas"] = [0.9, 0.999]

    def step(x):
        opt.zero_grad()
        out = model(x)
        if "extra" in model._parameters:
            out = out * model.extra
        loss = (out * out).mean()
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = lucid.compile(step, state=[model, opt])
    losses = []
    for i in range(4):
        if i == 2:
            change(model, opt)
        x = lucid.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        losses.append(step(x).item())
    return losses, {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_change_between_calls_takes_effect_on_the_next_call(backend, change):
    eager, eager_state = _run(False, CHANGES[change])
    comp, comp_state = _run(True, CHANGES[change])
    # compiled Adam computes 1 - beta in float32 (betas are traced inputs): 1e-4, not 1e-6
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    assert comp_state.keys() == eager_state.keys()
    for k, v in eager_state.items():
        np.testing.assert_allclose(comp_state[k], v, rtol=1e-4, atol=1e-5, err_msg=k)


def test_the_state_is_resolved_once_per_structure_version(mlx_only):
    model = nn.Linear(4, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    @lucid.compile(state=[model, opt])
    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    x = lucid.ones(3, 4)
    step(x)
    step(x)
    first = step._resolved
    v = structure.version()
    for _ in range(3):
        step(x)
    assert structure.version() == v                 # a call changes no layout
    assert step._resolved is first                   # and walks nothing again
    assert len(step._traces) == 2                    # no grads on the first call, then grads
    opt.param_groups[0]["lr"] = 0.05                 # an input: no new layout
    step(x)
    assert step._resolved is first
    opt.param_groups[0]["momentum"] = 0.5            # an input too (OneCycleLR cycles it)
    step(x)
    assert step._resolved is first and len(step._traces) == 2
    opt.param_groups[0]["weight_decay"] = 0.1        # a traced constant: resolved again
    step(x)
    assert step._resolved is not first and len(step._traces) == 3


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_one_cycle_momentum_takes_effect_without_retracing(backend, opt_name):
    def run(compiled):
        lucid.random.seed(0)
        model = nn.Linear(4, 3)
        opt = getattr(optim, opt_name)(model.parameters(), lr=0.05,
                                       **({"momentum": 0.9} if opt_name == "SGD" else {}))
        sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=8)

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        if compiled:
            step = lucid.compile(step, state=[model, opt])
        x = lucid.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
        losses = []
        for _ in range(6):
            losses.append(step(x).item())
            sched.step()
        return losses, model.weight.numpy(), step

    eager, w_e, _ = run(False)
    comp, w_c, step = run(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w_c, w_e, rtol=1e-4, atol=1e-6)
    if backend == "mlx":
        assert len(step._traces) <= 2          # first call (no grads) and the rest


def test_versions_count_mutations():
    model = nn.Sequential(nn.Linear(2, 2))
    v = model._version
    model.train(False)
    assert model._version == v + 1 and model[0]._version >= 1
    model.train(False)                               # no change, no bump
    assert model._version == v + 1
    model.register_buffer("b", lucid.zeros(1))
    assert model._version > v + 1
    opt = optim.Adam(model.parameters())
    assert all(s.keys() == {"step", "exp_avg", "exp_avg_sq"} for s in opt.state.values())
    w = opt._version
    opt.param_groups[0]["lr"] = 0.5                  # lr is an input of a compiled step
    assert opt._version == w
    opt.param_groups[0]["eps"] = 1e-6
    assert opt._version == w + 1
    t = model[0].weight
    g = structure.version()
    t._set_data(t.data * 2)                          # same shape and dtype: no bump
    assert structure.version() == g
    t._set_data(lucid.zeros(3, 2).data)
    assert structure.version() == g + 1

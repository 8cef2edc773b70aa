"""NAdam and RAdam (PyTorch's update rules, with their ``decoupled_weight_decay`` option)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid.optim.optimizer import Optimizer


def _check(betas: tuple[float, float], eps: float) -> None:
    if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
        raise ValueError(f"betas must be in [0, 1), got {betas}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


class _AdamFamily(Optimizer):
    """The shared start of an update: weight decay (L2 into the gradient, or decoupled: p
    shrinks by 1 − lr·wd), the step count, and both moments."""

    def _init_state(self, p, state):
        zeros = p._be.full(tuple(p.data.shape), 0.0, p._be.dtype_name(p.data))
        state.update(step=self._step_array(p), **self._extra_state(p), exp_avg=zeros,
                     exp_avg_sq=zeros)

    def _extra_state(self, p) -> dict:
        return {}

    def _moments(self, p, grad, group, state):
        be = p._be
        data = p.data
        (b1, b2), wd = group["betas"], group["weight_decay"]
        if wd and group["decoupled_weight_decay"]:
            data = be.multiply(data, self._scalar(1.0 - group["lr"] * wd, data, be))
        elif wd:
            grad = be.add(grad, be.multiply(data, wd))
        self._next_step(state, be)
        # betas: numbers, or traced arrays inside lucid.compile (OneCycleLR cycles beta1)
        m = be.add(be.multiply(state["exp_avg"], self._scalar(b1, data, be)),
                   be.multiply(grad, self._scalar(1.0 - b1, data, be)))
        v = be.add(be.multiply(state["exp_avg_sq"], self._scalar(b2, data, be)),
                   be.multiply(be.multiply(grad, grad), self._scalar(1.0 - b2, data, be)))
        state["exp_avg"], state["exp_avg_sq"] = m, v
        return be, data, grad, m, v, state["step"]


class NAdam(_AdamFamily):
    """Adam with Nesterov momentum and momentum decay ψ: μ_t = β1·(1 − ½·0.96^(t·ψ));
    p = p − lr·(1 − μ_t)/(1 − Πμ)·g/d − lr·μ_{t+1}/(1 − Πμ·μ_{t+1})·m/d with
    d = sqrt(v / (1 − β2ᵗ)) + eps."""

    def __init__(self, params: Iterable[Any], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False) -> None:
        _check(betas, eps)
        if momentum_decay < 0:
            raise ValueError(f"momentum_decay must be >= 0, got {momentum_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "momentum_decay": momentum_decay,
                                  "decoupled_weight_decay": bool(decoupled_weight_decay)})

    def _extra_state(self, p) -> dict:
        return {"mu_product": p._be.full((), 1.0, "float32")}

    def _update(self, p, grad, group, state):
        be, data, grad, m, v, t = self._moments(p, grad, group, state)
        (b1, b2), psi, lr = group["betas"], group["momentum_decay"], group["lr"]
        # t, lr and mu_product are numbers eagerly and 0-d arrays inside lucid.compile
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] = prod = be.asarray(state["mu_product"] * mu, "float32")
        denom = be.add(be.sqrt(be.divide(v, self._scalar(1.0 - b2 ** t, data, be))),
                       group["eps"])
        c_grad = self._scalar(lr * (1.0 - mu) / (1.0 - prod), data, be)
        c_avg = self._scalar(lr * mu_next / (1.0 - prod * mu_next), data, be)
        data = be.subtract(data, be.multiply(be.divide(grad, denom), c_grad))
        p._set_data(be.subtract(data, be.multiply(be.divide(m, denom), c_avg)))


class RAdam(_AdamFamily):
    """Rectified Adam: with ρ∞ = 2/(1 − β2) − 1 and ρ_t = ρ∞ − 2t·β2ᵗ/(1 − β2ᵗ), the step is
    lr·m̂·r·sqrt(1 − β2ᵗ)/(sqrt(v) + eps) when ρ_t > 5 (r the variance rectification) and
    plain momentum lr·m̂ before that; m̂ = m / (1 − β1ᵗ)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        _check(betas, eps)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": bool(decoupled_weight_decay)})

    def _update(self, p, grad, group, state):
        be, data, grad, m, v, t = self._moments(p, grad, group, state)
        (b1, b2), lr = group["betas"], group["lr"]
        bc2 = 1.0 - b2 ** t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2 ** t / bc2
        step = be.multiply(m, self._scalar(lr / (1.0 - b1 ** t), data, be))
        adaptive = be.divide(self._scalar(bc2 ** 0.5, data, be), be.add(be.sqrt(v), group["eps"]))
        if isinstance(rho_t, float):                  # eagerly: PyTorch's branch
            if rho_t > 5.0:
                step = be.multiply(be.multiply(step, adaptive), _rect(rho_t, rho_inf))
        else:                                         # traced (lucid.compile): a select
            ok = rho_t > 5.0
            safe = be.where(ok, rho_t, 6.0)           # the rectification of a valid ρ only
            scale = be.multiply(adaptive, self._scalar(_rect(safe, rho_inf), data, be))
            step = be.multiply(step, be.where(ok, scale, 1.0))
        p._set_data(be.subtract(data, step))


def _rect(rho_t: Any, rho_inf: float) -> Any:
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5

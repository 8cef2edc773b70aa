"""Adam and AdamW (PyTorch's update rules, without amsgrad)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid.optim.optimizer import Optimizer


class Adam(Optimizer):
    """m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
    p = p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + eps). Adam adds wd·p to g; AdamW
    instead shrinks p by (1 − lr·wd) first (decoupled weight decay)."""

    decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay})

    def _init_state(self, p, state):
        zeros = p._be.full(tuple(p.data.shape), 0.0, p._be.dtype_name(p.data))
        state.update(step=self._step_array(p), exp_avg=zeros, exp_avg_sq=zeros)

    def _update(self, p, grad, group, state):
        be = p._be
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        data = p.data
        if wd and self.decoupled:
            data = be.multiply(data, self._scalar(1.0 - lr * wd, data, be))
        elif wd:
            grad = be.add(grad, be.multiply(data, wd))
        # step is a 0-d array; lr a Python number eagerly and a traced 0-d array inside
        # lucid.compile: the arithmetic below is written for both (math.sqrt would not take one)
        t = self._next_step(state, be)
        # betas: numbers, or traced arrays inside lucid.compile (OneCycleLR cycles beta1)
        m = be.add(be.multiply(state["exp_avg"], self._scalar(b1, data, be)),
                   be.multiply(grad, self._scalar(1.0 - b1, data, be)))
        v = be.add(be.multiply(state["exp_avg_sq"], self._scalar(b2, data, be)),
                   be.multiply(be.multiply(grad, grad), self._scalar(1.0 - b2, data, be)))
        state["exp_avg"], state["exp_avg_sq"] = m, v
        step_size = self._scalar(lr / (1.0 - b1 ** t), data, be)
        denom = be.add(be.divide(be.sqrt(v), self._scalar((1.0 - b2 ** t) ** 0.5, data, be)), eps)
        p._set_data(be.subtract(data, be.multiply(be.divide(m, denom), step_size)))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW, default
    ``weight_decay=1e-2``)."""

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)

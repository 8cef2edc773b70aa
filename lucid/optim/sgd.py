"""SGD with momentum, dampening, Nesterov and weight decay (PyTorch's update rule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid.optim.optimizer import Optimizer


class SGD(Optimizer):
    """g = grad + wd·p; buf = g (first step) or momentum·buf + (1 − dampening)·g;
    g = g + momentum·buf (nesterov) or buf; p = p − lr·g."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _init_state(self, p, state):
        group = self._group_of(p)
        # with no dampening a zero buffer gives PyTorch's first step exactly (buf = 0·μ + g = g)
        # and fixes the state's layout from the start; with dampening the first step must set
        # buf = g undamped, so the buffer is created then (at first sight)
        if group["momentum"] and not group["dampening"]:
            state["momentum_buffer"] = p._be.full(tuple(p.data.shape), 0.0,
                                                  p._be.dtype_name(p.data))

    def _update(self, p, grad, group, state):
        be = p._be
        if group["weight_decay"]:
            grad = be.add(grad, be.multiply(p.data, group["weight_decay"]))
        mu = group["momentum"]              # a number, or a traced array (OneCycleLR cycles it)
        if self._on(mu):
            mu = self._scalar(mu, p.data, be)
            if "momentum_buffer" not in state:
                buf = grad
            else:
                damped = grad if not group["dampening"] else \
                    be.multiply(grad, 1.0 - group["dampening"])
                buf = be.add(be.multiply(state["momentum_buffer"], mu), damped)
            state["momentum_buffer"] = buf
            grad = be.add(grad, be.multiply(buf, mu)) if group["nesterov"] else buf
        lr = self._scalar(group["lr"], p.data, be)
        p._set_data(be.subtract(p.data, be.multiply(grad, lr)))

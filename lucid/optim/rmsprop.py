"""RMSprop (PyTorch's update rule: optional momentum, centred variance, weight decay)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """g = grad + wd·p; v = α·v + (1 − α)·g²; with ``centered`` also m = α·m + (1 − α)·g and
    the denominator sqrt(v − m²) + eps, else sqrt(v) + eps; then either
    p = p − lr·g/denom, or (momentum μ > 0) buf = μ·buf + g/denom, p = p − lr·buf."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        if not 0.0 <= alpha:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, got {momentum}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": bool(centered)})

    def _init_state(self, p, state):
        zeros = p._be.full(tuple(p.data.shape), 0.0, p._be.dtype_name(p.data))
        state.update(step=self._step_array(p), square_avg=zeros)

    def _update(self, p, grad, group, state):
        be = p._be
        data = p.data
        alpha, eps, wd, mu = group["alpha"], group["eps"], group["weight_decay"], \
            group["momentum"]
        if wd:
            grad = be.add(grad, be.multiply(data, wd))
        # momentum and centering may be switched on after construction: their buffers start
        # at zeros at first sight (PyTorch creates them in its first step, also as zeros)
        if self._on(mu) and "momentum_buffer" not in state:
            state["momentum_buffer"] = be.full(tuple(data.shape), 0.0, be.dtype_name(data))
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = be.full(tuple(data.shape), 0.0, be.dtype_name(data))
        self._next_step(state, be)
        v = be.add(be.multiply(state["square_avg"], alpha),
                   be.multiply(be.multiply(grad, grad), 1.0 - alpha))
        state["square_avg"] = v
        if group["centered"]:
            m = be.add(be.multiply(state["grad_avg"], alpha), be.multiply(grad, 1.0 - alpha))
            state["grad_avg"] = m
            v = be.subtract(v, be.multiply(m, m))
        denom = be.add(be.sqrt(v), eps)
        lr = self._scalar(group["lr"], data, be)
        step = be.divide(grad, denom)
        if self._on(mu):                    # mu: a number, or a traced array (OneCycleLR)
            step = be.add(be.multiply(state["momentum_buffer"], self._scalar(mu, data, be)),
                          step)
            state["momentum_buffer"] = step
        p._set_data(be.subtract(data, be.multiply(step, lr)))

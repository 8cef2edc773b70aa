"""Adagrad (PyTorch's update rule, dense gradients)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """g = grad + wd·p; clr = lr / (1 + (t − 1)·lr_decay); s = s + g²;
    p = p − clr·g / (sqrt(s) + eps), with s starting at ``initial_accumulator_value``."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        if lr_decay < 0:
            raise ValueError(f"lr_decay must be >= 0, got {lr_decay}")
        if initial_accumulator_value < 0:
            raise ValueError(f"initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "eps": eps})

    def _init_state(self, p, state):
        group = self._group_of(p)
        state.update(step=self._step_array(p), sum=p._be.full(
            tuple(p.data.shape), float(group["initial_accumulator_value"]),
            p._be.dtype_name(p.data)))

    def _update(self, p, grad, group, state):
        be = p._be
        data = p.data
        if group["weight_decay"]:
            grad = be.add(grad, be.multiply(data, group["weight_decay"]))
        t = self._next_step(state, be)
        # t (and lr) are numbers eagerly, traced 0-d arrays inside lucid.compile: both work here
        clr = self._scalar(group["lr"] / (1 + (t - 1) * group["lr_decay"]), data, be)
        s = be.add(state["sum"], be.multiply(grad, grad))
        state["sum"] = s
        std = be.add(be.sqrt(s), group["eps"])
        p._set_data(be.subtract(data, be.multiply(be.divide(grad, std), clr)))

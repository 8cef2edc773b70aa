"""Optimizer base: param groups, zero_grad, and a step that writes one update per parameter, runs
post-step constraint projections, then evaluates everything once (one sync per step on MLX)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lucid import tracing
from lucid.autograd import no_grad
from lucid.nn.utils import parametrize
from lucid.tensor import Tensor


class Optimizer:
    """Subclasses set ``defaults`` and write ``_update(p, grad, group, state)`` on raw arrays
    through ``p._be``; ``state`` is the parameter's dict of arrays (empty on its first step)."""

    def __init__(self, params: Iterable[Any], defaults: dict) -> None:
        self.defaults = defaults
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(f"optimizer parameters must be leaf Tensors that require grad, "
                                f"got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError("a parameter appears in more than one parameter group")
            seen.add(id(p))
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        if group["lr"] < 0:
            raise ValueError(f"learning rate must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=False``: set it to zeros instead)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.zero_grad_(set_to_none)

    @no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, re-project post_step constraints, then
        evaluate parameters and state once."""
        loss = None
        if closure is not None:
            from lucid.autograd import enable_grad
            with enable_grad():
                loss = closure()
        touched = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.setdefault(p, {})
                self._update(p, p.grad.data, group, state)
                touched.append(p)
        parametrize.after_step(touched)         # post_step constraints, projected in place
        if tracing.active() is None:            # inside lucid.compile the call's end evaluates
            self._evaluate(touched)
        return loss

    def _evaluate(self, params: list[Tensor]) -> None:
        by_backend: dict[Any, list] = {}
        for p in params:
            if not p._be.lazy:
                continue                          # an eager backend has nothing pending
            arrays = by_backend.setdefault(p._be, [])
            arrays.append(p.data)
            arrays.extend(v for v in self.state.get(p, {}).values()
                          if not isinstance(v, (int, float)))
        for be, arrays in by_backend.items():
            be.eval(*arrays)

    def _update(self, p: Tensor, grad: Any, group: dict, state: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _scalar(value: Any, like: Any, be: Any) -> Any:
        """A hyper-parameter or step-dependent factor as a Python number, or (inside
        lucid.compile, where lr and step counts are traced 0-d arrays) as an array of like's
        dtype, so that a float16 parameter stays float16."""
        if isinstance(value, (int, float)):
            return value
        return be.astype(value, be.dtype_name(like))

    # -- state ---------------------------------------------------------------------------------
    def _all_params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict:
        """{"state": {index: {name: Tensor | number}}, "param_groups": [{hyper-params,
        "params": [indices]}]} — parameters by position, as PyTorch."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {}
        for p, s in self.state.items():
            state[index[id(p)]] = {k: (v if isinstance(v, (int, float)) else
                                       Tensor._wrap(v, p._be)) for k, v in s.items()}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("optimizer state_dict does not match this optimizer's parameter "
                             "groups")
        params = self._all_params()
        for own, saved in zip(self.param_groups, groups):
            own.update({k: (tuple(v) if isinstance(v, list) else v)
                        for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in sd["state"].items():
            p = params[int(i)]
            self.state[p] = {k: (v if isinstance(v, (int, float)) else p._be.asarray(
                v.numpy() if isinstance(v, Tensor) else v, p._be.dtype_name(p.data)))
                for k, v in s.items()}

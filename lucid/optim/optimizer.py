"""Optimizer base: param groups, zero_grad, and a step that writes one update per parameter, runs
post-step constraint projections, then evaluates everything once (one sync per step on MLX)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lucid import autograd, structure, tracing
from lucid.autograd import no_grad
from lucid.nn.utils import parametrize
from lucid.tensor import Tensor

# hyper-parameters that lucid.compile passes into a trace as inputs (a scheduler changes them
# between calls without a retrace: lr, and OneCycleLR's cycled momentum or beta1), so changing
# them is not a change of layout. Optimizers must accept them as 0-d arrays: through
# ``_scalar`` where they meet a parameter's arrays, ``_on`` where they branch on "non-zero"
INPUT_HYPERPARAMETERS = frozenset({"lr", "momentum", "betas"})


class ParamGroup(dict):
    """A parameter group: a dict (``group["lr"]``, ``group["params"]``) that records every change
    of a hyper-parameter other than the inputs (``INPUT_HYPERPARAMETERS``) in its optimizer's
    structure version, so a compiled step traced for the old value is never reused."""

    def __init__(self, owner: Optimizer, items: dict) -> None:
        super().__init__(items)
        self._owner = owner

    def _changed(self, key: Any) -> None:
        if key not in INPUT_HYPERPARAMETERS:
            owner = self.__dict__.get("_owner")
            if owner is not None:
                owner._touch()

    def __setitem__(self, key: Any, value: Any) -> None:
        self._changed(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._changed(key)
        super().__delitem__(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._changed(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        self._changed(None)
        super().clear()


class Optimizer:
    """Subclasses set ``defaults``, create a parameter's state in ``_init_state(p, state)`` (the
    moments as zeros and ``step`` as a 0-d float32 array, as MLX's ``init_single``: run for every
    parameter at construction, so the state's layout is fixed before the first step) and write
    ``_update(p, grad, group, state)`` on raw arrays through ``p._be``.

    ``_version`` is the structure version (see ``lucid.structure``): adding a group, changing a
    hyper-parameter other than ``lr``, creating state entries or loading a state dict bump it."""

    def __init__(self, params: Iterable[Any], defaults: dict) -> None:
        self.defaults = defaults
        self._version = 0
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict] = []
        self._state: dict[Tensor, dict] = {}
        for g in groups:
            self.add_param_group(g)

    def _touch(self) -> None:
        """Record a change of this optimizer's layout (groups, hyper-parameters, state names)."""
        self._version = self.__dict__.get("_version", 0) + 1
        structure.bump()

    @property
    def state(self) -> dict[Tensor, dict]:
        """Per-parameter state: {parameter: {name: array}}."""
        return self._state

    @state.setter
    def state(self, value: dict[Tensor, dict]) -> None:
        self._state = value
        self._touch()

    def _init_state(self, p: Tensor, state: dict) -> None:
        """Create ``p``'s state entries in ``state`` (empty): nothing by default."""

    def _group_of(self, p: Tensor) -> dict:
        """The param group holding p."""
        return next(g for g in self.param_groups if any(q is p for q in g["params"]))

    def _step_array(self, p: Tensor) -> Any:
        """A step count starting at 0: a 0-d float32 array (exact up to 2**24 steps), so that a
        compiled step carries it as an array and nothing reads it on the host."""
        return p._be.full((), 0.0, "float32")

    @staticmethod
    def _next_step(state: dict, be: Any) -> Any:
        """state["step"] + 1, as a 0-d array (NumPy's 0-d arithmetic returns a scalar)."""
        step = state["step"]
        if isinstance(step, (int, float)):      # a state dict saved with a Python number
            step = be.full((), float(step), "float32")
        t = be.add(step, 1.0)
        if not be.lazy:                         # NumPy: a 0-d array again (no op on MLX)
            t = be.asarray(t, "float32")
        state["step"] = t
        return t

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
        self.param_groups.append(ParamGroup(self, group))
        for p in group["params"]:               # the state exists from the start (init_single)
            if p not in self._state:
                self._state[p] = {}
                self._init_state(p, self._state[p])
        self._touch()

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
        evaluate parameters and state once, with the loss of the last backward and the tensors
        written in place since the last step (BatchNorm's running statistics)."""
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
                state = self._state.get(p)
                if state is None:               # dropped by load_state_dict: create it now
                    state = self._state[p] = {}
                    self._init_state(p, state)
                    self._touch()
                n = len(state)
                self._update(p, p.grad.data, group, state)
                if len(state) != n:             # an entry created at first sight: new layout
                    self._touch()
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
        for t in autograd.take_lazy_writes():  # buffers written in place (running stats)
            by_backend.setdefault(t._be, []).append(t.data)
        root = autograd.take_last_root()       # the loss, evaluated in the same sync
        if root is not None and root._be in by_backend:
            by_backend[root._be].append(root.data)
        for be, arrays in by_backend.items():
            be.eval(*arrays)

    def _update(self, p: Tensor, grad: Any, group: dict, state: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _on(value: Any) -> bool:
        """Whether a hyper-parameter such as momentum is in use: non-zero, or a traced array
        (lucid.compile passes a zero as the Python 0, so an array is never zero)."""
        return not isinstance(value, (int, float)) or value != 0

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
        state: dict[Tensor, dict] = {}
        for i, s in sd["state"].items():
            p = params[int(i)]
            state[p] = {k: self._loaded(p, k, v) for k, v in s.items()}
        for p in params:                        # a checkpoint without p's state: fresh state
            if p not in state:
                state[p] = {}
                self._init_state(p, state[p])
        self.state = state                      # the setter bumps the structure version

    @staticmethod
    def _loaded(p: Tensor, name: str, v: Any) -> Any:
        """A saved state value on p's backend: a step count (Python number or array) as a 0-d
        float32 array, anything else in p's dtype."""
        if name == "step":
            host = v.numpy() if isinstance(v, Tensor) else v
            return p._be.asarray(float(host), "float32")
        if isinstance(v, (int, float)):
            return v
        return p._be.asarray(v.numpy() if isinstance(v, Tensor) else v,
                             p._be.dtype_name(p.data))

"""Constraints on any parameter of any module, with three timings (PyTorch's
``torch.nn.utils.parametrize`` for ``"forward"``; Keras's and selfeeg's for the in-place ones).

``register_parametrization(module, "weight", constraint, enforce=...)``, where ``constraint`` is
any callable Tensor -> Tensor (``lucid.nn.constraints`` has the families):

- ``"forward"``: PyTorch's semantics. The raw Parameter moves to
  ``module.parametrizations.weight.original`` (that is what ``parameters()`` and ``state_dict()``
  hold, under PyTorch's key ``parametrizations.weight.original``); reading ``module.weight``
  gives constraint(original), differentiably, recomputed at every read; assigning a tensor to
  ``module.weight`` writes it into ``original``.
- ``"post_step"``: the Parameter stays where it is and is projected in place (without grad) at
  registration and after every optimizer ``step()`` that updated it (Keras's timing).
- ``"pre_forward"``: projected in place before each forward of the module (selfeeg's timing).

Several registrations on one name apply in order (all with the same timing).
``remove_parametrizations`` undoes them; ``is_parametrized`` asks.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from lucid.autograd import no_grad
from lucid.nn.module import Module, _parametrization
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor

ENFORCE = ("forward", "post_step", "pre_forward")

# Modules with in-place (post_step) projections, which optimizers consult after each step.
_post_step_modules: weakref.WeakSet[Module] = weakref.WeakSet()


class Lambda(Module):
    """A plain callable as a parametrization module (so it lists and prints as a child)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, w: Tensor) -> Tensor:
        return self.fn(w)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


class ParametrizationList(Module):
    """``module.parametrizations.<name>``: the raw Parameter as ``original`` and the constraints,
    as children 0, 1, ..., applied in order when the parametrized tensor is read.

    A first parametrization whose ``right_inverse(value)`` returns a tuple (weight_norm's
    (g, v)) splits the tensor into several Parameters, ``original0``, ``original1``, ...
    (PyTorch's names); its forward takes them all and gives the tensor."""

    def __init__(self, original: Parameter | tuple[Parameter, ...]) -> None:
        super().__init__()
        if isinstance(original, tuple):
            for i, p in enumerate(original):
                setattr(self, f"original{i}", p)
            self.n_originals = len(original)
        else:
            self.original = original
            self.n_originals = 1

    def originals(self) -> list[Parameter]:
        if self.n_originals == 1 and "original" in self._parameters:
            return [self._parameters["original"]]
        return [self._parameters[f"original{i}"] for i in range(self.n_originals)]

    def append(self, fn: Module) -> None:
        self.add_module(str(len(self._modules)), fn)

    def __len__(self) -> int:
        """The number of parametrizations in the chain (``original`` is not one of them)."""
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        """The i-th parametrization (negative i counts from the end), as in PyTorch."""
        mods = list(self._modules.values())
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"parametrizations are indexed by int, got {type(i).__name__}")
        if not -len(mods) <= i < len(mods):
            raise IndexError(f"parametrization index {i} is out of range for {len(mods)} "
                             f"parametrization(s)")
        return mods[i]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self) -> Tensor:
        fns = list(self._modules.values())
        w: Tensor = fns[0](*self.originals())
        for fn in fns[1:]:
            w = fn(w)
        return w

    def assign(self, value: Any) -> None:
        """``module.<name> = value``: the value becomes the raw tensor(s) (copied in place),
        through the first parametrization's ``right_inverse`` when it has one."""
        if not isinstance(value, Tensor):
            raise TypeError(f"a parametrized tensor takes a Tensor, got {type(value).__name__}")
        originals = self.originals()
        first = next(iter(self._modules.values()))
        with no_grad():
            value = value.detach().to(originals[0].backend)
            new = first.right_inverse(value) if hasattr(first, "right_inverse") else value
            new = new if isinstance(new, tuple) else (new,)
            if len(new) != len(originals) or any(
                    n.shape != o.shape for n, o in zip(new, originals)):
                raise ValueError(f"cannot assign a tensor of shape {value.shape} to a "
                                 f"parametrized tensor stored as shapes "
                                 f"{[o.shape for o in originals]}")
            for o, n in zip(originals, new):
                o.copy_(n)


class _InPlace:
    """A module's in-place constraint chains: name -> (timing, [fn, ...]) and the pre-forward
    hook handle."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.chains: dict[str, tuple[str, list[Callable[[Tensor], Tensor]]]] = {}
        self.hook: Any = None

    def __setstate__(self, state: dict) -> None:
        """A copied or unpickled module's chains: its post_step ones join the registry that
        optimizers consult, as the original's did."""
        self.__dict__.update(state)
        if any(t == "post_step" for t, _ in self.chains.values()):
            _post_step_modules.add(self.module)


def _in_place(module: Module) -> _InPlace | None:
    return module.__dict__.get("_in_place_constraints")


def _in_place_made(module: Module) -> _InPlace:
    state = _in_place(module)
    if state is None:
        state = module._in_place_constraints = _InPlace(module)
    return state


def _as_module(constraint: Any) -> Module:
    return constraint if isinstance(constraint, Module) else Lambda(constraint)


def register_parametrization(module: Module, name: str, constraint: Callable[[Tensor], Tensor],
                             *, enforce: str = "forward") -> Module:
    """Constrain ``module.<name>`` by ``constraint`` with the given timing (see the module
    docstring). Checked before anything changes: an unknown ``enforce`` or a ``name`` that is
    not a parameter of the module is a ValueError, a constraint that is not callable a
    TypeError. Returns the module."""
    if not isinstance(module, Module):
        raise TypeError(f"register_parametrization needs a Module, got {type(module).__name__}")
    if not isinstance(enforce, str) or enforce not in ENFORCE:
        raise ValueError(f"unknown enforce {enforce!r}; choose one of {', '.join(ENFORCE)}")
    if not callable(constraint):
        raise TypeError(f"the constraint must be callable (Tensor -> Tensor), got "
                        f"{type(constraint).__name__}")
    plist = _parametrization(module, name)
    state = _in_place(module)
    current = "forward" if plist is not None else (
        state.chains[name][0] if state is not None and name in state.chains else None)
    if current is None and not isinstance(module._parameters.get(name), Parameter):
        params = [n for n, p in module._parameters.items() if p is not None]
        raise ValueError(f"{name!r} is not a parameter of {type(module).__name__} (its "
                         f"parameters: {params})")
    if current is not None and current != enforce:
        raise ValueError(f"{name!r} is already constrained with enforce={current!r}; every "
                         f"constraint on one tensor uses one timing, got enforce={enforce!r}")
    fn = _as_module(constraint) if enforce == "forward" else constraint
    if isinstance(fn, Module):
        fn.train(module.training)          # the check below already runs in the module's mode
    if enforce == "forward" and plist is None and hasattr(fn, "right_inverse"):
        original = _split(fn, module._parameters[name])
        with no_grad():
            inputs = original if isinstance(original, tuple) else (original,)
            _check_output(lambda _: fn(*inputs), module._parameters[name], name)
    else:
        original = None
        _check_output(fn, plist() if plist is not None else module._parameters[name], name)
    if enforce == "forward":
        if plist is None:
            if "parametrizations" not in module._modules:
                module.add_module("parametrizations", Module())
            raw = module._parameters.pop(name)
            plist = ParametrizationList(raw if original is None else original)
            module.parametrizations.add_module(name, plist)
        plist.append(fn)
        module.parametrizations.train(module.training)   # the chain takes its module's mode
        return module
    _add_in_place(module, name, constraint, enforce)
    return module


def _split(fn: Any, param: Parameter) -> Parameter | tuple[Parameter, ...]:
    """The Parameter(s) to store for a first parametrization with ``right_inverse``: its
    result, as new Parameters (the same object when it returns the tensor itself)."""
    with no_grad():
        out = fn.right_inverse(param)
    if isinstance(out, tuple):
        for t in out:
            if not isinstance(t, Tensor):
                raise TypeError(f"right_inverse must return Tensors, got {type(t).__name__}")
        return tuple(Parameter(t.detach(), requires_grad=param.requires_grad) for t in out)
    if not isinstance(out, Tensor):
        raise TypeError(f"right_inverse must return a Tensor or a tuple of them, got "
                        f"{type(out).__name__}")
    if out is param:
        return param
    return Parameter(out.detach(), requires_grad=param.requires_grad)


def _check_output(fn: Callable[[Tensor], Tensor], value: Tensor, name: str) -> None:
    """PyTorch's rule, checked once at registration (under no_grad, before anything changes):
    the callable must give a Tensor of the value's shape and dtype. A ``lambda w: w[:-1]`` on a
    Linear(3, 4) weight would otherwise silently make the layer a Linear(3, 3)."""
    with no_grad():
        out = fn(value)
    if not isinstance(out, Tensor):
        raise ValueError(f"a parametrization of {name!r} must return a Tensor, got "  # noqa: TRY004
                         f"{type(out).__name__}")
    if out.shape != value.shape:
        raise ValueError(f"a parametrization may not change the shape of {name!r}: "
                         f"{value.shape} became {out.shape}")
    if out.dtype != value.dtype:
        raise ValueError(f"a parametrization may not change the dtype of {name!r}: "
                         f"{value.dtype} became {out.dtype}")


def _add_in_place(module: Module, name: str, fn: Any, enforce: str) -> None:
    state = _in_place_made(module)
    state.chains.setdefault(name, (enforce, []))[1].append(fn)
    if enforce == "post_step":
        _post_step_modules.add(module)
    elif state.hook is None:
        state.hook = module.register_forward_pre_hook(_pre_forward_hook)
    _project(module, name, state.chains[name][1])


def is_parametrized(module: Module, name: str | None = None) -> bool:
    """Whether ``module`` (or its tensor ``name``) has a constraint registered, any timing."""
    state = _in_place(module)
    in_place = set(state.chains) if state is not None else set()
    forward = set(module.parametrizations._modules) if "parametrizations" in module._modules \
        else set()
    return bool(in_place | forward) if name is None else name in in_place | forward


def remove_parametrizations(module: Module, name: str, leave_parametrized: bool = True
                            ) -> Module:
    """Remove every constraint on ``module.<name>``. ``leave_parametrized=True`` leaves the
    constrained value as the plain Parameter; False leaves the raw one (for the in-place timings
    the stored tensor is already the projected one: True projects it once more)."""
    if not is_parametrized(module, name):
        raise ValueError(f"{type(module).__name__} has no parametrization on {name!r}")
    plist = _parametrization(module, name)
    if plist is not None:
        originals = plist.originals()
        if len(originals) == 1:
            original = originals[0]
            if leave_parametrized:
                with no_grad():
                    value = plist()
                original._set_data(value.astype(original.dtype).data)
        else:
            if not leave_parametrized:
                raise ValueError(f"{name!r} is stored as {len(originals)} tensors; it can only "
                                 f"be removed with leave_parametrized=True")
            with no_grad():
                original = Parameter(plist().detach(), requires_grad=originals[0].requires_grad)
        del module.parametrizations._modules[name]
        if not module.parametrizations._modules:
            del module._modules["parametrizations"]
        module.register_parameter(name, original)
        return module
    state = _in_place_made(module)
    _, fns = state.chains.pop(name)
    if leave_parametrized:
        _project(module, name, fns)
    if not any(t == "pre_forward" for t, _ in state.chains.values()) and state.hook is not None:
        state.hook.remove()
        state.hook = None
    if not any(t == "post_step" for t, _ in state.chains.values()):
        _post_step_modules.discard(module)
    return module


# -- the in-place timings ------------------------------------------------------------------------

def add_projection(module: Module, name: str, project: Callable[[], Any], enforce: str) -> None:
    """Register a module's own projection of ``name`` (a callable that writes the constrained
    value in place) with the post_step or pre_forward timing: how ConstrainedConv2d and
    ConstrainedLinear, whose "forward" timing keeps the raw weight, use this mechanism."""
    if enforce not in ("post_step", "pre_forward"):
        raise ValueError(f"add_projection takes enforce='post_step' or 'pre_forward', got "
                         f"{enforce!r}")
    _add_in_place(module, name, _Projection(project), enforce)


class _Projection:
    """A module's own projection in a chain: it writes in place itself."""

    def __init__(self, project: Callable[[], Any]) -> None:
        self.project = project


def _project(module: Module, name: str, fns: list) -> None:
    p = module._parameters.get(name)
    if p is None:
        return
    with no_grad():
        for fn in fns:
            if isinstance(fn, _Projection):
                fn.project()
            else:
                p._set_data(fn(p).astype(p.dtype).data)


def project_post_step(module: Module, updated: set[int] | None = None) -> None:
    """Project ``module``'s post_step tensors in place (only those whose Parameter is in
    ``updated``, a set of ids, when given)."""
    state = _in_place(module)
    if state is None:
        return
    for name, (timing, fns) in list(state.chains.items()):
        p = module._parameters.get(name)
        if timing == "post_step" and p is not None and (updated is None or id(p) in updated):
            _project(module, name, fns)


def _pre_forward_hook(module: Module, args: tuple) -> None:
    """The pre_forward timing's hook (a named function, so a module that has it pickles)."""
    project_pre_forward(module)


def project_pre_forward(module: Module) -> None:
    """Projects ``module``'s ``"pre_forward"`` parametrizations in place (what runs before each
    forward)."""
    state = _in_place_made(module)
    for name, (timing, fns) in list(state.chains.items()):
        if timing == "pre_forward":
            _project(module, name, fns)


def after_step(updated: list[Tensor]) -> None:
    """What an optimizer calls after its updates: re-project every post_step tensor among
    ``updated`` (looked up by name, so a newly assigned Parameter is projected too)."""
    if not _post_step_modules:
        return
    ids = {id(p) for p in updated}
    for module in list(_post_step_modules):
        project_post_step(module, ids)

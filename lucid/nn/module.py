"""Module: the base of every layer. Parameters, buffers and submodules register by assignment."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from lucid import device, dtypes, structure, tracing
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class RemovableHandle:
    """What ``register_forward_*hook`` returns: ``remove()`` unregisters the hook (also as a
    context manager's exit)."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict, hook: Callable[..., Any]) -> None:
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
        self._hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _parametrization(module: Module, name: str) -> Any:
    """The ParametrizationList of a forward-parametrized ``name`` (see
    ``lucid.nn.utils.parametrize``), or None."""
    mods = module.__dict__.get("_modules")
    plists = mods.get("parametrizations") if mods else None
    return plists._modules.get(name) if plists is not None else None


class Module:
    """Base class. Subclasses assign Parameters, Tensors registered as buffers, and Modules as
    attributes, and write ``forward``; call the module, not ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)
        # the structure version (see lucid.structure): bumped by every change of what this
        # module holds or of its mode, so lucid.compile can skip re-resolving an unchanged state
        object.__setattr__(self, "_version", 0)

    def _touch(self) -> None:
        """Record a change of this module's layout (its stores or its mode)."""
        d = self.__dict__
        d["_version"] = d.get("_version", 0) + 1
        structure.bump()

    # -- registration ------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        plist = _parametrization(self, name)
        if plist is not None:
            plist.assign(value)               # a parametrized name: the value goes to .original
            return
        if name in params or name in bufs or name in mods or name == "training" or \
                isinstance(value, (Parameter, Module)):
            self._touch()                     # a store (or the mode) changes: layout
        if isinstance(value, Parameter):
            self._forget(name, keep=params)   # replacing keeps the name's place (as in torch)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=mods)     # a Sequential's layer stays where it runs
            mods[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter '{name}' "
                                "(a Parameter or None is expected)")
            params[name] = None
        elif name in bufs:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer '{name}' "
                                "(a Tensor or None is expected)")
            bufs[name] = value
        elif name in mods:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule '{name}' "
                                "(a Module or None is expected)")
            mods[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict | None = None) -> None:
        """Drop ``name`` from every store but ``keep`` (whose entry is about to be replaced in
        place, keeping its position) and from the plain attributes."""
        self._touch()
        for d in (self._parameters, self._buffers, self._modules):
            if d is not keep:
                d.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        params = d.get("_parameters")            # the most read, so looked up first, directly
        if params is not None and name in params:
            return params[name]
        for store in ("_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        plist = _parametrization(self, name)
        if plist is not None:
            return plist()                    # the constrained tensor, computed differentiably
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if any(name in d for d in (self._parameters, self._buffers, self._modules)):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter needs a Parameter or None, got "
                            f"{type(param).__name__}")
        self._forget(name, keep=self._parameters)
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer needs a Tensor or None, got {type(tensor).__name__}")
        self._forget(name, keep=self._buffers)
        self._buffers[name] = tensor
        self._touch()
        if not persistent:
            self._non_persistent.add(name)
        else:
            self._non_persistent.discard(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    # -- traversal ---------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", _seen: set | None = None
                      ) -> Iterator[tuple[str, Module]]:
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named(self, store: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules() if recurse else [("", self)]
        for prefix, m in mods:
            for name, t in getattr(m, store).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, Parameter) pairs; a parameter shared by two modules appears once."""
        return self._named("_parameters", recurse)  # type: ignore[return-value]  # Parameters

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse):
            yield b

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name, detached."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for key, _, _, t in self._state_entries():
            out[key] = t.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True
                        ) -> IncompatibleKeys:
        """Copy values (Tensors or arrays) into the existing Parameters and buffers (the objects
        an optimizer holds stay the same), converting to this module's backend and dtype.

        Everything is checked and converted before anything is written, so a failure loads
        nothing: a non-mapping or a value that is neither a Tensor nor an array is a TypeError
        naming the key; shape mismatches, and with ``strict`` missing or unexpected keys, are a
        ValueError naming them all."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict needs a mapping of names to tensors (a state "
                            f"dict), got {type(state_dict).__name__}")
        for k, v in state_dict.items():
            if not isinstance(v, Tensor) and not (hasattr(v, "shape") and hasattr(v, "dtype")):
                raise TypeError(f"state_dict[{k!r}] must be a Tensor or an array, got "
                                f"{type(v).__name__}")
        own = {key: (m, name, t) for key, m, name, t in self._state_entries()}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {t.shape}"
                      for k, (_, _, t) in own.items()
                      if k in state_dict and tuple(state_dict[k].shape) != t.shape]
        if mismatched:
            raise ValueError("shape mismatch loading state_dict: " + "; ".join(mismatched))
        if strict and (missing or unexpected):
            raise ValueError(f"error loading state_dict into {type(self).__name__}: missing keys "
                             f"{missing}, unexpected keys {unexpected}")
        tracing.forbid_host_read("load_state_dict()")
        converted = []
        for k, (m, name, t) in own.items():
            if k in state_dict:
                src = state_dict[k]
                host = src.numpy() if isinstance(src, Tensor) else src
                converted.append((m, name, t, t._be.asarray(host, t._be.dtype_name(t.data))))
        for _, _, t, array in converted:
            t._set_data(array)
        return IncompatibleKeys(missing, unexpected)

    def _state_entries(self) -> Iterator[tuple[str, Module, str, Tensor]]:
        """(dotted key, owning module, attribute name, tensor) for every parameter and persistent
        buffer: what a state dict holds, in PyTorch's order (own tensors, then children)."""
        for prefix, m in self.named_modules():
            for name, t in list(m._parameters.items()) + [
                    (n, b) for n, b in m._buffers.items() if n not in m._non_persistent]:
                if t is not None:
                    yield (f"{prefix}.{name}" if prefix else name), m, name, t

    # -- modes and movement ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            if m.training != bool(mode):
                object.__setattr__(m, "training", bool(mode))
                m._touch()
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (``set_to_none=False``: set it to zeros instead)."""
        for p in self.parameters():
            p.zero_grad_(set_to_none)

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def to(self, target: Any) -> Module:
        """Move every parameter and buffer, in place, to a backend ("numpy"/"cpu", "mlx"/"gpu",
        a Device) or cast the floating ones to a dtype. The Parameter objects stay the same."""
        be, dt = device.to_target(target)
        if dt is not None and not dt.is_floating:
            raise TypeError(f"Module.to() casts to a floating dtype (float16, bfloat16, "
                            f"float32, float64), got {dt}")
        tensors: list[Tensor] = list(self.parameters()) + list(self.buffers())
        for t in tensors:
            if be is not None:
                if be is not t._be:
                    tracing.forbid_host_read("Module.to() another backend")
                    t._set_data(be.asarray(t.numpy(), t._be.dtype_name(t.data)), be)
                    t.grad = None if t.grad is None else t.grad.to(be.name)
            elif dt is not None and t.dtype.is_floating:
                t._set_data(t._be.astype(t.data, dt.name))
                if t.grad is not None:            # as PyTorch: the gradient follows
                    t.grad = t.grad.astype(dt).detach()
        return self

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16 in place; returns self."""
        return self.to(dtypes.float16)

    def bfloat16(self) -> Module:
        """Cast floating parameters and buffers to bfloat16 in place; returns self."""
        return self.to(dtypes.bfloat16)

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32 in place; returns self."""
        return self.to(dtypes.float32)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call fn on every submodule (children first) and then on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- calling and printing ----------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, args)`` runs before every forward; returning a value (a tuple, or one
        input) replaces the inputs. Returns a handle whose ``remove()`` unregisters it."""
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, args, output)`` runs after every forward; returning a value replaces
        the output. Returns a handle whose ``remove()`` unregisters it."""
        return RemovableHandle(self._forward_hooks, hook)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"



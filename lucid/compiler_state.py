"""The declared state of a ``lucid.compile``'d call (see ``lucid.compiler``): which tensors,
gradients, optimizer states and input hyper-parameters a call passes in, in a fixed order, the
layout key its traces are looked up by, and how a compiled call's new arrays are written back
into the same objects. ``lucid.compiler`` resolves one ``_State`` per structure version
(``lucid.structure``) and reuses it."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from typing import Any

from lucid import tracing
from lucid.nn.module import Module
from lucid.optim.optimizer import INPUT_HYPERPARAMETERS, Optimizer
from lucid.tensor import Tensor


class _State:
    """The declared state, resolved once per structure version: the tensors (parameters,
    buffers, declared tensors), their gradients, optimizer states and learning rates, in a
    fixed order, and ``key``, the layout part of a trace's key. What the structure version does
    not cover is checked on every call, cheaply: which gradients exist (``grad_key``) and
    each tensor's requires_grad flag (a plain attribute)."""

    def __init__(self, items: list) -> None:
        tensors: dict[int, Tensor] = {}
        self.modules: list[Module] = []               # every module and submodule, once
        self.optimizers: list[Optimizer] = []
        self.extra_keys: list[Any] = []
        seen: set[int] = set()
        for s in items:
            if isinstance(s, Module):
                # depth first in registration order, like Module.modules(); a plain stack,
                # since this runs on every compiled call (generators cost ~2 µs a module)
                stack = [s]
                while stack:
                    m = stack.pop()
                    if id(m) in seen:
                        continue
                    seen.add(id(m))
                    self.modules.append(m)
                    for store in (m._parameters, m._buffers):
                        for t in store.values():
                            if t is not None:
                                tensors.setdefault(id(t), t)
                    stack.extend(c for c in reversed(m._modules.values()) if c is not None)
            elif isinstance(s, Optimizer):
                self.optimizers.append(s)
                for g in s.param_groups:
                    for p in g["params"]:
                        tensors.setdefault(id(p), p)
            elif isinstance(s, Tensor):
                tensors.setdefault(id(s), s)
            else:                                     # a GradScaler: its arrays, its constants
                for t in s._compile_tensors():
                    tensors.setdefault(id(t), t)
                self.extra_keys.append(s._compile_key())
        self.tensors = list(tensors.values())
        self.opt_entries = [(opt, p, k) for opt in self.optimizers
                            for g in opt.param_groups for p in g["params"]
                            for k in sorted(opt.state.get(p, {}))]
        # Python numbers in optimizer states (a custom optimizer's counters; lucid's own keep
        # step counts as arrays) travel as 0-d arrays; their type comes back with them
        self.numbers = {(id(opt), id(p), k): type(opt.state[p][k]).__name__
                        for opt, p, k in self.opt_entries
                        if isinstance(opt.state[p][k], (int, float))}
        self._groups = [g for opt in self.optimizers for g in opt.param_groups]
        self.backends = {id(t._be): t._be for t in self.tensors}
        self.key = self._layout_key()
        self.key_id = -1                           # the key as a small int (lucid.compiler)
        self._requires = [t.requires_grad for t in self.tensors]
        self._grads: list | None = None           # the gradients grad_key was computed for
        self._grad_key: tuple = ()
        self._hyper_vals: list | None = None      # the last call's input hyper-parameters
        self._hyper_cache: tuple = ((), [])
        self._hyper_arrays: dict[str, list] = {}  # the numbers as 0-d arrays, per backend

    def groups(self) -> list[dict]:
        return self._groups

    def lrs(self) -> list:
        return [g["lr"] for g in self._groups]

    def hypers(self) -> list[dict]:
        """Each group's input hyper-parameters (``INPUT_HYPERPARAMETERS`` it has), as they are."""
        return [{k: g[k] for k in _INPUT_ORDER if k in g} for g in self._groups]

    def hyper_key(self) -> tuple:
        """Which input hyper-parameters are zero, per group and tuple element: a zero stays a
        Python 0 in the trace (optimizers branch on "momentum is off"), any other value is an
        input array, so a scheduler moving it (OneCycleLR's momentum) does not trace again.
        lr is always an input."""
        return self._hypers_now()[0]

    def _hypers_now(self) -> tuple[tuple, list]:
        """(hyper_key, the input hyper-parameters' numbers in call order), recomputed only when
        a value differs (==) from the last call's. Only plain Python numbers (and tuples/lists
        of them, copied) are kept to compare with: a mutable value (an array) could change in
        place and still compare equal to itself."""
        vals = [[g.get(k, _ABSENT) for k in _INPUT_ORDER] for g in self._groups]
        if vals == self._hyper_vals:
            return self._hyper_cache
        key = tuple(tuple(_zero_pattern(k, v) for k, v in zip(_INPUT_ORDER, row)
                          if v is not _ABSENT and k != "lr") for row in vals)
        numbers = [n for row in vals for k, v in zip(_INPUT_ORDER, row) if v is not _ABSENT
                   for n in _inputs_of(k, v)]
        plain = all(_plain(v) for row in vals for v in row)
        self._hyper_vals = [[list(v) if isinstance(v, list) else v for v in row]
                            for row in vals] if plain else None
        self._hyper_cache = (key, numbers)
        self._hyper_arrays = {}
        return self._hyper_cache

    def current(self) -> bool:
        """False when a requires_grad flag changed (a plain attribute, which can be set
        without bumping the structure version, so it is compared on every call)."""
        return [t.requires_grad for t in self.tensors] == self._requires

    def grad_key(self) -> tuple:
        """Which tensors have a gradient (and its shape where it differs from the tensor's),
        recomputed only when a gradient object changed since the last call."""
        ts = self.tensors
        grads = [t.grad for t in ts]
        if self._grads is None or not all(map(operator.is_, grads, self._grads)):
            self._grad_key = _grad_key(ts)
            self._grads = grads
        return self._grad_key

    def grads_written(self, key: tuple) -> None:
        """The compiled call wrote the gradients back: their key is the trace's (known)."""
        self._grads = [t.grad for t in self.tensors]
        self._grad_key = key

    def _layout_key(self) -> tuple:
        parts: list[Any] = []
        for t in self.tensors:                        # the arrays' own shapes and dtypes
            a = t.data
            parts.append((tuple(a.shape), a.dtype, t.requires_grad))
        for opt, p, k in self.opt_entries:
            v = opt.state[p][k]
            parts.append((k, type(v).__name__) if isinstance(v, (int, float)) else
                         (k, tuple(v.shape), v.dtype))
        for opt in self.optimizers:
            for group in opt.param_groups:
                parts.append(tuple((k, _hashable(v)) for k, v in sorted(group.items())
                                   if k != "params" and k not in INPUT_HYPERPARAMETERS))
        parts.append(tuple(m.training for m in self.modules))
        parts.append(tuple(self.extra_keys))
        return tuple(parts)

    def arrays(self, be: Any) -> list:
        """The state as the compiled function's first inputs."""
        out = [t.data for t in self.tensors]
        out += [g.data for g in self._grads if g is not None] if self._grads is not None \
            else [t.grad.data for t in self.tensors if t.grad is not None]
        entries = [opt._state[p][k] for opt, p, k in self.opt_entries]
        if self.numbers:                              # Python numbers travel as 0-d arrays
            entries = [be.asarray(float(v), "float32") if isinstance(v, (int, float)) else v
                       for v in entries]
        out += entries
        numbers = self._hypers_now()[1]
        arrays = self._hyper_arrays.get(be.name)
        if arrays is None:
            arrays = self._hyper_arrays[be.name] = [_lr_array(be, v) for v in numbers]
        return out + arrays

    def install(self, arrays: list) -> list:
        """Put traced arrays into the state objects (before tracing); returns the grad tensors
        made for them (written during the trace by gradient averaging, say)."""
        it = iter(arrays)
        for t in self.tensors:
            t._set_data(next(it))
        grads = []
        for t in self.tensors:
            if t.grad is not None:
                t.grad = Tensor._wrap(next(it), t._be)
                grads.append(t.grad)
        for opt, p, k in self.opt_entries:
            opt.state[p][k] = next(it)
        for g in self.groups():
            for k in _INPUT_ORDER:
                if k in g:
                    g[k] = _with_inputs(k, g[k], it)
        return grads

    def snapshot(self) -> tuple:
        """Everything ``install`` replaces, to undo a trace that failed half-way."""
        return ([(t, t.data, t.grad) for t in self.tensors],
                [(opt, {p: dict(s) for p, s in opt.state.items()},
                  [{k: g[k] for k in _INPUT_ORDER if k in g} for g in opt.param_groups])
                 for opt in self.optimizers])

    @staticmethod
    def restore(snap: tuple) -> None:
        tensors, optimizers = snap
        for t, data, grad in tensors:
            t._set_data(data)
            t.grad = grad
        for opt, state, hypers in optimizers:
            opt.state = state
            for g, h in zip(opt.param_groups, hypers):
                g.update(h)

    def check_undeclared(self, run: tracing.Trace, grads: Iterable[Tensor]) -> None:
        allowed = {id(t) for t in self.tensors} | {id(g) for g in grads} | run.created
        for what, seen in (("updated", run.written), ("gave a gradient to", run.graded)):
            bad = [t for i, t in seen.items() if i not in allowed]
            if bad:
                t = bad[0]
                raise RuntimeError(
                    f"the lucid.compile'd function {what} a {type(t).__name__} of shape "
                    f"{t.shape} ({t.dtype.name}) that is not part of its state, so the change "
                    f"would be lost after tracing ({len(bad)} such tensor(s)). Add the Module, "
                    "Optimizer or Tensor that owns it to lucid.compile(..., state=[...]).")


def _grad_key(tensors: list[Tensor]) -> tuple:
    parts: list[Any] = []
    for t in tensors:
        grad = t.grad
        if grad is None:
            parts.append(None)
            continue
        a, gd = t.data, grad.data                 # a gradient like its tensor: one flag
        parts.append(True if (gd.shape == a.shape and gd.dtype == a.dtype) else
                     (tuple(gd.shape), gd.dtype))
    return tuple(parts)



_lr_arrays: dict[tuple[str, float], Any] = {}
# the input hyper-parameters in the order a call passes them (lr first, as before)
_INPUT_ORDER = ("lr",) + tuple(sorted(INPUT_HYPERPARAMETERS - {"lr"}))
_ABSENT = object()                  # a group without that input hyper-parameter


def _plain(v: Any) -> bool:
    """A value whose == says whether it changed: a Python number, or a tuple/list of them."""
    if isinstance(v, (tuple, list)):
        return all(type(x) in (int, float, bool) for x in v)
    return v is _ABSENT or type(v) in (int, float, bool)


def _zero_pattern(name: str, value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return (name, tuple(v == 0 for v in value))
    return (name, value == 0)


def _inputs_of(name: str, value: Any) -> list:
    """The numbers of an input hyper-parameter that travel as arrays (see hyper_key)."""
    if name == "lr":
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for v in value if v != 0]
    return [] if value == 0 else [value]


def _with_inputs(name: str, value: Any, arrays: Iterator) -> Any:
    """value with its travelling numbers replaced by the next traced arrays."""
    if name == "lr":
        return next(arrays)
    if isinstance(value, (tuple, list)):
        return type(value)(next(arrays) if v != 0 else v for v in value)
    return value if value == 0 else next(arrays)


def _lr_array(be: Any, lr: Any) -> Any:
    """A learning rate as a 0-d float32 input array, made once per value (a call asks for one
    per parameter group; a scheduler changes the value only now and then)."""
    key = (be.name, float(lr))
    a = _lr_arrays.get(key)
    if a is None:
        if len(_lr_arrays) >= 64:
            _lr_arrays.clear()
        a = _lr_arrays[key] = be.asarray(key[1], "float32")
    return a


def _collect(st: _State) -> tuple[list, tuple]:
    """After the trace: the state's new arrays (step counts as 0-d arrays), and the layout that
    writes them back: which tensors have a gradient, and each optimizer state entry."""
    arrays: list = [t.data for t in st.tensors]
    with_grad = tuple(i for i, t in enumerate(st.tensors) if t.grad is not None)
    arrays += [t.grad.data for t in st.tensors if t.grad is not None]
    entries = []
    for oi, opt in enumerate(st.optimizers):
        for g in opt.param_groups:
            for p in g["params"]:
                for k, v in sorted(opt.state.get(p, {}).items()):
                    number = type(v).__name__ if isinstance(v, (int, float)) else \
                        st.numbers.get((id(opt), id(p), k))
                    arrays.append(p._be.asarray(float(v), "float32")
                                  if isinstance(v, (int, float)) else v)
                    entries.append((oi, p, k, number))
    return arrays, (with_grad, tuple(entries))


class _Writer:
    """Writes a compiled call's new state into the same objects (arrays evaluated already),
    for one trace's layout and one resolved state. The layout and the state fix the shapes and
    dtypes on both sides, so whether the new arrays keep each tensor's shape and dtype is known
    after the first write: while they do, a write is a plain assignment (``_set_data``'s
    checks, which bump the structure version on a change, would find nothing)."""

    def __init__(self, st: _State, layout: tuple) -> None:
        with_grad, entries = layout
        self.st = st
        self.grad_tensors = [st.tensors[i] for i in with_grad]
        has = set(with_grad)
        self.no_grad = [t for i, t in enumerate(st.tensors) if i not in has]
        self.entries = [(st.optimizers[oi], p, k, number) for oi, p, k, number in entries]
        self.same = False                       # known after the first write

    def write(self, arrays: list) -> None:
        tensors = self.st.tensors
        n = len(tensors)
        if self.same:
            for t, a in zip(tensors, arrays):
                t.data = a
                t._ready = False
        else:
            self.same = all(t.data.shape == a.shape and t.data.dtype == a.dtype
                            for t, a in zip(tensors, arrays))
            for t, a in zip(tensors, arrays):
                t._set_data(a)
        m = n + len(self.grad_tensors)
        for t, a in zip(self.grad_tensors, arrays[n:m]):
            t.grad = Tensor._wrap(a, t._be)
        for t in self.no_grad:
            t.grad = None
        for (opt, p, k, number), v in zip(self.entries, arrays[m:]):
            if number is not None:              # a step count: a Python number again
                v = round(v.item()) if number == "int" else float(v.item())
            opt._state.setdefault(p, {})[k] = v


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v

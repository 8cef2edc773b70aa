"""``lucid.compile``: a whole training step as one compiled graph (``mx.compile`` on MLX). The
module is ``lucid.compiler``; its function is ``lucid.compile``.

lucid builds its graph in Python on every call; compiling a step traces that Python once per
input signature and replays the resulting graph. The pure function handed to the backend's
``compile`` primitive takes the state's arrays and the inputs, and returns the new state arrays
and the outputs; lucid then writes the new arrays back into the same Tensor objects, so modules
and optimizers keep holding them.

    @lucid.compile(state=[model, opt])
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

State is what the function reads and updates: for a Module its parameters, buffers (BatchNorm's
running statistics) and their gradients; for an Optimizer also its moments and step counts; a
Tensor stands for itself. The random stream is always part of it: draws inside a compiled call
are fresh each call and continue the eager stream (see ``lucid.random``). Learning rates,
momentum and betas are inputs (``optim.optimizer.INPUT_HYPERPARAMETERS``; only whether a
momentum or beta is zero is part of the key), so a scheduler stepping between calls takes
effect without a new trace; other hyper-parameters, module train/eval modes, grad mode, the
``lucid.autocast`` dtype in force and Python scalar arguments are part of the trace's key
(changing one traces again). A ``lucid.amp.GradScaler`` in the state contributes its scale and
growth tracker (its factors and interval are part of the key).

Rules, checked at every trace:

- nothing may read data on the host inside the function (``item()``, ``numpy()``, ``tolist()``,
  ``bool(t)``, printing): RuntimeError; return the value and read it after the call;
- the function may update only declared state (and tensors it creates itself): writing another
  tensor, or giving a gradient to a leaf outside the state, is a RuntimeError naming it, since
  the update would be lost (it happens only while tracing);
- a tensor read but not declared becomes a constant of the trace: declare it if it changes.

Each distinct key (input shapes and dtypes, state structure, the flags above) is one trace.
MLX keeps a compiled function's graphs until that function is freed, so lucid keeps at most
``MAX_TRACES`` of them per compiled function and frees the least recently used one beyond that.
With ``shapeless=True`` one trace serves every size of the arguments' dim 0 where lucid can prove
that is right (``lucid.compiler_shapeless``); elsewhere it warns once and traces per shape.

The state is resolved (modules walked, tensors, gradients, optimizer entries and the layout part
of the key collected) once per *structure version* (``lucid.structure``), which every mutation
path of a layout bumps: registering or replacing a parameter, buffer or submodule, ``train()`` /
``eval()``, adding a param group, changing a hyper-parameter other than ``lr``, creating
optimizer state, loading a state dict, a ``_set_data`` that changes a shape, dtype or backend.
While the version stands, a call only compares which gradients exist (by identity) and the
requires_grad flags (a plain attribute) with the last call's, builds the input list and writes
the results back: on a small net that is most of what lucid adds to MLX's own compiled call.

On the NumPy backend the function is called as it is, under the same rules: same API, same
results.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lucid import autograd, precision, random, structure, tracing
from lucid import compiler_shapeless as shapeless_
from lucid.nn.module import Module
from lucid.optim.optimizer import INPUT_HYPERPARAMETERS, Optimizer
from lucid.tensor import Tensor

MAX_TRACES = 16


def compile(fn: Callable | None = None, *, state: Iterable[Any] = (),
            shapeless: bool = False) -> Any:
    """Compile ``fn`` (a function of Tensors, Python scalars and nested tuples/lists/dicts of
    them) together with the ``state`` it reads and updates (Modules, Optimizers, Tensors).
    Usable as ``lucid.compile(fn, state=[...])`` or ``@lucid.compile(state=[...])``; returns a
    callable with fn's signature whose results are Tensors (and the scalars fn returned).

    ``shapeless=True``: one trace serves every size of dim 0 (the batch) of the arguments,
    when lucid can prove the graph does not depend on it (see ``lucid.compiler_shapeless``);
    otherwise a warning names the primitive that depends on it, and the function is traced
    per input shape as without the flag. Results are the same either way."""
    if not isinstance(shapeless, bool):
        raise TypeError(f"lucid.compile's shapeless must be True or False, got {shapeless!r}")
    if fn is None:
        return lambda f: compile(f, state=state, shapeless=shapeless)
    if not callable(fn):
        raise TypeError(f"lucid.compile needs a function, got {type(fn).__name__}")
    return Compiled(fn, state, shapeless)


class Compiled:
    """A compiled function: see the module docstring."""

    def __init__(self, fn: Callable, state: Iterable[Any], shapeless: bool = False) -> None:
        items = list(state) if not isinstance(state, (Module, Optimizer, Tensor)) else [state]
        for s in items:
            # (a GradScaler: any object that lists its state tensors in ``_compile_tensors``)
            if not isinstance(s, (Module, Optimizer, Tensor)) and \
                    not hasattr(s, "_compile_tensors"):
                raise TypeError(f"lucid.compile state must hold Modules, Optimizers, Tensors "
                                f"and GradScalers, got {type(s).__name__}")
        self.fn, self.state = fn, items
        self._traces: OrderedDict[Any, _Trace] = OrderedDict()
        # the state resolved at structure version _resolved_at (see lucid.structure): reused
        # while no layout anywhere changed, so a call walks no modules, groups or shapes
        self._resolved: _State | None = None
        self._resolved_at = -1
        # shapeless: proven traces by batch-free key, and the keys proven not to be shapeless
        self.shapeless = shapeless
        self._shapeless: dict[Any, _Trace] = {}
        self._refused: set[Any] = set()
        self._warned = False
        functools.update_wrapper(self, fn)

    def _state(self) -> _State:
        """The declared state, resolved again only when the structure version moved."""
        st = self._resolved
        if st is None or self._resolved_at != structure.version() or not st.current():
            st = self._resolved = _State(self.state)
            self._resolved_at = structure.version()
        return st

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st = self._state()
        leaves, template = _flatten((args, kwargs))
        be = _backend(st, leaves)
        if be is None or not be.lazy:
            return self._call_eagerly(st, args, kwargs)
        # autocast decides which dtypes the traced ops compute in: part of the key
        key = (template, st.key, st.grad_key(), st.hyper_key(), autograd.is_grad_enabled(),
               precision.state())
        if self.shapeless:
            skey = (shapeless_.batchless(template),) + key[1:]
            if skey not in self._refused:
                return self._call_shapeless(skey, st, leaves, template, be)
        trace = self._traces.get(key)
        if trace is None:
            trace = _Trace(self.fn, st, template, be)
            self._traces[key] = trace
            if len(self._traces) > MAX_TRACES:
                self._traces.popitem(last=False)          # frees MLX's graphs of that trace
        else:
            self._traces.move_to_end(key)
        try:
            return trace.run(st, leaves)
        except BaseException:
            if trace.layout is None:                      # the trace itself failed: forget it
                self._traces.pop(key, None)
            self._resolved = None                         # and resolve afresh next time
            raise

    def _call_shapeless(self, skey: Any, st: _State, leaves: list, template: Any,
                        be: Any) -> Any:
        """A call through the shapeless trace of skey: traced, and proven, on first use."""
        trace = self._shapeless.get(skey)
        if trace is None:
            trace = _Trace(self.fn, st, template, be, shapeless=True)
            try:
                result = trace.run(st, leaves)     # traced at this call's shapes: right here
            except Exception as e:                 # noqa: BLE001 - told apart just below
                # MLX refuses some graphs outright ("AsStrided cannot infer output shapes"):
                # if the same call traced per shape works, that was the refusal; if it fails
                # too, its error (a rule of lucid.compile, a bug in fn) is the one raised
                self._resolved = None
                self._refused.add(skey)
                args, kwargs = _unflatten(template, iter(leaves))
                try:
                    result = self(*args, **kwargs)
                except BaseException:
                    self._refused.discard(skey)
                    raise
                self._refuse(skey, f"MLX cannot compile it shapelessly ({e})")
                return result
            reason = trace.prove(st, leaves)
            if reason is None:
                self._shapeless[skey] = trace
            else:
                self._refuse(skey, reason)
            return result
        try:
            return trace.run(st, leaves)
        except Exception as e:                     # noqa: BLE001 - MLX could not replay it;
            self._shapeless.pop(skey, None)        # nothing was written back yet
            self._refuse(skey, f"MLX refused to replay it at new shapes ({e})")
            args, kwargs = _unflatten(template, iter(leaves))
            return self(*args, **kwargs)               # per shape, as refused keys are

    def _refuse(self, skey: Any, reason: str) -> None:
        self._refused.add(skey)
        if not self._warned:
            self._warned = True
            warnings.warn(f"lucid.compile(shapeless=True) of {getattr(self.fn, '__name__', '?')}"
                          f": {reason}; tracing it once per input shape instead",
                          RuntimeWarning, stacklevel=3)

    def _call_eagerly(self, st: _State, args: tuple, kwargs: dict) -> Any:
        """NumPy (an eager backend): fn as it is, under the rules of a trace."""
        grads = [t.grad for t in st.tensors if t.grad is not None]
        with tracing.running(tracing.Trace(None, None)) as run:
            out = self.fn(*args, **kwargs)
        st.check_undeclared(run, grads)
        return _map_tensors(out, lambda t: t.detach())


# -- the state of a call ---------------------------------------------------------------------

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
        self._requires = [t.requires_grad for t in self.tensors]
        self._grads: list | None = None           # the gradients grad_key was computed for
        self._grad_key: tuple = ()

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
        return tuple(tuple(_zero_pattern(k, g[k]) for k in _INPUT_ORDER if k in g and k != "lr")
                     for g in self._groups)

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
        for opt, p, k in self.opt_entries:
            v = opt._state[p][k]
            out.append(be.asarray(float(v), "float32") if isinstance(v, (int, float)) else v)
        for g in self._groups:
            for k in _INPUT_ORDER:
                if k in g:
                    out += [_lr_array(be, v) for v in _inputs_of(k, g[k])]
        return out

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


# -- one trace ---------------------------------------------------------------------------------

class _Trace:
    """One key's compiled graph, and what its Python trace recorded: the layout of the new
    state and of the results, and how many random blocks a call draws."""

    def __init__(self, fn: Callable, st: _State, template: Any, be: Any,
                 shapeless: bool = False) -> None:
        self.fn, self.template, self.be = fn, template, be
        self.layout: tuple | None = None
        self.drawn = 0
        self.shapeless = shapeless
        self.log: list | None = None            # shapeless: the trace's primitive calls
        self.compiled = be.compile(self._pure, shapeless=shapeless)
        self._call: tuple | None = None
        self.grad_key: tuple | None = None      # which gradients a call leaves behind

    def run(self, st: _State, leaves: list[Tensor]) -> Any:
        be = self.be
        state = st.arrays(be)
        inputs = state + list(random.stream_arrays(be)) + [t.data for t in leaves]
        snap = st.snapshot() if self.layout is None else None     # the first call traces
        self._call = (st, leaves, len(state))
        try:
            outputs = self.compiled(inputs)
        except BaseException:
            if snap is not None:
                st.restore(snap)
            raise
        finally:
            self._call = None
        be.eval(*outputs)                   # the step's one evaluation, at the call's end
        random.advance(self.drawn)
        assert self.layout is not None          # set while the first call traced
        layout, out_template, n = self.layout
        _write_back(st, layout, outputs[:n])
        if self.grad_key is None:               # the same for every call of this trace
            self.grad_key = _grad_key(st.tensors)
        st.grads_written(self.grad_key)
        return _unflatten(out_template, iter(Tensor._wrap(a, be) for a in outputs[n:]))

    def _pure(self, inputs: list) -> list:
        """The function the backend traces: state and inputs in, new state and results out."""
        out, self.layout, self.drawn, self.log = self._python(inputs)
        return out

    def prove(self, st: _State, leaves: list[Tensor]) -> str | None:
        """After the first call of a shapeless trace: None when its graph is right at another
        batch size, else why not (see ``lucid.compiler_shapeless``). Leaves the state as it was."""
        be = self.be
        try:
            wide = shapeless_.widened(be, [t.data for t in leaves])
        except Exception as e:                  # noqa: BLE001 - any refusal means "not proven"
            return f"its arguments cannot be widened along dim 0 ({e})"
        state = st.arrays(be)
        inputs = state + list(random.stream_arrays(be)) + wide
        snap = st.snapshot()
        self._call = (st, leaves, len(state))
        try:
            expected, _, drawn, log = self._python(inputs)
        except Exception as e:                  # noqa: BLE001
            return f"its Python fails at another batch size ({e})"
        finally:
            st.restore(snap)
            self._call = None
        assert self.log is not None and log is not None
        reason = shapeless_.first_difference(self.log, log)
        if reason is None and drawn != self.drawn:
            reason = "its random draws depend on the batch size"
        if reason is not None:
            return reason
        try:
            got = self.compiled(inputs)
            be.eval(*expected, *got)
        except Exception as e:                  # noqa: BLE001
            return f"MLX refused to replay it at another batch size ({e})"
        return shapeless_.mismatch(be, expected, got)

    def _python(self, inputs: list) -> tuple[list, tuple, int, list | None]:
        """Run fn on the state and inputs (tracers while tracing): the new state and results
        as one list, their layout, the random blocks drawn and (shapeless) the primitive log."""
        assert self._call is not None
        st, leaves, n = self._call
        hypers = st.hypers()
        grads = st.install(inputs[:n])
        traced_lrs = st.lrs()
        args, kwargs = _unflatten(self.template, iter(
            _stand_in(t, a) for t, a in zip(leaves, inputs[n + 2:])))
        log: list | None = [] if self.shapeless else None
        with tracing.running(tracing.Trace(self.be, (inputs[n], inputs[n + 1]))) as run, \
                shapeless_.recording(self.be, log):
            out = self.fn(*args, **kwargs)
        st.check_undeclared(run, grads)
        if any(a is not b for a, b in zip(st.lrs(), traced_lrs)):
            raise RuntimeError("the lucid.compile'd function changed a learning rate (a "
                               "scheduler's step()?); step schedulers between calls instead")
        for g, h in zip(st.groups(), hypers):
            g.update(h)                     # the Python numbers again; the trace keeps its inputs
        new_state, layout = _collect(st)
        results, out_template = _flatten(out)
        return (new_state + [t.data for t in results], (layout, out_template, len(new_state)),
                run.drawn, log)


_lr_arrays: dict[tuple[str, float], Any] = {}
# the input hyper-parameters in the order a call passes them (lr first, as before)
_INPUT_ORDER = ("lr",) + tuple(sorted(INPUT_HYPERPARAMETERS - {"lr"}))


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


def _write_back(st: _State, layout: tuple, arrays: list) -> None:
    """The compiled call's new state into the same objects (arrays evaluated already)."""
    with_grad, entries = layout
    it = iter(arrays)
    for t in st.tensors:
        t._set_data(next(it))
    has = set(with_grad)
    for i, t in enumerate(st.tensors):
        t.grad = Tensor._wrap(next(it), t._be) if i in has else None
    for oi, p, k, number in entries:
        v = next(it)
        if number is not None:              # a step count: a Python number again
            v = round(v.item()) if number == "int" else float(v.item())
        st.optimizers[oi]._state.setdefault(p, {})[k] = v


# -- arguments and results -----------------------------------------------------------------

_LEAF = "<tensor>"


def _flatten(obj: Any) -> tuple[list[Tensor], Any]:
    """Tensors of a nested structure in order, and a hashable template of the rest (Tensors as
    their shape, dtype and requires_grad; scalars as themselves)."""
    leaves: list[Tensor] = []

    def walk(o: Any) -> Any:
        if isinstance(o, Tensor):
            leaves.append(o)
            return (_LEAF, o.shape, o.dtype.name, o.requires_grad)
        if isinstance(o, (list, tuple)):
            return (type(o).__name__, tuple(walk(v) for v in o))
        if isinstance(o, dict):
            return ("dict", tuple((k, walk(v)) for k, v in o.items()))
        if o is None or isinstance(o, (bool, int, float, str)):
            return ("const", o)
        raise TypeError(f"lucid.compile'd functions take and return Tensors, Python scalars, "
                        f"strings, None and tuples/lists/dicts of them, got "
                        f"{type(o).__name__}")
    return leaves, walk(obj)


def _unflatten(template: Any, leaves: Any) -> Any:
    tag = template[0]
    if tag == _LEAF:
        return next(leaves)
    if tag == "const":
        return template[1]
    if tag == "dict":
        return {k: _unflatten(v, leaves) for k, v in template[1]}
    items = [_unflatten(v, leaves) for v in template[1]]
    return tuple(items) if tag == "tuple" else items


def _stand_in(t: Tensor, array: Any) -> Tensor:
    """The traced stand-in of an argument tensor. It is not the caller's object (a write into
    it would not reach the caller), so it counts as undeclared: such a write is refused."""
    return Tensor._wrap(array, t._be, requires_grad=t.requires_grad)


def _map_tensors(obj: Any, f: Callable[[Tensor], Any]) -> Any:
    if isinstance(obj, Tensor):
        return f(obj)
    if isinstance(obj, (list, tuple)):
        items = [_map_tensors(v, f) for v in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        return {k: _map_tensors(v, f) for k, v in obj.items()}
    return obj


def _backend(st: _State, leaves: list[Tensor]) -> Any:
    """The one backend of the state and the arguments (None when there are no tensors)."""
    found = dict(st.backends)
    for t in leaves:
        found[id(t._be)] = t._be
    if len(found) > 1:
        names = sorted(b.name for b in found.values())
        raise RuntimeError(f"a lucid.compile'd call mixes tensors on different backends: "
                           f"{' and '.join(names)}")
    return next(iter(found.values()), None)


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v

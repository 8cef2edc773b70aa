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
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from lucid import autograd, precision, random, structure, tracing
from lucid import compiler_shapeless as shapeless_
from lucid.compiler_state import _collect, _grad_key, _State, _Writer
from lucid.nn.module import Module
from lucid.optim.optimizer import Optimizer
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
        # each distinct layout key as a small int: the per-call key then hashes an int, not
        # the layout's long nested tuple (a few µs a call on a small net)
        self._layout_ids: dict[tuple, int] = {}
        self._next_layout_id = 0
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
            ids = self._layout_ids
            known = ids.get(st.key)
            if known is None:
                if len(ids) >= 4 * MAX_TRACES:      # forgotten layouts only cost a new trace:
                    ids.clear()                     # ids are never reused
                known = ids[st.key] = self._next_layout_id
                self._next_layout_id += 1
            st.key_id = known
        return st

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st = self._state()
        leaves, template = _flatten_call(args, kwargs)
        be = _backend(st, leaves)
        if be is None or not be.lazy:
            return self._call_eagerly(st, args, kwargs)
        # autocast decides which dtypes the traced ops compute in: part of the key
        key = (template, st.key_id, st.grad_key(), st.hyper_key(), autograd.is_grad_enabled(),
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
        self._writer: _Writer | None = None     # writes back into the state it was made for
        self._stream: tuple = ()                # the random stream's arrays of the last call

    def run(self, st: _State, leaves: list[Tensor]) -> Any:
        be = self.be
        state = st.arrays(be)
        if self.layout is None or self.drawn:
            self._stream = random.stream_arrays(be)
        # (a trace that draws nothing never reads the stream: its first arrays serve, and no
        # position array is made per call)
        inputs = state + list(self._stream) + [t.data for t in leaves]
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
        writer = self._writer
        if writer is None or writer.st is not st:
            writer = self._writer = _Writer(st, layout)
        writer.write(outputs[:n])
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


# -- arguments and results -----------------------------------------------------------------

_LEAF = "<tensor>"


def _flatten_call(args: tuple, kwargs: dict) -> tuple[list[Tensor], Any]:
    """``_flatten((args, kwargs))``, built directly for the common call of positional Tensors
    (every call pays for this)."""
    if kwargs or not all(type(a) is Tensor for a in args):
        return _flatten((args, kwargs))
    return list(args), ("tuple", (("tuple", tuple((_LEAF, a.shape, a.dtype.name, a.requires_grad)
                                                  for a in args)), ("dict", ())))


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
    found = st.backends
    if leaves:
        found = dict(found)
        for t in leaves:
            found[id(t._be)] = t._be
    if len(found) > 1:
        names = sorted(b.name for b in found.values())
        raise RuntimeError(f"a lucid.compile'd call mixes tensors on different backends: "
                           f"{' and '.join(names)}")
    return next(iter(found.values()), None)

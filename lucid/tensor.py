"""Tensor: a backend array plus autograd bookkeeping.

This is the one place that picks the backend for new data, rejects ops that mix backends, promotes
dtypes the same way on every backend, checks axes and indices before a backend sees them, and
applies Functions. Functions of several tensors (``where``, ``concatenate``...) live in
``lucid.functions``.
"""

from __future__ import annotations

import builtins
from typing import Any

from lucid import autograd, backends, device, dtypes, precision, structure, tracing
from lucid.ops import elementwise as E
from lucid.ops import linalg as L
from lucid.tensor_methods import TensorMethods

resolve_backend = device.resolve          # kept for the modules that import it from here


class Tensor(TensorMethods):
    """An n-dimensional array on one backend, recording the ops that made it for ``backward``.

    ``data`` is the backend's own array (``np.ndarray`` / ``mx.array``). Internal code replaces
    it only through ``_set_data`` (the one write path)."""

    __array_priority__ = 1000          # make numpy defer to our reflected operators
    __slots__ = ("__weakref__", "_be", "_ctx", "_ready", "_retains_grad", "data", "grad",
                 "requires_grad")
    data: Any                          # the backend's array
    grad: Tensor | None
    _ctx: Any                          # the Function that made this tensor (None: a leaf)
    _retains_grad: bool

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: Any = None) -> None:
        be = resolve_backend(device) if device is not None else (
            data._be if isinstance(data, Tensor) else backends.current())
        dt = dtypes.get(dtype)
        ready = True
        if isinstance(data, Tensor):
            ready = data._ready
            if data._be is not be:
                tracing.forbid_host_read("moving a tensor to another backend")
                data, ready = data._be.to_numpy(data.data), True
            else:
                data = data.data
        self._init(be.asarray(data, dt.name if dt else None), be, requires_grad, None)
        self._ready = ready

    def _init(self, data, be, requires_grad, ctx) -> None:
        self.data, self._be, self.grad, self._ctx, self._retains_grad = data, be, None, ctx, False
        self._ready = not be.lazy
        self.requires_grad = False
        if tracing._active is not None:
            tracing.note_created(self)
        if requires_grad:
            if not self.dtype.is_floating:      # requires_grad_'s check, without its bump:
                self.requires_grad_(True)       # a new tensor is in no state yet
            self.requires_grad = True

    @classmethod
    def _wrap(cls, data: Any, be: Any, requires_grad: bool = False, ctx: Any = None) -> Tensor:
        """A Tensor around an existing backend array (no copy, no checks)."""
        t = cls.__new__(cls)
        t.data, t._be, t.grad, t._ctx, t._retains_grad = data, be, None, ctx, False
        t._ready = not be.lazy
        t.requires_grad = requires_grad
        if tracing._active is not None:
            tracing.note_created(t)
        return t

    def _apply(self, fn_cls: type, *others: Tensor, **options: Any) -> Tensor:
        return apply(fn_cls, self, *others, **options)

    def _new(self, data: Any) -> Tensor:
        return Tensor._wrap(data, self._be)

    # -- attributes --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def dtype(self) -> dtypes.DType:
        return dtypes.by_name(self._be.dtype_name(self.data))

    @property
    def backend(self) -> str:
        return self._be.name

    @property
    def device(self) -> device.Device:
        """Where this tensor's backend computes: ``t.device == "cpu"`` for NumPy and for MLX's
        CPU build, ``"gpu"`` for MLX on Metal or CUDA."""
        return device.of(self._be)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def numel(self) -> int:
        n = 1
        for s in self.data.shape:
            n *= s
        return n

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not self.dtype.is_floating:
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        if self.requires_grad != bool(flag):
            structure.bump()              # whether a tensor gets a gradient is layout
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retains_grad = True

    # -- autograd ----------------------------------------------------------------------------
    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``. Without ``gradient`` the seed is
        ones shaped like self (so a non-scalar output backpropagates its sum)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of "
                               "the computation had requires_grad=True (or it ran under no_grad)")
        if gradient is None:
            seed = self._be.full(self.shape, 1.0, self._be.dtype_name(self.data))
        else:
            g = gradient if isinstance(gradient, Tensor) else Tensor(gradient, device=self.backend)
            self._same_backend(g)
            if g.shape != self.shape:
                raise ValueError(f"gradient shape {g.shape} does not match tensor shape "
                                 f"{self.shape}")
            seed = g.data
        autograd.run_backward(self, seed, retain_graph, _wrap_grad)

    def detach(self) -> Tensor:
        t = Tensor._wrap(self.data, self._be)
        t._ready = self._ready
        return t

    def zero_grad_(self, set_to_none: bool = True) -> None:
        """Drop ``.grad`` (``set_to_none=False``: fill it with zeros instead, as PyTorch)."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad = Tensor._wrap(self._be.full(self.shape, 0.0, self._be.dtype_name(
                self.grad.data)), self._be)

    # -- conversion --------------------------------------------------------------------------
    def numpy(self) -> Any:
        """A NumPy copy (synchronises on lazy backends)."""
        tracing.forbid_host_read("numpy()")
        out = self._be.to_numpy(self.data)
        self._ready = True
        return out

    def _host_values(self, as_list: bool = False) -> Any:
        """The values as a NumPy array (``as_list``: a nested Python list, the array's own
        ``tolist()``, cheaper for a few values) when reading them forces no evaluation (an
        eager backend, or data made from host values), else None. Checks of indices and class
        targets use this, so that they never make a lazy backend compute."""
        if self._be.lazy and not self._ready:
            return None
        if as_list:
            return self.data.tolist()
        return self.data if not self._be.lazy else self._be.to_numpy(self.data)

    def item(self) -> builtins.float | int | bool:
        tracing.forbid_host_read("item()")
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        tracing.forbid_host_read("tolist()")
        return self.numpy().tolist()

    def to(self, target: Any) -> Tensor:
        """A copy on another backend (``"numpy"``/``"cpu"``, ``"mlx"``/``"gpu"``, a Device) or a
        cast to a dtype; the tensor itself when nothing changes."""
        be, dt = device.to_target(target)
        if be is None:
            return self.astype(dt)
        if be is self._be:
            return self
        tracing.forbid_host_read("to() another backend")
        return Tensor._wrap(be.asarray(self.numpy(), self._be.dtype_name(self.data)), be,
                            requires_grad=self.requires_grad)

    def astype(self, dtype: Any) -> Tensor:
        dt = dtypes.get(dtype)
        if dt == self.dtype:
            return self
        return apply(E.Cast, self, dtype=dt.name)

    def float(self) -> Tensor:
        """A float32 copy (differentiable; self when already float32)."""
        return self.astype(dtypes.float32)

    def half(self) -> Tensor:
        """A float16 copy (differentiable; self when already float16)."""
        return self.astype(dtypes.float16)

    def bfloat16(self) -> Tensor:
        """A bfloat16 copy, rounded to nearest even (differentiable)."""
        return self.astype(dtypes.bfloat16)

    def __repr__(self) -> str:
        tracing.forbid_host_read("printing a tensor")
        extras = []
        if self.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.dtype!r}")
        if self.backend != "numpy":
            extras.append(f"backend='{self.backend}'")
        if self._ctx is not None and self.requires_grad:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return backends.format_array(self.numpy(), "Tensor", extras)

    def __bool__(self) -> bool:
        tracing.forbid_host_read("bool(tensor) (an `if` or `while` on a tensor)")
        return bool(self.item())

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating:
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- copying and pickling ----------------------------------------------------------------
    # A tensor holds its backend as a module object, which pickle cannot store: a pickled tensor
    # is (backend name, NumPy array, requires_grad), rebuilt on the same backend. The gradient
    # and the graph are not pickled (PyTorch drops them too); deepcopy keeps ``.grad``.
    def __getstate__(self) -> dict:
        if self._ctx is not None:
            raise RuntimeError("only leaf tensors (not the result of an op that records a "
                               "graph) can be pickled; pickle t.detach() instead")
        tracing.forbid_host_read("pickling a tensor")
        return {"backend": self._be.name, "data": self._be.to_numpy(self.data),
                "requires_grad": self.requires_grad}

    def __setstate__(self, state: dict) -> None:
        be = backends.load(state["backend"])
        data = state["data"]
        self._init(be.asarray(data, str(data.dtype)), be, False, None)
        self.requires_grad = bool(state["requires_grad"])

    def __deepcopy__(self, memo: dict) -> Tensor:
        """An independent leaf with the same values, backend, requires_grad and (a copy of)
        ``.grad``. Arrays are never written in place (``_set_data`` replaces them), so the copy
        may start from the same array: a later write to either tensor leaves the other alone."""
        if self._ctx is not None:
            raise RuntimeError("only leaf tensors (made by the user, not by an op that records "
                               "a graph) support deepcopy, as in PyTorch; deepcopy t.detach()")
        t = type(self).__new__(type(self))
        memo[id(self)] = t
        t._init(self.data, self._be, False, None)
        t.requires_grad = self.requires_grad
        t._ready = self._ready
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        return t

    # -- helpers -----------------------------------------------------------------------------
    def _same_backend(self, other: Tensor) -> None:
        if other._be is not self._be:
            raise RuntimeError(f"an op mixes tensors on different backends: {self.backend!r} and "
                               f"{other.backend!r}; move one with .to('{self.backend}')")

    def _lift(self, value: Any) -> Tensor:
        """A Python scalar / list / array as a tensor on self's backend, matching self's dtype
        where that keeps the value (float scalars turn an integer tensor into float32)."""
        if isinstance(value, Tensor):
            if value._be is not self._be:
                self._same_backend(value)
            return value
        be = self._be
        if isinstance(value, bool):
            name = be.dtype_name(self.data)
        elif isinstance(value, int):
            name = be.dtype_name(self.data)
            name = "int64" if name == "bool" else name
        elif isinstance(value, float):
            name = be.dtype_name(self.data)
            name = name if dtypes.is_floating(name) else "float32"
        else:
            return Tensor(value, device=self.backend)
        return Tensor._wrap(be.asarray(value, name), be)

    # -- operators ---------------------------------------------------------------------------
    def __add__(self, o): return _binary(E.Add, self, o)
    def __radd__(self, o): return _binary(E.Add, self._lift(o), self)
    def __sub__(self, o): return _binary(E.Sub, self, o)
    def __rsub__(self, o): return _binary(E.Sub, self._lift(o), self)
    def __mul__(self, o): return _binary(E.Mul, self, o)
    def __rmul__(self, o): return _binary(E.Mul, self._lift(o), self)
    def __truediv__(self, o): return _div(self, o)
    def __rtruediv__(self, o): return _div(self._lift(o), self)
    def __pow__(self, o): return _pow(self, self._lift(o))
    def __rpow__(self, o): return _pow(self._lift(o), self)
    def __matmul__(self, o): return self.matmul(o)
    def __rmatmul__(self, o): return self._lift(o).matmul(self)
    def __neg__(self): return apply(E.Neg, self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()
    def __lt__(self, o): return _compare(self._lift(o), self, "greater")
    def __gt__(self, o): return _compare(self, self._lift(o), "greater")
    def __le__(self, o): return _compare(self._lift(o), self, "greater_equal")
    def __ge__(self, o): return _compare(self, self._lift(o), "greater_equal")
    def __eq__(self, o): return _compare(self, self._lift(o), "equal")
    def __ne__(self, o): return _not(_compare(self, self._lift(o), "equal"))
    __hash__ = object.__hash__

    def __or__(self, o): return _logical(self, self._lift(o), True)
    def __and__(self, o): return _logical(self, self._lift(o), False)

    def __invert__(self) -> Tensor:
        if self.dtype != dtypes.bool_:
            raise TypeError(f"~ needs a bool tensor, got {self.dtype}")
        return _not(self)

    def matmul(self, other: Any) -> Tensor:
        """Matrix product with NumPy's rules: 1-D operands are promoted and the added axis
        dropped; batch dims broadcast."""
        a, b = _promote(*precision.cast("matmul", self, self._lift(other)))
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs operands with at least 1 dim, got shapes {a.shape} "
                             f"and {b.shape}")
        va, vb = a.ndim == 1, b.ndim == 1
        a2 = a.reshape(1, -1) if va else a
        b2 = b.reshape(-1, 1) if vb else b
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape} "
                             f"({a2.shape[-1]} != {b2.shape[-2]})")
        out = apply(L.MatMul, a2, b2)
        if va:
            out = out.reshape(out.shape[:-2] + out.shape[-1:])
        if vb:
            out = out.reshape(out.shape[:-1])
        return out

    # -- in place: the one write path (arrays saved for backward are never mutated) ----------
    def _set_data(self, data: Any, be: Any = None) -> Tensor:
        """Replace this tensor's array (and backend, when ``be`` is given) in place: the Tensor
        object stays, so optimizers and modules keep holding it. Every internal in-place write
        (optimizers, init, load_state_dict, Module.to, projections, compile) comes here, which
        is how ``lucid.compile`` learns which tensors a traced function updated."""
        tracing.note_write(self)
        old = self.data
        # a new shape, dtype or backend changes the layout a compiled step was resolved for
        if be is not None or old.shape != data.shape or old.dtype != data.dtype:
            structure.bump()
        self.data = data
        if be is not None:
            self._be = be
        self._ready = not self._be.lazy
        return self

    def _assign(self, data: Any) -> Tensor:
        """A checked in-place write of a backend array: broadcast to this shape, cast to this
        dtype; refused on a leaf that requires grad while grad mode is on."""
        if self.requires_grad and autograd.is_grad_enabled() and self._ctx is None:
            raise RuntimeError("in-place change of a leaf tensor that requires grad; use no_grad()")
        if tuple(data.shape) != self.shape:
            data = self._be.broadcast_to(data, self.shape)
        self._set_data(self._be.astype(data, self._be.dtype_name(self.data)))
        if self._be.lazy and tracing._active is None:   # evaluated by the next optimizer step
            autograd.note_lazy_write(self)
        return self

    def copy_(self, src: Any) -> Tensor:
        return self._assign(self._lift(src).data)

    def fill_(self, value: builtins.float) -> Tensor:
        return self._assign(self._be.full(self.shape, value, self._be.dtype_name(self.data)))

    def zero_(self) -> Tensor:
        return self.fill_(0.0)


def _wrap_grad(array: Any, like: Tensor) -> Tensor:
    return Tensor._wrap(array, like._be)


def promote(*ts: Tensor) -> tuple[Tensor, ...]:
    """The tensors cast to their common dtype, so every backend computes in the same type
    (NumPy alone would make int64 + float32 float64)."""
    d = ts[0].data.dtype
    if all(t.data.dtype == d for t in ts[1:]):  # the usual case: nothing to promote, and the
        return ts                               # arrays' own dtypes are cheap to compare
    names = [t._be.dtype_name(t.data) for t in ts]
    target = names[0]
    for n in names[1:]:
        target = dtypes.promote(target, n)
    return tuple(t if n == target else t.astype(target) for t, n in zip(ts, names))


def _promote(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    return promote(a, b)  # type: ignore[return-value]


def apply(fn_cls: type, *inputs: Tensor, **options: Any) -> Tensor:
    """Run ``fn_cls`` forward on the inputs' arrays and, if any input needs grad, record it.

    Non-differentiable tensor arguments (class targets, masks, counts) are passed as options
    holding Tensors: they pass the same backend check as the inputs and reach ``forward`` as
    arrays. A raw array option from another backend's array library is refused too, so no op
    can take an array of another backend past this check."""
    first = inputs[0]
    be = first._be
    for t in inputs:
        if t._be is not be:
            first._same_backend(t)
    for value in options.values():           # inline: this runs on every op
        if type(value) not in _PLAIN:
            options = _unwrap_options(first, fn_cls, options)
            break
    needs = tuple([t.requires_grad for t in inputs])
    record = autograd._grad_enabled and True in needs
    fn = fn_cls(be, inputs if record else (), needs)
    out = fn.forward(*[t.data for t in inputs], **options)
    result = Tensor._wrap(out, be, True, fn) if record else Tensor._wrap(out, be)
    if tracing._recorder is not None:         # lucid.export records the ops it exports
        tracing._recorder(fn, inputs, options, result)
    return result


def _unwrap_option(first: Tensor, fn_cls: type, key: str, value: Any) -> Any:
    if isinstance(value, Tensor):
        if value._be is not first._be:
            first._same_backend(value)
        return value.data
    if hasattr(value, "__dlpack__"):          # a raw array (np.ndarray, mx.array)
        # Allowed only from the inputs' own array library (an index already checked by
        # lucid.indexing): the package that defines the array type names its backend.
        lib = type(value).__module__.split(".")[0]
        if lib != type(first.data).__module__.split(".")[0]:
            raise RuntimeError(f"an op mixes tensors on different backends: "
                               f"{first.backend!r} and {lib!r} ({fn_cls.__name__}'s {key!r} "
                               f"is a {lib} array); move it with .to('{first.backend}')")
    return value


# option types that are never arrays: a set lookup of the exact type is the cheapest test
_PLAIN = frozenset({int, float, bool, str, type(None), slice, tuple, list})


def _unwrap_options(first: Tensor, fn_cls: type, options: dict) -> dict:
    """The options with every Tensor checked against the inputs' backend and replaced by its
    array. Tensor arguments travel as top-level options
    (tuples and lists hold axes, shapes, index items, out-lists: not walked, as this runs on
    every op)."""
    out = dict(options)
    for key, value in options.items():
        if type(value) not in _PLAIN:
            out[key] = _unwrap_option(first, fn_cls, key, value)
    return out


def _binary(fn_cls: type, a: Any, b: Any) -> Tensor:
    if not isinstance(a, Tensor):
        a = b._lift(a)
    if not isinstance(b, Tensor):
        b = a._lift(b)
    if a.data.dtype != b.data.dtype:              # the arrays' own dtypes: cheap to compare
        a, b = _promote(a, b)
    return apply(fn_cls, a, b)


def _div(a: Tensor, b: Any) -> Tensor:
    """True division; integer inputs give float32 (as in PyTorch)."""
    b = a._lift(b)
    if not a.dtype.is_floating and not b.dtype.is_floating:
        a = a.astype(dtypes.float32)
    return _binary(E.Div, a, b)


def _noted(op: str, inputs: tuple, out: Tensor) -> Tensor:
    """out, after telling an op recording (lucid.export) of an op made without a Function."""
    if tracing._recorder is not None:
        tracing._recorder(op, inputs, {}, out)
    return out


def _pow(a: Tensor, b: Tensor) -> Tensor:
    """a ** b; float32 under ``lucid.autocast`` (PyTorch's list: pow loses range in half)."""
    if precision._active is not None:
        a, b = precision.cast("pow", a, b)
    return _binary(E.Pow, a, b)


def _compare(a: Tensor, b: Tensor, op: str) -> Tensor:
    a, b = _promote(a, b)
    return _noted(op, (a, b), Tensor._wrap(getattr(a._be, op)(a.data, b.data), a._be))


def _not(t: Tensor) -> Tensor:
    return _noted("not", (t,), Tensor._wrap(t._be.equal(t.data, False), t._be))


def _logical(a: Tensor, b: Tensor, is_or: bool) -> Tensor:
    """Elementwise or / and of two bool tensors."""
    if a.dtype != dtypes.bool_ or b.dtype != dtypes.bool_:
        raise TypeError(f"| and & need bool tensors, got {a.dtype} and {b.dtype}")
    be = a._be
    out = be.where(a.data, True, b.data) if is_or else be.where(a.data, b.data, False)
    return _noted("or" if is_or else "and", (a, b), Tensor._wrap(out, be))

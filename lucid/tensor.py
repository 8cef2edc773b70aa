"""Tensor: a backend array plus autograd bookkeeping.

This is the one place that picks the backend for new data, rejects ops that mix backends, promotes
dtypes the same way on every backend, and applies Functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lucid import autograd, backends, dtypes
from lucid.ops import elementwise as E
from lucid.ops import linalg as L
from lucid.ops import movement as M
from lucid.ops import reduce as R

_DEVICE_ALIASES = {"cpu": "numpy", "gpu": "mlx", "numpy": "numpy", "mlx": "mlx"}
_RANK = {"bool": 0, "int32": 1, "int64": 2, "float16": 3, "float32": 4, "float64": 5}


def resolve_backend(device: Any = None):
    """Backend module for a ``device=`` argument: None (active), "cpu", "gpu" or a backend name."""
    if device is None:
        return backends.current()
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu', 'gpu', 'numpy' or 'mlx', got {device!r}")
    key = device.lower().split(":")[0]
    if key not in _DEVICE_ALIASES:
        raise ValueError(f"unknown device {device!r}; choose 'cpu' (numpy), 'gpu' (mlx), "
                         "'numpy' or 'mlx'")
    return backends.load(_DEVICE_ALIASES[key])


class Tensor:
    """An n-dimensional array on one backend, recording the ops that made it for ``backward``."""

    __array_priority__ = 1000          # make numpy defer to our reflected operators
    __slots__ = ("__weakref__", "_be", "_ctx", "_retains_grad", "data", "grad", "requires_grad")

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: Any = None) -> None:
        be = resolve_backend(device) if device is not None else (
            data._be if isinstance(data, Tensor) else backends.current())
        dt = dtypes.get(dtype)
        if isinstance(data, Tensor):
            data = data.data if data._be is be else data._be.to_numpy(data.data)
        self._init(be.asarray(data, dt.name if dt else None), be, requires_grad, None)

    def _init(self, data, be, requires_grad, ctx) -> None:
        self.data, self._be, self.grad, self._ctx, self._retains_grad = data, be, None, ctx, False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: Any, be: Any, requires_grad: bool = False, ctx: Any = None) -> Tensor:
        t = cls.__new__(cls)
        t._init(data, be, False, ctx)
        t.requires_grad = requires_grad
        return t

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
    def device(self) -> str:
        return "cpu" if self._be.name == "numpy" else "gpu"

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not self.dtype.is_floating:
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
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
                raise ValueError(f"gradient shape {g.shape} does not match tensor shape {self.shape}")
            seed = g.data
        autograd.run_backward(self, seed, retain_graph, _wrap_grad)

    def detach(self) -> Tensor:
        return Tensor._wrap(self.data, self._be)

    def zero_grad_(self) -> None:
        self.grad = None

    # -- conversion --------------------------------------------------------------------------
    def numpy(self):
        """A NumPy copy (synchronises on lazy backends)."""
        return self._be.to_numpy(self.data)

    def item(self) -> float | int | bool:
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def to(self, target: Any) -> Tensor:
        """A copy on another backend (``"numpy"``/``"cpu"``, ``"mlx"``/``"gpu"``) or dtype."""
        if isinstance(target, str) and target.lower().split(":")[0] in _DEVICE_ALIASES:
            be = resolve_backend(target)
            if be is self._be:
                return self
            return Tensor._wrap(be.asarray(self.numpy(), self._be.dtype_name(self.data)), be,
                                requires_grad=self.requires_grad)
        return self.astype(target)

    def astype(self, dtype: Any) -> Tensor:
        dt = dtypes.get(dtype)
        if dt == self.dtype:
            return self
        return apply(E.Cast, self, dtype=dt.name)

    def float(self) -> Tensor:
        return self.astype(dtypes.float32)

    def __repr__(self) -> str:
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
        return bool(self.item())

    def __float__(self) -> float:
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

    # -- helpers -----------------------------------------------------------------------------
    def _same_backend(self, other: Tensor) -> None:
        if other._be is not self._be:
            raise RuntimeError(f"an op mixes tensors on different backends: {self.backend!r} and "
                               f"{other.backend!r}; move one with .to('{self.backend}')")

    def _lift(self, value: Any) -> Tensor:
        """A Python scalar / list / array as a tensor on self's backend, matching self's dtype
        where that keeps the value (float scalars turn an integer tensor into float32)."""
        if isinstance(value, Tensor):
            self._same_backend(value)
            return value
        if isinstance(value, bool):
            name = "bool" if self.dtype == dtypes.bool_ else self._be.dtype_name(self.data)
        elif isinstance(value, int):
            name = self._be.dtype_name(self.data) if self.dtype != dtypes.bool_ else "int64"
        elif isinstance(value, float):
            name = self._be.dtype_name(self.data) if self.dtype.is_floating else "float32"
        else:
            return Tensor(value, device=self.backend)
        return Tensor._wrap(self._be.asarray(value, name), self._be)

    # -- operators ---------------------------------------------------------------------------
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(self._lift(o), self)
    def __sub__(self, o): return sub(self, o)
    def __rsub__(self, o): return sub(self._lift(o), self)
    def __mul__(self, o): return mul(self, o)
    def __rmul__(self, o): return mul(self._lift(o), self)
    def __truediv__(self, o): return div(self, o)
    def __rtruediv__(self, o): return div(self._lift(o), self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(self._lift(o), self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(self._lift(o), self)
    def __neg__(self): return apply(E.Neg, self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()
    def __lt__(self, o): return _compare(self._lift(o), self, "greater")
    def __gt__(self, o): return _compare(self, self._lift(o), "greater")
    def __le__(self, o): return _not(_compare(self, self._lift(o), "greater"))
    def __ge__(self, o): return _not(_compare(self._lift(o), self, "greater"))
    def __eq__(self, o): return _compare(self, self._lift(o), "equal")  # type: ignore[override]
    def __ne__(self, o): return _not(_compare(self, self._lift(o), "equal"))  # type: ignore
    __hash__ = object.__hash__

    def __or__(self, o): return _logical(self, self._lift(o), True)
    def __and__(self, o): return _logical(self, self._lift(o), False)

    def __invert__(self) -> Tensor:
        if self.dtype != dtypes.bool_:
            raise TypeError(f"~ needs a bool tensor, got {self.dtype}")
        return _not(self)

    def __getitem__(self, index: Any) -> Tensor:
        return apply(M.GetItem, self, index=self._index(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("in-place assignment to a tensor that requires grad; wrap it in "
                               "lucid.no_grad() or assign to a detached copy")
        v = self._lift(value).astype(self.dtype).data
        self.data = self._be.setitem(self.data, self._index(index), v)

    def _index(self, index: Any) -> Any:
        if isinstance(index, tuple):
            return tuple(self._index_item(i) for i in index)
        return self._index_item(index)

    def _index_item(self, i: Any) -> Any:
        if i is None or i is Ellipsis or isinstance(i, (int, slice)):
            return i
        t = i if isinstance(i, Tensor) else Tensor(i, device=self.backend)
        self._same_backend(t)
        if t.dtype == dtypes.bool_ or t.dtype.is_floating:
            raise TypeError(f"index arrays must be integers, got {t.dtype} (boolean masks have a "
                            "data-dependent shape; use lucid.where instead)")
        return t.data

    # -- math methods ------------------------------------------------------------------------
    def exp(self): return apply(E.Exp, self)
    def log(self): return apply(E.Log, self)
    def sqrt(self): return apply(E.Sqrt, self)
    def tanh(self): return apply(E.Tanh, self)
    def sigmoid(self): return apply(E.Sigmoid, self)
    def relu(self): return apply(E.Relu, self)
    def erf(self): return apply(E.Erf, self)
    def abs(self): return apply(E.Abs, self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        return apply(E.Clip, self, lo=min, hi=max)

    clamp = clip

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return apply(R.Sum, self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        n = 1
        for a in R.norm_axis(axis, self.ndim):
            n *= self.shape[a]
        return self.sum(axis, keepdims) / float(n)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """Variance (population by default, ``ddof=1`` for the unbiased estimate)."""
        n = 1
        for a in R.norm_axis(axis, self.ndim):
            n *= self.shape[a]
        d = self - self.mean(axis, keepdims=True)
        return (d * d).sum(axis, keepdims) / float(n - ddof)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        return apply(R.Max, self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False) -> Tensor:
        return -((-self).max(axis, keepdims))

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._wrap(self._be.argmax(self.data, axis=axis, keepdims=keepdims), self._be)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return (-self.detach()).argmax(axis, keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        return apply(R.Softmax, self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return apply(R.LogSoftmax, self, axis=axis)

    # -- shape methods -----------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        shape = _shape_arg(shape)
        if -1 in shape:
            known = 1
            for s in shape:
                known *= s if s != -1 else 1
            shape = tuple(self.numel() // max(known, 1) if s == -1 else s for s in shape)
        if shape == self.shape:
            return self
        return apply(M.Reshape, self, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])

    def transpose(self, *axes) -> Tensor:
        """No argument: reverse all axes. Two ints: swap them (PyTorch). A full permutation:
        reorder (NumPy)."""
        if not axes:
            perm = tuple(range(self.ndim))[::-1]
        elif len(axes) == 2 and all(isinstance(a, int) for a in axes):
            a, b = (x % self.ndim for x in axes)
            order = list(range(self.ndim))
            order[a], order[b] = order[b], order[a]
            perm = tuple(order)
        else:
            perm = tuple(a % self.ndim for a in _shape_arg(axes))
        return apply(M.Transpose, self, axes=perm)

    def permute(self, *axes) -> Tensor:
        return apply(M.Transpose, self, axes=tuple(a % self.ndim for a in _shape_arg(axes)))

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def unsqueeze(self, dim: int) -> Tensor:
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | None = None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dim = dim % self.ndim
        if self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:])

    def broadcast_to(self, *shape) -> Tensor:
        shape = _shape_arg(shape)
        return self if shape == self.shape else apply(M.BroadcastTo, self, shape=shape)

    expand = broadcast_to

    # -- in-place (rebinds .data; arrays saved for backward are never mutated) ---------------
    def _assign(self, data: Any) -> Tensor:
        if self.requires_grad and autograd.is_grad_enabled() and self._ctx is None:
            raise RuntimeError("in-place change of a leaf tensor that requires grad; use no_grad()")
        if tuple(data.shape) != self.shape:
            data = self._be.broadcast_to(data, self.shape)
        self.data = self._be.astype(data, self._be.dtype_name(self.data))
        return self

    def copy_(self, src: Any) -> Tensor:
        return self._assign(self._lift(src).data)

    def fill_(self, value: float) -> Tensor:
        return self._assign(self._be.full(self.shape, value, self._be.dtype_name(self.data)))

    def zero_(self) -> Tensor:
        return self.fill_(0.0)


def _wrap_grad(array: Any, like: Tensor) -> Tensor:
    return Tensor._wrap(array, like._be)


def _shape_arg(shape: Sequence) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _promote(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Cast both to the wider dtype (bool < int32 < int64 < float16 < float32 < float64) so every
    backend computes in the same type (NumPy alone would make int64 + float32 float64)."""
    da, db = a._be.dtype_name(a.data), b._be.dtype_name(b.data)
    if da == db:
        return a, b
    target = da if _RANK[da] >= _RANK[db] else db
    if {da, db} == {"int64", "float16"} or {da, db} == {"int32", "float16"}:
        target = "float16"
    return a.astype(target), b.astype(target)


def apply(fn_cls: type, *inputs: Tensor, **options: Any) -> Tensor:
    """Run ``fn_cls`` forward on the inputs' arrays and, if any input needs grad, record it."""
    be = inputs[0]._be
    for t in inputs[1:]:
        inputs[0]._same_backend(t)
    needs = tuple(t.requires_grad for t in inputs)
    record = autograd.is_grad_enabled() and any(needs)
    fn = fn_cls(be, inputs if record else (), needs)
    out = fn.forward(*(t.data for t in inputs), **options)
    if not record:
        return Tensor._wrap(out, be)
    return Tensor._wrap(out, be, requires_grad=True, ctx=fn)


def _binary(fn_cls: type, a: Any, b: Any) -> Tensor:
    if not isinstance(a, Tensor):
        a = b._lift(a)
    b = a._lift(b)
    a, b = _promote(a, b)
    return apply(fn_cls, a, b)


def add(a: Any, b: Any) -> Tensor: return _binary(E.Add, a, b)
def sub(a: Any, b: Any) -> Tensor: return _binary(E.Sub, a, b)
def mul(a: Any, b: Any) -> Tensor: return _binary(E.Mul, a, b)


def div(a: Any, b: Any) -> Tensor:
    """True division; integer inputs give float32 (as in PyTorch)."""
    if not isinstance(a, Tensor):
        a = b._lift(a)
    b = a._lift(b)
    if not a.dtype.is_floating and not b.dtype.is_floating:
        a = a.astype(dtypes.float32)
    return _binary(E.Div, a, b)


def power(a: Any, b: Any) -> Tensor: return _binary(E.Pow, a, b)
def maximum(a: Any, b: Any) -> Tensor: return _binary(E.Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    if not isinstance(a, Tensor):
        a = b._lift(a)
    return -maximum(-a, -a._lift(b))


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a`` where ``cond`` else ``b``; differentiable in a and b."""
    ref = next(t for t in (cond, a, b) if isinstance(t, Tensor))
    cond = ref._lift(cond)
    if cond.dtype != dtypes.bool_:
        cond = cond != 0
    a, b = (a if isinstance(a, Tensor) else ref._lift(a)), (b if isinstance(b, Tensor) else ref._lift(b))
    a, b = _promote(a, b)
    return apply(E.Where, a, b, cond=cond.data)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are promoted and the added axis dropped."""
    a, b = _promote(a, a._lift(b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands with at least 1 dim, got shapes {a.shape} and {b.shape}")
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


def concatenate(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    ts = list(tensors)
    if not ts:
        raise ValueError("concatenate needs at least one tensor")
    ref = ts[0]
    ts = [ref._lift(t) for t in ts]
    ref_dtype = ts[0].dtype
    for t in ts[1:]:
        if t.ndim != ref.ndim:
            raise ValueError(f"concatenate: all tensors need {ref.ndim} dims, got shape {t.shape}")
    ts = [t.astype(ref_dtype) for t in ts]
    return apply(M.Concatenate, *ts, axis=axis % max(ref.ndim, 1))


cat = concatenate


def stack(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    ts = list(tensors)
    if not ts:
        raise ValueError("stack needs at least one tensor")
    shape = ts[0].shape
    for t in ts:
        if t.shape != shape:
            raise ValueError(f"stack needs equal shapes, got {shape} and {t.shape}")
    axis = axis % (len(shape) + 1)
    return concatenate([t.unsqueeze(axis) for t in ts], axis)


def _compare(a: Tensor, b: Tensor, op: str) -> Tensor:
    a, b = _promote(a, b)
    return Tensor._wrap(getattr(a._be, op)(a.data, b.data), a._be)


def _not(t: Tensor) -> Tensor:
    return Tensor._wrap(t._be.equal(t.data, False), t._be)


def _logical(a: Tensor, b: Tensor, is_or: bool) -> Tensor:
    """Elementwise or / and of two bool tensors."""
    if a.dtype != dtypes.bool_ or b.dtype != dtypes.bool_:
        raise TypeError(f"| and & need bool tensors, got {a.dtype} and {b.dtype}")
    be = a._be
    out = be.where(a.data, True, b.data) if is_or else be.where(a.data, b.data, False)
    return Tensor._wrap(out, be)

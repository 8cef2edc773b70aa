"""The Tensor methods that are plain compositions: math, reductions, shapes and indexing.

``Tensor`` (lucid/tensor.py) inherits them; they reach the graph only through ``self._apply``
(record a Function), ``self._new`` (wrap a result array) and ``self._set_data`` (the one write
path), so this module needs no import of ``lucid.tensor``. Every axis is checked by
``lucid.ops.axes`` and every index by ``lucid.indexing`` before a backend sees it.
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lucid import autograd, backends, indexing, precision
from lucid.ops import axes as AX
from lucid.ops import elementwise as E
from lucid.ops import movement as M
from lucid.ops import reduce as R

_INDEX_DTYPES = frozenset({"int32", "int64"})


class TensorMethods:
    """Mixin of Tensor (see the module docstring)."""

    __slots__ = ()
    data: Any
    _be: Any
    _ready: bool
    requires_grad: bool

    if TYPE_CHECKING:                     # what the mixin uses of Tensor (lucid/tensor.py)
        @property
        def shape(self) -> tuple[int, ...]: ...
        @property
        def ndim(self) -> int: ...
        @property
        def dtype(self) -> Any: ...
        def numel(self) -> int: ...
        def _apply(self, fn_cls: type, *others: Any, **options: Any) -> Any: ...
        def _new(self, data: Any) -> Any: ...
        def _lift(self, value: Any) -> Any: ...
        def _same_backend(self, other: Any) -> None: ...
        def _set_data(self, data: Any, be: Any = None) -> Any: ...
        def _host_values(self) -> Any: ...
        def astype(self, dtype: Any) -> Any: ...
        def detach(self) -> Any: ...
        def __neg__(self) -> Any: ...
        def __mul__(self, o: Any) -> Any: ...
        def __sub__(self, o: Any) -> Any: ...
        def __gt__(self, o: Any) -> Any: ...

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[AX.axis(dim, self.ndim)]

    # -- math methods ------------------------------------------------------------------------
    def exp(self): return _autocast(self, "exp")._apply(E.Exp)
    def log(self): return _autocast(self, "log")._apply(E.Log)
    def sqrt(self): return self._apply(E.Sqrt)
    def tanh(self): return self._apply(E.Tanh)
    def sigmoid(self): return self._apply(E.Sigmoid)
    def relu(self): return self._apply(E.Relu)
    def erf(self): return self._apply(E.Erf)
    def abs(self): return self._apply(E.Abs)

    def clip(self, min: float | None = None, max: float | None = None) -> Any:
        return self._apply(E.Clip, lo=min, hi=max)

    clamp = clip

    def sum(self, axis: Any = None, keepdims: bool = False) -> Any:
        """Sum over ``axis``; bool and integer tensors sum in int64 (as in PyTorch), float16
        and bfloat16 accumulate in float32 (and return float32 under ``lucid.autocast``)."""
        x = _autocast(self, "sum")._int64()
        return x._apply(R.Sum, axis=AX.axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Any:
        """Mean over ``axis``; NaN over an empty axis (as PyTorch); float32 under
        ``lucid.autocast``."""
        ax = AX.axes(axis, self.ndim)
        x = _autocast(self, "mean")._int64()
        return _divide_count(x._apply(R.Sum, axis=ax, keepdims=keepdims), self._count(ax))

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
        """Variance (population by default, ``ddof=1`` for the unbiased estimate); NaN where
        fewer than ddof + 1 values take part."""
        ax = AX.axes(axis, self.ndim)
        d = self - self.mean(ax, keepdims=True)
        return _divide_count((d * d).sum(ax, keepdims), self._count(ax) - ddof)

    def _count(self, ax: tuple[int, ...]) -> int:
        n = 1
        for a in ax:
            n *= self.shape[a]
        return n

    def max(self, axis: Any = None, keepdims: bool = False) -> Any:
        ax = AX.axes(axis, self.ndim)
        self._check_nonempty("max", ax)
        return self._apply(R.Max, axis=ax, keepdims=keepdims)

    def _check_nonempty(self, op: str, ax: tuple[int, ...]) -> None:
        """A max/argmax over an empty axis has no answer (PyTorch: IndexError)."""
        for a in ax if self.ndim else ():
            if self.shape[a] == 0:
                raise IndexError(f"{op}(): expected reduction dim {a} to have non-zero size, "
                                 f"got a tensor of shape {self.shape}")

    def _int64(self) -> Any:
        return self.astype("int64") if self._be.dtype_name(self.data) in ("bool", "int32") \
            else self

    def min(self, axis: Any = None, keepdims: bool = False) -> Any:
        return -((-self).max(axis, keepdims))

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Any:
        """int64 index of the first maximum (of the flattened tensor when axis is None)."""
        ax = None if axis is None else AX.axis(axis, self.ndim)
        if ax is None and self.numel() == 0:
            raise IndexError(f"argmax(): expected a dim to reduce over for an empty tensor of "
                             f"shape {self.shape}")
        self._check_nonempty("argmax", () if ax is None else (ax,))
        if self.ndim == 0:
            return self._new(self._be.full((), 0, "int64"))
        return self._new(self._be.argmax(self.data, axis=ax, keepdims=keepdims))

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Any:
        return (-self.detach()).argmax(axis, keepdims)

    def softmax(self, axis: int = -1) -> Any:
        """exp(x) / sum(exp(x)) along ``axis``; float32 under ``lucid.autocast``."""
        return _autocast(self, "softmax")._along(R.Softmax, axis)

    def log_softmax(self, axis: int = -1) -> Any:
        """x - logsumexp(x) along ``axis``; float32 under ``lucid.autocast``."""
        return _autocast(self, "log_softmax")._along(R.LogSoftmax, axis)

    def cumsum(self, axis: int) -> Any:
        """Running sum along ``axis`` (PyTorch's ``cumsum(dim)``)."""
        return self._int64()._along(R.CumSum, axis)

    def _along(self, fn_cls: type, axis: int) -> Any:
        """An op along one axis; a 0-d tensor is treated as one element along axis 0 (as
        PyTorch does; the backends cannot address an axis of a 0-d array)."""
        ax = AX.axis(axis, self.ndim)
        if self.ndim == 0:
            return self.reshape(1)._apply(fn_cls, axis=0).reshape(())
        if self.numel() == 0:                      # nothing to normalise or add up
            return self._apply(M.Reshape, shape=self.shape)
        return self._apply(fn_cls, axis=ax)

    def norm(self, p: Any = 2, axis: Any = None, keepdims: bool = False) -> Any:
        """The p-norm over ``axis`` (all axes when None), p in {1, 2, inf}; the gradient at an
        all-zero slice is 0 (PyTorch's subgradient)."""
        ax = AX.axes(axis, self.ndim)
        if p in (2, "fro"):
            s = (self * self).sum(ax, keepdims)
            from lucid.functions import where
            pos = s > 0
            return where(pos, where(pos, s, 1.0).sqrt(), 0.0)
        if p == 1:
            return self.abs().sum(ax, keepdims)
        if p == float("inf"):
            return self.abs().max(ax, keepdims)
        raise ValueError(f"norm supports p = 1, 2 ('fro') or inf, got p={p!r}")

    # -- shape methods -----------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Any:
        shape = _reshape_target(_shape_arg(shape), self.numel(), self.shape)
        if shape == self.shape:
            return self
        return self._apply(M.Reshape, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Any:
        s, e = AX.axis(start_dim, self.ndim), AX.axis(end_dim, self.ndim)
        if self.ndim == 0:
            return self.reshape(1)
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
                             f"tensor with {self.ndim} dims")
        return self.reshape(self.shape[:s] + (self._count(tuple(range(s, e + 1))),)
                            + self.shape[e + 1:])

    def transpose(self, *axes: Any) -> Any:
        """No argument: reverse all axes. Two ints: swap them (PyTorch). A full permutation:
        reorder (NumPy)."""
        if not axes:
            perm = tuple(range(self.ndim))[::-1]
        elif len(axes) == 2 and all(isinstance(a, int) for a in axes):
            a, b = (AX.axis(x, self.ndim) for x in axes)
            order = list(range(self.ndim))
            if order:                            # a 0-d tensor accepts dims 0 and -1
                order[a], order[b] = order[b], order[a]
            perm = tuple(order)
        else:
            perm = AX.permutation(_shape_arg(axes), self.ndim)
        return self._apply(M.Transpose, axes=perm)

    def permute(self, *axes: Any) -> Any:
        return self._apply(M.Transpose, axes=AX.permutation(_shape_arg(axes), self.ndim))

    @property
    def T(self) -> Any:
        return self.transpose()

    def unsqueeze(self, dim: int) -> Any:
        dim = AX.axis(dim, self.ndim, extra=1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: Any = None) -> Any:
        """Drop size-1 axes: all of them, or those among ``dim`` (an int or a tuple); an axis
        of another size is left as it is (PyTorch)."""
        drop = AX.axes(dim, self.ndim)
        keep = tuple(s for a, s in enumerate(self.shape) if not (a in drop and s == 1))
        return self.reshape(keep)

    def broadcast_to(self, *shape: Any) -> Any:
        shape = _shape_arg(shape)
        return self if shape == self.shape else self._apply(M.BroadcastTo, shape=shape)

    expand = broadcast_to

    # -- indexing ----------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Any:
        idx, guards = indexing.prepare(self._index_items(index), self.shape)
        return self._apply(M.GetItem, index=idx, guards=guards)

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("in-place assignment to a tensor that requires grad; wrap it in "
                               "lucid.no_grad() or assign to a detached copy")
        idx, guards = indexing.prepare(self._index_items(index), self.shape)
        if guards:
            raise IndexError("cannot assign through an integer index tensor whose values are not "
                             "known yet (a lazy MLX result or a traced array): lucid cannot "
                             "bounds-check it without evaluating it; build the index from host "
                             "data (lucid.tensor(idx.numpy())) or use lucid.where")
        v = self._lift(value).astype(self.dtype).data
        self._set_data(self._be.setitem(self.data, idx, v))

    def _index_items(self, index: Any) -> tuple:
        items = index if isinstance(index, tuple) else (index,)
        return tuple(self._index_item(i) for i in items)

    def _index_item(self, i: Any) -> Any:
        if i is None or i is Ellipsis or isinstance(i, slice):
            return i
        if isinstance(i, bool):
            raise TypeError("a bool is not a valid index (boolean masks have a data-dependent "
                            "shape; use lucid.where instead)")
        if isinstance(i, numbers.Integral):
            return int(i)
        if isinstance(i, TensorMethods):          # a Tensor
            self._same_backend(i)
            _check_index_dtype(i._be.dtype_name(i.data))
            return indexing.IndexArray(i.data, i._host_values())
        # host data: a (nested) list or a NumPy array, checked on the host before it moves
        host = backends.load("numpy").asarray(i, "int64" if isinstance(i, list) and not i
                                              else None)
        _check_index_dtype(str(host.dtype) if host.dtype.kind != "b" else "bool")
        if host.ndim == 0:
            return int(host)
        return indexing.IndexArray(self._be.asarray(host, "int64"), host)


def _divide_count(total: Any, n: int) -> Any:
    """total / n, NaN when n <= 0 (the backends disagree on 0/0: MLX may give -inf)."""
    return total / float(n) if n > 0 else total * 0.0 + float("nan")


def _check_index_dtype(name: str) -> None:
    if name not in _INDEX_DTYPES:
        raise TypeError(f"index arrays must be integers, got {name} (boolean masks have a "
                        "data-dependent shape; use lucid.where instead)")


def _shape_arg(shape: Sequence) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    out = []
    for s in shape:
        if not hasattr(s, "__index__") or isinstance(s, bool):
            raise TypeError(f"shape entries must be ints, got {s!r} in {tuple(shape)}")
        out.append(s.__index__())
    return tuple(out)


def _reshape_target(shape: tuple[int, ...], numel: int, old: tuple[int, ...]) -> tuple[int, ...]:
    """Resolve one -1 in ``shape`` and check the element count."""
    if builtins.sum(1 for s in shape if s == -1) > 1:
        raise ValueError(f"reshape: only one dimension can be -1, got {shape}")
    if any(s < -1 for s in shape):
        raise ValueError(f"reshape: invalid negative size in {shape}")
    known = 1
    for s in shape:
        known *= s if s != -1 else 1
    if -1 in shape:
        if known == 0 or numel % known:
            raise ValueError(f"cannot reshape a tensor of shape {old} ({numel} elements) into "
                             f"{shape}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise ValueError(f"cannot reshape a tensor of shape {old} ({numel} elements) into "
                         f"{shape} ({known} elements)")
    return shape


def _autocast(t: Any, op: str) -> Any:
    """t as op computes on it under ``lucid.autocast`` (itself when autocast is off)."""
    return t if precision._active is None else precision.cast(op, t)[0]

"""Functions of several tensors: ``where``, ``concatenate``/``cat``, ``stack``, ``maximum``,
``minimum``, ``matmul`` (exported as ``lucid.where`` and so on)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid import dtypes
from lucid.ops import axes as AX
from lucid.ops import elementwise as E
from lucid.ops import movement as M
from lucid.tensor import Tensor, _binary, _promote, apply


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; on ties each input gets half the gradient."""
    return _binary(E.Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; on ties each input gets half the gradient."""
    if not isinstance(a, Tensor):
        a = b._lift(a)
    return -maximum(-a, -a._lift(b))


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a`` where ``cond`` else ``b``; differentiable in a and b."""
    ref = next((t for t in (cond, a, b) if isinstance(t, Tensor)), None)
    if ref is None:
        raise TypeError("where needs at least one Tensor argument")
    cond = ref._lift(cond)
    if cond.dtype != dtypes.bool_:
        cond = cond != 0
    a = a if isinstance(a, Tensor) else ref._lift(a)
    b = b if isinstance(b, Tensor) else ref._lift(b)
    a, b = _promote(a, b)
    return apply(E.Where, a, b, cond=cond)


def matmul(a: Tensor, b: Any) -> Tensor:
    """Matrix product with NumPy's rules (see ``Tensor.matmul``)."""
    return a.matmul(b)


def concatenate(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of equal rank along ``axis`` (every other dim must match)."""
    ts = list(tensors)
    if not ts:
        raise ValueError("concatenate needs at least one tensor")
    ref = next((t for t in ts if isinstance(t, Tensor)), None)
    if ref is None:
        raise TypeError("concatenate needs Tensors")
    ts = [ref._lift(t) for t in ts]
    if ref.ndim == 0:
        raise ValueError("zero-dimensional tensors cannot be concatenated; use stack")
    ax = AX.axis(axis, ref.ndim)
    for t in ts:
        if t.ndim != ref.ndim or any(s != r for i, (s, r) in enumerate(zip(t.shape, ref.shape))
                                     if i != ax):
            raise ValueError(f"concatenate along dim {axis}: every tensor needs the shape "
                             f"{ref.shape} except in that dim, got {t.shape}")
    ts = [t.astype(ts[0].dtype) for t in ts]
    return apply(M.Concatenate, *ts, axis=ax)


cat = concatenate


def stack(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join equally shaped tensors along a new ``axis`` (valid range ndim + 1)."""
    ts = list(tensors)
    if not ts:
        raise ValueError("stack needs at least one tensor")
    shape = ts[0].shape
    for t in ts:
        if t.shape != shape:
            raise ValueError(f"stack needs equal shapes, got {shape} and {t.shape}")
    ax = AX.axis(axis, len(shape), extra=1)
    return concatenate([t.unsqueeze(ax) for t in ts], ax)

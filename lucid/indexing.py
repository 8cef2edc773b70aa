"""Index checks for ``t[index]`` and ``t[index] = v``, the same on every backend.

MLX does no bounds checks: an out-of-range index reads garbage or kills the process. Every
integer and integer array is therefore checked here against the shape before a backend sees it:

- Python ints, slices, ``None`` and ``...`` are checked for free;
- integer arrays from host data (lists, NumPy arrays, tensors made from host data, anything on an
  eager backend) are checked on the host copy, which costs no evaluation;
- an integer *tensor* that is still a pending lazy graph (an MLX op result, or any array inside a
  ``lucid.compile``'d function) cannot be checked without evaluating it, which lucid never forces.
  Such an index is marked "unchecked": reading through it redirects out-of-range entries to a
  safe read and makes those elements of a floating-point result NaN (never a plausible value);
  writing through it is refused.
"""

from __future__ import annotations

from typing import Any


class IndexArray:
    """An integer index array on the tensor's backend, with its host copy when one is known."""

    __slots__ = ("array", "host")

    def __init__(self, array: Any, host: Any) -> None:
        self.array, self.host = array, host


def _slice_part(v: Any) -> Any:
    if v is None or isinstance(v, int) and not isinstance(v, bool):
        return v
    if hasattr(v, "__index__") and not isinstance(v, bool):
        return v.__index__()
    raise TypeError(f"slice indices must be ints or None, got {v!r}")


def prepare(items: tuple, shape: tuple[int, ...]) -> tuple[tuple, tuple[tuple[int, int], ...]]:
    """Check an index (a tuple of None, ..., slices, ints and IndexArrays) against ``shape``.

    Returns the index for the backend (ints made non-negative, host-checked arrays with negative
    entries wrapped) and the unchecked arrays as (position in the index, size of their axis).
    Raises IndexError naming the index, the axis and its size."""
    ndim = len(shape)
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if consumed > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}: the index "
                         f"{_show(items)} indexes {consumed} dims")
    out: list[Any] = []
    guards: list[tuple[int, int]] = []
    ax = 0
    for item in items:
        if item is None:
            out.append(None)
            continue
        if item is Ellipsis:
            ax += ndim - consumed
            out.append(Ellipsis)
            continue
        size = shape[ax]
        if isinstance(item, slice):
            step = _slice_part(item.step)
            if step == 0:
                raise ValueError("slice step cannot be zero")
            out.append(slice(_slice_part(item.start), _slice_part(item.stop), step))
        elif isinstance(item, int):
            if not -size <= item < size:
                raise IndexError(f"index {item} is out of bounds for dimension {ax} with size "
                                 f"{size}")
            out.append(item % size)
        else:
            out.append(_check_array(item, ax, size, guards, len(out)))
        ax += 1
    return tuple(out), tuple(guards)


def _check_array(item: IndexArray, ax: int, size: int, guards: list, pos: int) -> Any:
    host = item.host
    if host is None:
        guards.append((pos, size))
        return item.array
    if host.size:
        lo, hi = host.min(), host.max()
        if lo < -size or hi >= size:
            bad = int(lo) if lo < -size else int(hi)
            raise IndexError(f"index {bad} is out of bounds for dimension {ax} with size {size}")
    return item.array


def _show(items: tuple) -> str:
    parts = []
    for i in items:
        parts.append("..." if i is Ellipsis else "array" if isinstance(i, IndexArray) else repr(i))
    return "[" + ", ".join(parts) + "]"


def safe_index(be: Any, index: tuple, guards: tuple) -> tuple[tuple, Any]:
    """For unchecked arrays: the index with out-of-range entries redirected to a valid position
    (so the backend never reads outside the array) and the 'poison' index that maps them to one
    extra NaN position per guarded axis. Returns (safe index, poison index)."""
    safe, poison = list(index), list(index)
    for pos, size in guards:
        a = index[pos]
        wrapped = be.where(be.greater(0, a), be.add(a, size), a)
        valid = be.where(be.greater(0, wrapped), False, be.greater(size, wrapped))
        safe[pos] = be.where(valid, wrapped, 0)
        poison[pos] = be.where(valid, wrapped, size)
    return tuple(safe), tuple(poison)


def poison_source(be: Any, shape: tuple[int, ...], index: tuple, guards: tuple,
                  dtype: str) -> Any:
    """An array shaped like the indexed one plus one position on each guarded axis, 0 everywhere
    and NaN at the extra positions, as a broadcast view (no data of the indexed array's size)."""
    axes_of = _axes_of(index, len(shape))
    full = list(shape)
    src = None
    for pos, size in guards:
        ax = axes_of[pos]
        full[ax] = size + 1
        marks = be.where(be.equal(be.arange(0, size + 1, 1, "int64"), size), float("nan"), 0.0)
        v = be.reshape(be.astype(marks, dtype), tuple(size + 1 if a == ax else 1
                                                     for a in range(len(shape))))
        src = v if src is None else be.add(src, v)
    return be.broadcast_to(src, tuple(full))


def _axes_of(index: tuple, ndim: int) -> dict[int, int]:
    """Position in the index -> the input axis it indexes."""
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    out, ax = {}, 0
    for pos, i in enumerate(index):
        if i is Ellipsis:
            ax += ndim - consumed
        elif i is not None:
            out[pos] = ax
            ax += 1
    return out

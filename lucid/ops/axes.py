"""The one place that checks axis arguments. Every op that takes an axis or dim normalises it here
before any work, so a wrong axis raises the same ``IndexError`` on every backend instead of being
wrapped around (NumPy and MLX both accept ``axis=-3`` on a 2-D array in some calls).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any


def _is_int(a: Any) -> bool:
    """Python and NumPy integers, not bools."""
    return isinstance(a, numbers.Integral) and not isinstance(a, bool)


def axis(a: Any, ndim: int, *, extra: int = 0, name: str = "dim") -> int:
    """One axis as a non-negative int. Valid: ``-(ndim + extra) <= a < ndim + extra``; ``extra``
    is 1 for ops that may insert an axis (unsqueeze, stack). A 0-d tensor accepts 0 and -1, as in
    PyTorch. Raises TypeError for a non-int and IndexError (naming the axis, the range and ndim)
    when out of range."""
    if not _is_int(a):
        raise TypeError(f"{name} must be an int, got {a!r} ({type(a).__name__})")
    a = int(a)
    n = ndim + extra
    top = max(n, 1)
    if not -top <= a < top:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-top}, {top - 1}], "
                         f"but got {a}) for a tensor with {ndim} dims")
    return a % top


def axes(spec: Any, ndim: int, *, name: str = "dim") -> tuple[int, ...]:
    """An axis argument (None: every axis; an int; a tuple or list of ints) as a sorted tuple of
    non-negative axes. A repeated axis is a ValueError (PyTorch refuses it too)."""
    if spec is None:
        return tuple(range(ndim))
    items = (spec,) if _is_int(spec) else spec
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {spec!r}")
    out = [axis(a, ndim, name=name) for a in items]
    if len(set(out)) != len(out):
        raise ValueError(f"{name} {tuple(items)} repeats an axis (each may appear once) for a "
                         f"tensor with {ndim} dims")
    return tuple(sorted(out)) if ndim else ()


def permutation(spec: Sequence[Any], ndim: int) -> tuple[int, ...]:
    """A full permutation of ``range(ndim)`` (transpose / permute), each axis exactly once."""
    if len(spec) != ndim:
        raise ValueError(f"permutation {tuple(spec)} must name each of the {ndim} dims once, "
                         f"got {len(spec)} entries")
    out = tuple(axis(a, ndim) for a in spec)
    if len(set(out)) != ndim:
        raise ValueError(f"permutation {tuple(spec)} repeats a dim (each of the {ndim} dims must "
                         "appear once)")
    return out

"""Padding in every mode, as slices and concatenations over the constant-pad primitive."""

from __future__ import annotations

from typing import Any

from lucid.functions import concatenate
from lucid.ops import movement as M
from lucid.tensor import Tensor, apply


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` axes, PyTorch-style: ``pad = (left, right, top, bottom, ...)``
    starting from the last axis. Modes: constant (negative pads crop), reflect (pad < size),
    replicate, circular (pad <= size)."""
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad must be a flat sequence of (lo, hi) pairs for at most {input.ndim} "
                         f"axes, got {pad!r}")
    if mode not in ("constant", "zeros", "reflect", "replicate", "circular"):
        raise ValueError(f"pad mode must be constant, reflect, replicate or circular, got {mode!r}")
    x = input
    for i in range(len(pad) // 2):
        axis = input.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        x = _pad_axis(x, axis, lo, hi, mode, value)
    return x


def _take(x: Tensor, axis: int, sl: slice) -> Tensor:
    return x[(slice(None),) * axis + (sl,)]


def _pad_axis(x: Tensor, axis: int, lo: int, hi: int, mode: str, value: float) -> Tensor:
    n = x.shape[axis]
    if mode in ("constant", "zeros"):
        if lo < 0 or hi < 0:
            x = _take(x, axis, slice(max(0, -lo), n - max(0, -hi)))
            lo, hi = max(0, lo), max(0, hi)
        if lo == 0 and hi == 0:
            return x
        widths = tuple((lo, hi) if a == axis else (0, 0) for a in range(x.ndim))
        return apply(M.Pad, x, widths=widths, value=value)
    if lo < 0 or hi < 0:
        raise ValueError(f"{mode} padding must be >= 0, got ({lo}, {hi}) on axis {axis}")
    if mode == "reflect" and (lo >= n or hi >= n):
        raise ValueError(f"reflect padding ({lo}, {hi}) must be less than the input size {n} on "
                         f"axis {axis} (input shape {x.shape})")
    if mode == "circular" and (lo > n or hi > n):
        raise ValueError(f"circular padding ({lo}, {hi}) must be at most the input size {n} on "
                         f"axis {axis} (input shape {x.shape})")
    parts = []
    if lo:
        if mode == "reflect":
            parts.append(_take(x, axis, slice(lo, 0, -1)))
        elif mode == "replicate":
            parts.append(_take(x, axis, slice(0, 1)).broadcast_to(_with(x.shape, axis, lo)))
        else:
            parts.append(_take(x, axis, slice(n - lo, n)))
    parts.append(x)
    if hi:
        if mode == "reflect":
            stop = n - 2 - hi
            parts.append(_take(x, axis, slice(n - 2, stop if stop >= 0 else None, -1)))
        elif mode == "replicate":
            parts.append(_take(x, axis, slice(n - 1, n)).broadcast_to(_with(x.shape, axis, hi)))
        else:
            parts.append(_take(x, axis, slice(0, hi)))
    return concatenate(parts, axis) if len(parts) > 1 else x


def _with(shape: tuple, axis: int, size: int) -> tuple:
    return shape[:axis] + (size,) + shape[axis + 1:]

"""Seeded random numbers, identical on every backend for the same seed.

Numbers are drawn on the host with NumPy's PCG64 generator and then placed on the active backend,
so ``seed(0); randn(3)`` gives the same values on NumPy and MLX.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lucid import dtypes
from lucid.tensor import Tensor
from lucid.tensor_methods import _shape_arg

_gen = np.random.Generator(np.random.PCG64(0))


def seed(n: int) -> None:
    """Reset the generator; every backend then draws the same sequence."""
    global _gen
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"seed must be an int, got {n!r}")
    _gen = np.random.Generator(np.random.PCG64(int(n)))


manual_seed = seed


def get_state() -> dict:
    return _gen.bit_generator.state


def set_state(state: dict) -> None:
    _gen.bit_generator.state = state


def _out(arr: np.ndarray, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    dt = dtypes.get(dtype) or (dtypes.float32 if arr.dtype.kind == "f" else dtypes.int64)
    return Tensor(arr, dtype=dt, device=device, requires_grad=requires_grad)


def randn(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples of the given shape."""
    return _out(_gen.standard_normal(_shape_arg(shape)), dtype, device, requires_grad)


def rand(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _out(_gen.random(_shape_arg(shape)), dtype, device, requires_grad)


def uniform(low: float = 0.0, high: float = 1.0, size: Any = (), dtype: Any = None,
            device: Any = None, requires_grad: bool = False) -> Tensor:
    if high < low:
        raise ValueError(f"uniform needs low <= high, got low={low}, high={high}")
    size = (size,) if isinstance(size, int) else tuple(size)
    return _out(_gen.uniform(low, high, size), dtype, device, requires_grad)


def normal(mean: float = 0.0, std: float = 1.0, size: Any = (), dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    if std < 0:
        raise ValueError(f"normal needs std >= 0, got {std}")
    size = (size,) if isinstance(size, int) else tuple(size)
    return _out(_gen.normal(mean, std, size), dtype, device, requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), dtype: Any = None,
            device: Any = None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is omitted)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint needs low < high, got low={low}, high={high}")
    size = (size,) if isinstance(size, int) else tuple(size)
    return _out(_gen.integers(low, high, size), dtype or dtypes.int64, device, False)


def permutation(n: int, device: Any = None) -> Tensor:
    """A random ordering of 0..n-1 (int64)."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"permutation needs a non-negative int, got {n!r}")
    return _out(_gen.permutation(int(n)), dtypes.int64, device, False)


def bernoulli_mask(shape: Any, p_keep: float, device: Any = None) -> Tensor:
    """float32 mask of 1 with probability p_keep, else 0 (used by dropout)."""
    return _out((_gen.random(_shape_arg(shape)) < p_keep).astype(np.float32), None, device, False)


def truncated_normal(mean: float, std: float, low: float, high: float, size: Any,
                     dtype: Any = None, device: Any = None) -> Tensor:
    """Normal(mean, std) samples redrawn until they fall in [low, high]."""
    if not low < high:
        raise ValueError(f"truncated_normal needs low < high, got {low}, {high}")
    size = (size,) if isinstance(size, int) else tuple(size)
    out = _gen.normal(mean, std, size)
    bad = (out < low) | (out > high)
    while bad.any():
        out[bad] = _gen.normal(mean, std, int(bad.sum()))
        bad = (out < low) | (out > high)
    return _out(out, dtype, device, False)

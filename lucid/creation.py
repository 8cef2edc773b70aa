"""Tensor factories: zeros, ones, full, arange and friends, on the active backend or ``device``."""

from __future__ import annotations

from typing import Any

from lucid import dtypes
from lucid.tensor import Tensor, resolve_backend
from lucid.tensor_methods import _shape_arg


def _make(shape, value, dtype, device, requires_grad) -> Tensor:
    be = resolve_backend(device)
    dt = dtypes.get(dtype) or dtypes.float32
    shape = _shape_arg(shape)
    for s in shape:
        if s < 0:
            raise ValueError(f"negative dimension {s} in shape {shape}")
    t = Tensor._wrap(be.full(shape, value, dt.name), be)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``shape`` as separate ints or one tuple."""
    return _make(shape, 0.0, dtype, device, requires_grad)


def ones(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones; ``shape`` as separate ints or one tuple."""
    return _make(shape, 1.0, dtype, device, requires_grad)


def empty(*shape: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Uninitialised in PyTorch; zeros here (no backend exposes uninitialised memory safely)."""
    return _make(shape, 0.0, dtype, device, requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value`` (an int gives int64, a bool gives bool)."""
    if dtype is None and isinstance(fill_value, bool):
        dtype = dtypes.bool_
    elif dtype is None and isinstance(fill_value, int):
        dtype = dtypes.int64
    shape = (shape,) if isinstance(shape, int) else shape
    return _make(shape, fill_value, dtype, device, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``t``'s shape, dtype and backend."""
    return _make(t.shape, 0.0, dtype or t.dtype, t.backend, requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape, dtype and backend."""
    return _make(t.shape, 1.0, dtype or t.dtype, t.backend, requires_grad)


def full_like(t: Tensor, fill_value: float, dtype: Any = None) -> Tensor:
    """``fill_value`` in ``t``'s shape, dtype and backend."""
    return _make(t.shape, fill_value, dtype or t.dtype, t.backend, False)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           device: Any = None) -> Tensor:
    """Values from start (default 0) up to, not including, stop. Integer arguments give int64."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange step must not be 0")
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, stop, step))
        dtype = dtypes.int64 if ints else dtypes.float32
    be = resolve_backend(device)
    return Tensor._wrap(be.arange(start, stop, step, dtypes.get(dtype).name), be)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, device: Any = None) -> Tensor:
    """A new tensor from lists, scalars, NumPy arrays or another tensor (copied to ``device``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None) -> Tensor:
    """An ``(n, m)`` matrix (``m`` defaults to ``n``) with ones on the diagonal, float32 unless
    ``dtype`` says otherwise."""
    m = n if m is None else m
    rows = arange(n, device=device).reshape(n, 1)
    cols = arange(m, device=device).reshape(1, m)
    return (rows == cols).astype(dtypes.get(dtype) or dtypes.float32)

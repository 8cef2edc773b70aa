"""The MLX backend: the contract's names on ``mlx.core``. Everything stays lazy; only ``eval`` and
``to_numpy`` synchronise with the device."""

from __future__ import annotations

from typing import Any, Sequence

import mlx.core as mx
import numpy as np

name = "mlx"
# MLX computes in float32 at most on the GPU and silently turns float64 input into float32, so
# float64 is refused at the door rather than downcast behind the user's back.
dtypes = frozenset({"float16", "float32", "int32", "int64", "bool"})
_MX = {"float16": mx.float16, "float32": mx.float32, "int32": mx.int32, "int64": mx.int64,
       "bool": mx.bool_}
_NAMES = {v: k for k, v in _MX.items()}


def _check(dtype: str) -> Any:
    if dtype not in _MX:
        raise TypeError(f"dtype {dtype} is not supported on the mlx backend (supported: "
                        f"{sorted(_MX)}); MLX has no float64 on the GPU — use float32, or the "
                        "numpy backend for float64")
    return _MX[dtype]


def asarray(data: Any, dtype: str | None = None) -> mx.array:
    if isinstance(data, mx.array):
        return data if dtype is None else data.astype(_check(dtype))
    arr = np.asarray(data)
    if dtype is None:
        if arr.dtype.kind == "f":
            dtype = "float16" if arr.dtype == np.float16 else "float32"
        elif arr.dtype.kind in "iu":
            dtype = "int32" if arr.dtype == np.int32 else "int64"
        elif arr.dtype.kind == "b":
            dtype = "bool"
        else:
            raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")
    target = _check(dtype)
    np_dtype = np.bool_ if dtype == "bool" else np.dtype(dtype)
    return mx.array(arr.astype(np_dtype, copy=False), dtype=target)


def to_numpy(x: mx.array) -> np.ndarray:
    return np.array(x)


def dtype_name(x: mx.array) -> str:
    try:
        return _NAMES[x.dtype]
    except KeyError:
        raise TypeError(f"mlx dtype {x.dtype} has no lucid name") from None


def full(shape, value, dtype):
    return mx.full(tuple(shape), value, dtype=_check(dtype))


def arange(start, stop, step, dtype):
    return mx.arange(start, stop, step, dtype=_check(dtype))


def astype(x, dtype):
    return x.astype(_check(dtype))


exp, log, sqrt, tanh, erf = mx.exp, mx.log, mx.sqrt, mx.tanh, mx.erf
add, subtract, multiply, divide = mx.add, mx.subtract, mx.multiply, mx.divide
power, maximum, equal, greater, where = mx.power, mx.maximum, mx.equal, mx.greater, mx.where


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return mx.sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return mx.max(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return mx.argmax(x, axis=axis, keepdims=keepdims).astype(mx.int64)


def reshape(x, shape):
    return mx.reshape(x, shape)


def transpose(x, axes):
    return mx.transpose(x, axes)


def broadcast_to(x, shape):
    return mx.broadcast_to(x, shape)


def concatenate(xs: Sequence[mx.array], axis: int) -> mx.array:
    return mx.concatenate(list(xs), axis=axis)


def pad(x, widths, value=0.0):
    return mx.pad(x, [tuple(p) for p in widths], constant_values=value)


def getitem(x, index):
    return x[index]


def setitem(x, index, value):
    out = mx.array(x)          # a new array object: the caller's x is left untouched
    out[index] = value
    return out


def scatter_add(shape, index, values):
    return mx.zeros(shape, dtype=values.dtype).at[index].add(values)


def matmul(a, b):
    return mx.matmul(a, b)


def conv2d(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip):
    return mx.conv_general(x, w, stride=list(stride), padding=(list(pad_lo), list(pad_hi)),
                           kernel_dilation=list(dilation), input_dilation=list(input_dilation),
                           groups=groups, flip=flip)


def eval(*arrays):  # noqa: A001
    mx.eval(*arrays)

"""The NumPy reference backend: the living definition of every primitive in ``contract.py``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import as_strided

from lucid import dtypes as _dtypes
from lucid.backends import numpy_conv_paths as _conv_paths
from lucid.backends import numpy_malloc as _malloc
from lucid.backends import numpy_reshape as _reshape
from lucid.backends import numpy_select as _select
from lucid.backends.contract import conv_output_size, dilated_size

name = "numpy"
lazy = False                   # every result is computed at once
_malloc.tune()                 # freed temporaries stay in the process (glibc; see numpy_malloc)
dtypes = _dtypes.supported(name)
# bfloat16 is ml_dtypes' NumPy type: its casts round to nearest even and keep NaN, as torch's
_NP = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32,
       "float64": np.float64, "int32": np.int32, "int64": np.int64, "bool": np.bool_,
       "uint32": np.uint32, "uint64": np.uint64}        # the unsigned ones: lucid.random's bits
_HALF = frozenset({np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)})


def asarray(data: Any, dtype: str | None = None) -> np.ndarray:
    if dtype is not None:
        return np.array(data, dtype=_NP[dtype])
    arr = np.array(data)
    if arr.dtype in _HALF:
        return arr
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64) if arr.dtype not in (np.int32, np.int64) else arr
    if arr.dtype.kind == "b":
        return arr
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}; use numbers or bools")


def device_type() -> str:
    return "cpu"


def to_numpy(x: np.ndarray) -> np.ndarray:
    return np.array(x)


_NAMES = {np.dtype(t): name for name, t in _NP.items()}


def dtype_name(x: np.ndarray) -> str:
    # a dict lookup: str(dtype) runs NumPy's Python-level name code, which showed up at ~10%
    # of an eager training step of a small MLP
    return _NAMES[x.dtype]


def full(shape, value, dtype):
    return np.full(tuple(shape), value, dtype=_NP[dtype])


def arange(start, stop, step, dtype):
    return np.arange(start, stop, step, dtype=_NP[dtype])


def astype(x, dtype):
    t = _NP[dtype]
    if dtype in ("float16", "bfloat16"):
        return _narrow(x, t)
    return x.astype(t)


def _narrow(x: np.ndarray, t: Any) -> np.ndarray:
    """x rounded to a half type. Values beyond its range become ±inf as IEEE says (and MLX
    does, silently): float16 training relies on it (GradScaler skips that step), so NumPy's
    overflow warning would only be noise."""
    with np.errstate(over="ignore"):
        return x.astype(t)


exp, log, sqrt, tanh, cos, sin = np.exp, np.log, np.sqrt, np.tanh, np.cos, np.sin
bitwise_xor, right_shift = np.bitwise_xor, np.right_shift
add, subtract, multiply, divide = np.add, np.subtract, np.multiply, np.true_divide
power, maximum, equal, greater = np.power, np.maximum, np.equal, np.greater


def where(cond, a, b):
    """np.where(cond, a, b). For large float selections ``numpy_select`` computes the same bits
    without NumPy's per-element branch (see there)."""
    dtype = _select.applies(cond, a, b)
    if dtype is not None:
        return _select.bit_select(cond, a, b, dtype)
    return np.where(cond, a, b)


greater_equal = np.greater_equal


def erf(x):
    # NumPy has no erf; scipy is not a dependency. Abramowitz-Stegun 7.1.26 is only ~1e-7 accurate,
    # so use the complementary-error-function rational approximation of Numerical Recipes
    # (erfc via Chebyshev fit, relative error < 1.2e-7) evaluated in float64 for the reference.
    z = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    r = 1.0 - t * np.exp(poly)
    return np.where(x >= 0, r, -r).astype(x.dtype)


def sum(x, axis=None, keepdims=False):
    if x.dtype in _HALF:
        # half precision accumulates in float32 and rounds once (as MLX's and torch's kernels)
        return _narrow(np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float32), x.dtype)
    return np.sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    return np.max(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64)


def cumsum(x, axis):
    if x.dtype in _HALF:                       # a float32 running sum, rounded once per entry
        return _narrow(np.cumsum(x, axis=axis, dtype=np.float32), x.dtype)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


def reshape(x, shape):
    """np.reshape(x, shape). A copy of a view whose last axis is short goes a last-axis index at
    a time (``numpy_reshape``: NumPy's own copy loops over that axis innermost)."""
    if _reshape.applies(x):
        return _reshape.reshape(x, shape)
    return np.reshape(x, shape)


def transpose(x, axes):
    return np.transpose(x, axes)


def broadcast_to(x, shape):
    return np.broadcast_to(x, shape)


def concatenate(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def pad(x, widths, value=0.0):
    return np.pad(x, widths, mode="constant", constant_values=value)


def getitem(x, index):
    return x[index]


def setitem(x, index, value):
    out = np.array(x)
    out[index] = value
    return out


def scatter_add(shape, index, values):
    out = np.zeros(shape, dtype=values.dtype)
    if not _has_array(index):
        out[index] += values           # basic indexing selects each element at most once
        return out
    # Repeated integer indices must accumulate. np.add.at is slow; instead find the flat position
    # of every selected element by indexing an arange the same way, then one bincount.
    flat = np.arange(out.size).reshape(shape)[index]
    vals = np.broadcast_to(values, flat.shape)
    acc = np.bincount(flat.ravel(), weights=vals.ravel(), minlength=out.size)
    return acc.astype(values.dtype).reshape(shape)


def _has_array(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, np.ndarray) for i in items)


def matmul(a, b):
    if a.dtype in _HALF:
        # float32 accumulation, one rounding (MLX's half GEMM); ml_dtypes has no fast matmul
        return _narrow(np.matmul(a.astype(np.float32), b.astype(np.float32)), a.dtype)
    return np.matmul(a, b)


def conv(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip):
    """Cross-correlation (convolution when flip) of any rank by its definition: x (N, *S, C) is
    dilated with zeros and zero-padded; one strided view gives every output pixel's window
    (N, *S_out, g, *k, C/g); its copy, the im2col matrix, times each group's weight
    (O/g, prod(k)·C/g) is one GEMM per group -> (N, *S_out, O).

    Where a path of ``numpy_conv_paths.PATHS`` applies to the call's shape it computes the same
    numbers faster (a 1-D call is offered to the table as a 2-D one of height 1);
    tests/test_conv_paths.py proves each one taken and equal to this.

    A result of fewer than ``_CM_MAX`` values is a channels-last view of channel-major memory
    (N, O, *S_out): lucid's tensors are channels-first, so the ops after a conv (its bias, a
    norm, an activation, a pool) and the gradients coming back through them (channel-major)
    then share one memory order, where an NHWC result makes every later elementwise op mix two
    orders. That costs one transposing copy where the path left NHWC: the digits CNN's NumPy
    step 2.5-3.5 % faster, the demo net's 3.5 % (interleaved in one process, one thread). A
    larger result stays as the path left it: its copy runs at memory speed and costs more than
    it saves (a 32 -> 64 -> 64 conv block on 32x32 maps, batch 32: 5.6 % slower; the
    benchmark's 'strided 5x5 s2' forward, 2^19 values, 4.5 % slower alone).
    """
    return _channel_major(conv_table(x, w, stride, pad_lo, pad_hi, dilation, input_dilation,
                                     groups, flip))


_CM_MAX = 1 << 19     # conv results below this many values are made channel-major (see conv)


def _channel_major(y):
    """y (N, *S, O) as a view of (N, O, *S) memory when it has fewer than _CM_MAX values: y
    itself when it is one already, or larger."""
    first = np.moveaxis(y, -1, 1)
    if first.flags.c_contiguous or y.size >= _CM_MAX:
        return y
    return np.moveaxis(np.ascontiguousarray(first), 1, -1)


def conv_table(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip):
    """``conv`` in whatever memory order the definition or the path leaves (the paths that
    recurse into the table call this: their parts are copied into their own output)."""
    if x.dtype in _HALF:
        # float32 accumulation, one rounding (MLX's half conv kernels accumulate in float32)
        return _narrow(conv_table(x.astype(np.float32), w.astype(np.float32), stride, pad_lo,
                                  pad_hi, dilation, input_dilation, groups, flip), x.dtype)
    r = x.ndim - 2
    if flip:                                   # a convolution correlates with the flipped kernel
        w = w[(slice(None),) + (slice(None, None, -1),) * r + (slice(None),)]
    fast = _conv_paths.lifted(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups)
    if fast is not None:
        return fast
    return conv_definition(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups)


def conv_definition(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups):
    """``conv`` without the path table (w already flipped): the reference every path equals."""
    n, *sp, c = x.shape
    o, *k, cg = w.shape
    g = groups
    out = [conv_output_size(*a) for a in zip(sp, k, stride, pad_lo, pad_hi, dilation,
                                              input_dilation)]
    if any(di > 1 for di in input_dilation):
        xd = np.zeros((n, *(dilated_size(s, di) for s, di in zip(sp, input_dilation)), c),
                      dtype=x.dtype)
        xd[(slice(None),) + tuple(slice(None, None, di) for di in input_dilation)] = x
        x = xd
    x = np.pad(x, ((0, 0),) + tuple(zip(pad_lo, pad_hi)) + ((0, 0),))
    sn, *ss, sc = x.strides
    windows = as_strided(x, (n, *out, g, *k, cg),
                         (sn, *(st * s for st, s in zip(ss, stride)), sc * cg,
                          *(st * d for st, d in zip(ss, dilation)), sc), writeable=False)
    m, kk = n * math.prod(out), math.prod(k) * cg
    cols = windows.reshape(m, g, kk)                                       # im2col: one copy
    wmat = w.reshape(g, o // g, kk)
    res = np.matmul(cols.transpose(1, 0, 2), wmat.transpose(0, 2, 1))      # (g, M, O/g)
    return res.transpose(1, 0, 2).reshape(n, *out, o)


def eval(*arrays):
    return None


def compile(pure_fn, shapeless=False):
    return pure_fn


# -- collectives: one process only ------------------------------------------------------------
class _SingleProcess:
    """The group of a process that was not launched as one of several ranks."""

    def rank(self) -> int:
        return 0

    def size(self) -> int:
        return 1


def init_distributed(backend):
    from lucid.backends import launcher

    n = launcher.world_size()
    if n > 1:
        raise RuntimeError(
            f"this process was launched as one of {n} ranks, but the numpy backend runs in one "
            "process only: multi-process training requires the mlx backend "
            "(lucid.set_backend('mlx') or LUCID_BACKEND=mlx before lucid.distributed.init())")
    return _SingleProcess()


def all_sum(x, group):
    if group.size() != 1:
        raise RuntimeError("the numpy backend has no collectives across processes; use the mlx "
                           "backend")
    return x

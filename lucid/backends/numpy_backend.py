"""The NumPy reference backend: the living definition of every primitive in ``contract.py``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

name = "numpy"
dtypes = frozenset({"float16", "float32", "float64", "int32", "int64", "bool"})
_NP = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
       "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def asarray(data: Any, dtype: str | None = None) -> np.ndarray:
    if dtype is not None:
        return np.array(data, dtype=_NP[dtype])
    arr = np.array(data)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32) if arr.dtype != np.float16 else arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64) if arr.dtype not in (np.int32, np.int64) else arr
    if arr.dtype.kind == "b":
        return arr
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}; use numbers or bools")


def to_numpy(x: np.ndarray) -> np.ndarray:
    return np.array(x)


def dtype_name(x: np.ndarray) -> str:
    return "bool" if x.dtype == np.bool_ else str(x.dtype)


def full(shape, value, dtype):
    return np.full(tuple(shape), value, dtype=_NP[dtype])


def arange(start, stop, step, dtype):
    return np.arange(start, stop, step, dtype=_NP[dtype])


def astype(x, dtype):
    return x.astype(_NP[dtype])


exp, log, sqrt, tanh = np.exp, np.log, np.sqrt, np.tanh
add, subtract, multiply, divide = np.add, np.subtract, np.multiply, np.true_divide
power, maximum, equal, greater, where = np.power, np.maximum, np.equal, np.greater, np.where


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


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the contract's name
    return np.sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return np.max(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64)


def reshape(x, shape):
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
    return np.matmul(a, b)


def conv2d(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip):
    """im2col through one strided view, then one batched BLAS GEMM over groups."""
    n, _, _, c = x.shape
    o, kh, kw, cg = w.shape
    dh, dw = input_dilation
    if dh > 1 or dw > 1:
        h0, w0 = x.shape[1], x.shape[2]
        xd = np.zeros((n, (h0 - 1) * dh + 1, (w0 - 1) * dw + 1, c), dtype=x.dtype)
        xd[:, ::dh, ::dw, :] = x
        x = xd
    if any(pad_lo) or any(pad_hi):
        x = np.pad(x, ((0, 0), (pad_lo[0], pad_hi[0]), (pad_lo[1], pad_hi[1]), (0, 0)))
    if flip:
        w = w[:, ::-1, ::-1, :]
    hp, wp = x.shape[1], x.shape[2]
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    x = np.ascontiguousarray(x)
    sn, sh, sw, sc = x.strides
    g, og = groups, o // groups
    view = as_strided(x, (n, ho, wo, kh, kw, g, cg),
                      (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1],
                       sc * cg, sc), writeable=False)
    if g > 1 and cg <= _TAPS_MAX_CG:
        return _depthwise_taps(x, w, stride, dilation, n, ho, wo, g, og)
    if g > 1 and ho * wo <= 64 and og == 1:
        return _small_output(x, w, stride, dilation, n, ho, wo, g, cg)
    m, k = n * ho * wo, kh * kw * cg
    wmat = np.ascontiguousarray(w).reshape(g, og, k).transpose(0, 2, 1)       # (g, K, Og)
    if g == 1:
        cols = view.reshape(m, k)                                              # one copy
        return (cols @ wmat[0]).reshape(n, ho, wo, o)
    cols = view.transpose(5, 0, 1, 2, 3, 4, 6).reshape(g, m, k)               # one copy
    out = np.matmul(cols, wmat)                                                # (g, M, Og)
    return out.transpose(1, 0, 2).reshape(n, ho, wo, o)


_TAPS_MAX_CG = 4     # grouped convs with at most this many input channels per group use taps


def _depthwise_taps(x, w, stride, dilation, n, ho, wo, g, og):
    """Few input channels per group (depthwise, or the input gradient of a depthwise conv with a
    depth multiplier): one multiply-add per kernel tap and input channel over whole feature maps.
    im2col would gather along the channel axis into thin GEMMs, which costs far more than the
    arithmetic. Channels go outermost first, so each multiply-add runs along image rows."""
    kh, kw, cg = w.shape[1], w.shape[2], w.shape[3]
    hp, wp = x.shape[1], x.shape[2]
    xt = np.ascontiguousarray(x.reshape(n, hp, wp, g, cg).transpose(3, 4, 0, 1, 2))
    wt = np.ascontiguousarray(w.reshape(g, og, kh, kw, cg))[..., None, None, None]
    out = np.zeros((g, og, n, ho, wo), dtype=np.result_type(x.dtype, w.dtype))
    tmp = np.empty_like(out)
    (sh, sw), (dh, dw) = stride, dilation
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + (ho - 1) * sh + 1, sh)
            cols = slice(b * dw, b * dw + (wo - 1) * sw + 1, sw)
            for c in range(cg):
                np.multiply(xt[:, c, None, :, rows, cols], wt[:, :, a, b, c], out=tmp)
                out += tmp                                                 # (g, og, N, Ho, Wo)
    return out.transpose(2, 3, 4, 0, 1).reshape(n, ho, wo, g * og)


def _small_output(x, w, stride, dilation, n, ho, wo, g, cg):
    """Few output pixels, a large kernel, one output channel per group: the shape of a grouped
    conv's weight gradient. One product-and-sum per output pixel over contiguous windows."""
    kh, kw = w.shape[1], w.shape[2]
    wt = np.ascontiguousarray(w.transpose(1, 2, 0, 3)).reshape(kh, kw, g, cg)  # (kh, kw, g, cg)
    out = np.empty((n, ho, wo, g), dtype=np.result_type(x.dtype, w.dtype))
    xg = x.reshape(x.shape[0], x.shape[1], x.shape[2], g, cg)
    for p in range(ho):
        for q in range(wo):
            r0, c0 = p * stride[0], q * stride[1]
            win = xg[:, r0:r0 + dilation[0] * (kh - 1) + 1:dilation[0],
                     c0:c0 + dilation[1] * (kw - 1) + 1:dilation[1]]          # (N, kh, kw, g, cg)
            out[:, p, q, :] = np.einsum("nhwgc,hwgc->ng", win, wt)
    return out


def eval(*arrays):  # noqa: A001 - NumPy is eager: nothing to do
    return None

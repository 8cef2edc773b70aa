"""The NumPy reference backend: the living definition of every primitive in ``contract.py``."""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

_max, _min = builtins.max, builtins.min     # this module defines max/min for arrays

name = "numpy"
lazy = False                   # every result is computed at once
dtypes = frozenset({"float16", "float32", "float64", "int32", "int64", "bool"})
_NP = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
       "int32": np.int32, "int64": np.int64, "bool": np.bool_,
       "uint32": np.uint32, "uint64": np.uint64}        # the unsigned ones: lucid.random's bits


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


def device_type() -> str:
    return "cpu"


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


exp, log, sqrt, tanh, cos, sin = np.exp, np.log, np.sqrt, np.tanh, np.cos, np.sin
bitwise_xor, right_shift = np.bitwise_xor, np.right_shift
add, subtract, multiply, divide = np.add, np.subtract, np.multiply, np.true_divide
power, maximum, equal, greater, where = np.power, np.maximum, np.equal, np.greater, np.where
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
    return np.sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    return np.max(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64)


def cumsum(x, axis):
    return np.cumsum(x, axis=axis, dtype=x.dtype)


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
    """im2col through one strided view and BLAS GEMMs (per group, in cache-sized blocks).

    Private paths behind the same contract, each chosen by shape:
    - input dilation: stride phases (``_stride_phases``);
    - grouped, kernel larger than the output and spanning most of the input (a grouped weight
      gradient): products with flat planes (``_flat_dots``);
    - stride 1, at most 4 input channels per group: weighted shifted slices of flat planes
      (``_flat_taps``); strided: tap-wise einsums (``_depthwise_taps``);
    - stride 1, at most 16 input and 16 output channels per group: channel-major im2col
      (``_flat_gemm``);
    - few output pixels, long reduction: kernel-row blocks (``_k_blocked``).
    The flat paths return NHWC views of NCHW-ordered memory, which the ops layer's NCHW view
    of the result turns back into a contiguous array without a copy."""
    n, _, _, c = x.shape
    o, kh, kw, cg = w.shape
    if input_dilation != (1, 1) and stride == (1, 1):
        return _stride_phases(x, w, pad_lo, pad_hi, dilation, input_dilation, groups, flip)
    dh, dw = input_dilation
    if dh > 1 or dw > 1:
        h0, w0 = x.shape[1], x.shape[2]
        xd = np.zeros((n, (h0 - 1) * dh + 1, (w0 - 1) * dw + 1, c), dtype=x.dtype)
        xd[:, ::dh, ::dw, :] = x
        x = xd
    if flip:
        w = w[:, ::-1, ::-1, :]
    hp, wp = x.shape[1] + pad_lo[0] + pad_hi[0], x.shape[2] + pad_lo[1] + pad_hi[1]
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    g, og = groups, o // groups
    # A kernel larger than the output that spans most of the padded input (the flat products
    # also multiply the frame's zeros).
    if g > 1 and ho * wo < kh * kw and hp * wp <= _DOT_MAX_WASTE * kh * kw:
        with np.errstate(invalid="ignore"):
            out = _flat_dots(x, w, stride, pad_lo, pad_hi, dilation, ho, wo, g)
        # The zero frame also meets input values outside each window: only a NaN or inf there
        # (0·inf) can change a result, and then the result is not finite. Such calls are redone
        # below on an exact path; checking the few output pixels costs nothing.
        if np.isfinite(out).all():
            return out
    flat = stride == (1, 1) and kh * kw <= ho * wo
    if flat and g > 1 and cg <= _TAPS_MAX_CG:
        return _flat_taps(x, w, pad_lo, pad_hi, dilation, ho, wo, g)
    if flat and kh * kw > 1 and cg <= _FLAT_GEMM_MAX and og <= _FLAT_GEMM_MAX:
        return _flat_gemm(x, w, pad_lo, pad_hi, dilation, ho, wo, g)
    if any(pad_lo) or any(pad_hi):
        x = np.pad(x, ((0, 0), (pad_lo[0], pad_hi[0]), (pad_lo[1], pad_hi[1]), (0, 0)))
    x = np.ascontiguousarray(x)
    sn, sh, sw, sc = x.strides
    view = as_strided(x, (n, ho, wo, kh, kw, g, cg),
                      (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1],
                       sc * cg, sc), writeable=False)
    if g > 1 and cg <= _TAPS_MAX_CG:
        return _depthwise_taps(view, w, n, ho, wo, g, og)
    k = kh * kw * cg
    wmat = np.ascontiguousarray(w).reshape(g, og, k).transpose(0, 2, 1)       # (g, K, Og)
    if kh > 1 and n * ho * wo < _MIN_ROWS and n * ho * wo * g * k > _BLOCK:
        return _k_blocked(view, wmat, n, ho, wo, g, og)
    out = np.empty((n, ho, wo, o), dtype=np.result_type(x.dtype, w.dtype))
    # A 1×1 kernel's im2col is the input itself: nothing is copied, so nothing to block.
    blocks = _row_blocks(n, ho, wo, g * k) if kh * kw > 1 else [(0, n, 0, ho)]
    for b0, b1, r0, r1 in blocks:
        blk = view[b0:b1, r0:r1]
        m = (b1 - b0) * (r1 - r0) * wo
        dst = out[b0:b1, r0:r1].reshape(m, o)          # a view: whole images or one image's rows
        if g == 1:
            np.matmul(blk.reshape(m, k), wmat[0], out=dst)                     # one copy, one GEMM
        else:
            # One copy, pixel-major (a group-major copy gathers short runs and is 1.5x slower);
            # each group's GEMM reads its columns of it in place and writes its output columns.
            cols = np.ascontiguousarray(blk.transpose(0, 1, 2, 5, 3, 4, 6)).reshape(m, g, k)
            np.matmul(cols.transpose(1, 0, 2), wmat, out=dst.reshape(m, g, og).transpose(1, 0, 2))
    return out


_BLOCK = 1 << 20        # im2col elements per block (4 MB of float32): stays in cache for the GEMM
_MIN_ROWS = 512         # fewer GEMM rows than this per block and blocking costs more than it saves


def _k_blocked(view, wmat, n, ho, wo, g, og):
    """Few output pixels but a long reduction (the shape of a weight gradient): the im2col copy
    is split along the kernel rows into cache-sized pieces and the GEMMs' partial sums added."""
    kh, kw, cg = view.shape[3], view.shape[4], view.shape[6]
    m = n * ho * wo
    step = _max(1, _BLOCK // (g * m * kw * cg))
    acc = None
    for a0 in range(0, kh, step):
        a1 = _min(kh, a0 + step)
        ks = slice(a0 * kw * cg, a1 * kw * cg)
        blk = view[:, :, :, a0:a1]
        if g == 1:
            part = blk.reshape(m, -1) @ wmat[0, ks]                            # (M, O)
        else:
            cols = np.ascontiguousarray(blk.transpose(0, 1, 2, 5, 3, 4, 6)).reshape(m, g, -1)
            part = np.matmul(cols.transpose(1, 0, 2), wmat[:, ks])
        acc = part if acc is None else np.add(acc, part, out=acc)
    if g > 1:
        acc = acc.transpose(1, 0, 2)                                           # (M, g, Og)
    return acc.reshape(n, ho, wo, g * og)


def _row_blocks(n: int, ho: int, wo: int, k_total: int):
    """Split the N·Ho output rows (of Wo pixels, k_total im2col elements each pixel) into blocks
    whose im2col copy holds about ``_BLOCK`` elements, so the copy is still in cache when the
    GEMM reads it. Yields (n0, n1, r0, r1): whole images per block when an image fits, else row
    bands of one image; one block when blocks would give the GEMM too few rows."""
    rows = _max(1, _BLOCK // (wo * k_total))
    if rows * wo < _MIN_ROWS or n * ho <= rows:
        yield 0, n, 0, ho
    elif rows >= ho:
        step = rows // ho
        for b in range(0, n, step):
            yield b, _min(n, b + step), 0, ho
    else:
        for b in range(n):
            for r in range(0, ho, rows):
                yield b, b + 1, r, _min(ho, r + rows)


def _phase_axis(size, k, lo, hi, dil, idil, r, out_len):
    """One axis of one stride phase (see ``_stride_phases``): output rows r, r+D, ... of a conv
    over the D-dilated input read the undilated input at q + off + t·dil2 for taps a0 + t·step.
    Returns (a0, step, dil2, x_slice, pad_lo, pad_hi, length), or None if no tap lands on data."""
    length = len(range(r, out_len, idil))
    g = math.gcd(dil, idil)
    step, dil2 = idil // g, dil // g
    a0 = next((a for a in range(_min(k, step)) if (r + a * dil - lo) % idil == 0), None)
    if a0 is None or length == 0:
        return None
    taps = len(range(a0, k, step))
    start = (r + a0 * dil - lo) // idil
    end = start + length - 1 + (taps - 1) * dil2 + 1          # one past the last input row read
    src = slice(_max(0, start), _min(size, end))
    return a0, step, dil2, src, _max(0, -start), _max(0, end - size), length


def _stride_phases(x, w, pad_lo, pad_hi, dilation, input_dilation, groups, flip):
    """A stride-1 conv over an input dilated by D (the input gradient of a strided conv, or a
    transposed conv) as D_h·D_w ordinary convs, one per output phase: output row i = q·D + r only
    meets the taps whose dilated input position is a real input row, so each phase convolves the
    undilated input with a sub-kernel. This skips the zeros that a dilated copy would hold (and
    D² times the im2col memory)."""
    if flip:
        w = w[:, ::-1, ::-1, :]
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    (Dh, Dw), (dh, dw) = input_dilation, dilation
    ho = (h - 1) * Dh + 1 + pad_lo[0] + pad_hi[0] - dh * (kh - 1)
    wo = (wd - 1) * Dw + 1 + pad_lo[1] + pad_hi[1] - dw * (kw - 1)
    out = np.zeros((n, ho, wo, o), dtype=np.result_type(x.dtype, w.dtype))
    for rh in range(Dh):
        ph = _phase_axis(h, kh, pad_lo[0], pad_hi[0], dh, Dh, rh, ho)
        if ph is None:
            continue
        for rw in range(Dw):
            pw = _phase_axis(wd, kw, pad_lo[1], pad_hi[1], dw, Dw, rw, wo)
            if pw is None:
                continue
            sub = w[:, ph[0]::ph[1], pw[0]::pw[1], :]
            part = conv2d(x[:, ph[3], pw[3]], sub, (1, 1), (ph[4], pw[4]), (ph[5], pw[5]),
                          (ph[2], pw[2]), (1, 1), groups, False)
            out[:, rh::Dh, rw::Dw] = part[:, :ph[6], :pw[6]]
    return out


_TAPS_MAX_CG = 4     # grouped convs with at most this many input channels per group use taps


def _depthwise_taps(view, w, n, ho, wo, g, og):
    """Few input channels per group where ``_flat_taps`` does not apply (strided, or a kernel
    larger than the output): one einsum over the strided window view, which reads each input
    once per tap without materialising patches. im2col would gather along the channel axis into
    thin GEMMs, which costs far more than the arithmetic."""
    kh, kw, cg = w.shape[1], w.shape[2], w.shape[3]
    # One einsum per input channel of a group, with no size-1 axes in the subscripts: einsum's
    # inner loop runs over the last axes, which must be the long group axis, not a singleton.
    o_ix = "o" if og > 1 else ""
    wt = np.ascontiguousarray(w.reshape(g, og, kh, kw, cg).transpose(4, 2, 3, 0, 1))
    wt = wt.reshape((cg, kh, kw, g) + ((og,) if og > 1 else ()))
    out = None
    for c in range(cg):
        part = np.einsum(f"nhwabg,abg{o_ix}->nhwg{o_ix}", view[..., c], wt[c])
        out = part if out is None else np.add(out, part, out=out)
    return out.reshape(n, ho, wo, g * og)


def _flat_planes(lead: tuple, p: int, h: int, wd: int, pad_lo, pad_hi, tail: int, dtype):
    """The buffer the flat paths share: zeros (*lead, p·Hp·Wp + tail) holding p zero-padded
    planes end to end and then ``tail`` zeros, so that every kernel tap is a shifted contiguous
    slice of a row; and the view (*lead, p, H, W) of the planes' interiors, to copy data into
    (the pads stay zero, so a buffer can be refilled)."""
    hp, wp = h + pad_lo[0] + pad_hi[0], wd + pad_lo[1] + pad_hi[1]
    flat = np.zeros(lead + (p * hp * wp + tail,), dtype=dtype)
    planes = flat[..., :p * hp * wp].reshape(lead + (p, hp, wp))
    return flat, planes[..., pad_lo[0]:pad_lo[0] + h, pad_lo[1]:pad_lo[1] + wd]


_TAP_BLOCK = 1 << 18    # output elements per channel block of _flat_taps (1 MB of float32)


def _flat_taps(x, w, pad_lo, pad_hi, dilation, ho, wo, g):
    """Stride 1, few input channels per group (depthwise, and the input gradient of depthwise).

    A block of channels at a time, each input channel's zero-padded planes (all images end to
    end) are laid out as one flat row. The output, computed at every position of such a row
    (rows and columns past Ho, Wo are dropped), is then a weighted sum of shifted contiguous
    slices of it, one per tap and input channel. Every step is a long contiguous multiply or
    add over a block that stays in cache, several times faster than a strided reduction; long
    rows matter, as NumPy's broadcast loops run at half speed on rows of a few thousand.
    The block buffers are reused, so the only new memory is the output."""
    n, h, wd, _c = x.shape
    o, kh, kw, cg = w.shape
    og = o // g
    hp, wp = h + pad_lo[0] + pad_hi[0], wd + pad_lo[1] + pad_hi[1]
    size = n * hp * wp
    m = size - (hp - ho) * wp                   # the last image's dropped rows are not computed
    dtype = np.result_type(x.dtype, w.dtype)
    xc = x.transpose(3, 0, 1, 2)                # (C, N, H, W): NCHW memory reads whole rows
    wt = w.reshape(g, og, kh, kw, cg)
    step = _min(g, _max(1, _TAP_BLOCK // (og * m)))
    # A spare row after the planes: the last output row's dropped columns read past them.
    planes, inner = _flat_planes((step, cg), n, h, wd, pad_lo, pad_hi, wp, x.dtype)
    acc = np.empty((step, og, size), dtype=dtype)
    tmp = np.empty((step, og, m), dtype=dtype)
    y = np.empty((n, o, ho, wo), dtype=dtype)
    for g0 in range(0, g, step):
        k = _min(step, g - g0)
        inner[:k] = xc[g0 * cg:(g0 + k) * cg].reshape(k, cg, n, h, wd)    # pads stay zero
        a, t = acc[:k, :, :m], tmp[:k]
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    s = i * dilation[0] * wp + j * dilation[1]
                    src = planes[:k, ci, None, s:s + m]                  # (k, 1, m)
                    wv = wt[g0:g0 + k, :, i, j, ci, None]                # (k, og, 1)
                    if ci == i == j == 0:
                        np.multiply(src, wv, out=a)
                    else:
                        np.multiply(src, wv, out=t)
                        a += t
        y[:, g0 * og:(g0 + k) * og] = \
            acc[:k].reshape(k * og, n, hp, wp)[:, :, :ho, :wo].transpose(1, 0, 2, 3)
    return y.transpose(0, 2, 3, 1)                                     # NHWC view of NCHW


# At most this many input and output channels per group: NHWC im2col copies runs this short,
# and its GEMMs are this narrow; with more, the NHWC path wins.
_FLAT_GEMM_MAX = 16


def _flat_gemm(x, w, pad_lo, pad_hi, dilation, ho, wo, g):
    """Stride 1, few channels per group (grouped convs, Bayar-style 3-channel layers):
    im2col in channel-major form. Each input channel's zero-padded planes, all images end to
    end, form one flat row, so the patch row of channel c and tap (i, j) is a shifted contiguous
    slice of it. A block of columns at a time, one copy gathers those slices (long contiguous
    runs, where NHWC im2col copies runs of C/g values) and one GEMM per group multiplies them by
    the (O/g, C/g·kh·kw) weight, writing channel-major output rows; rows and columns past Ho, Wo
    are dropped at the end. From NCHW memory this also skips the NHWC transpose."""
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    og, k = o // g, cg * kh * kw
    hp, wp = h + pad_lo[0] + pad_hi[0], wd + pad_lo[1] + pad_hi[1]
    size = n * hp * wp
    m = size - (hp - ho) * wp                   # the last image's dropped rows are not computed
    dtype = np.result_type(x.dtype, w.dtype)
    planes, inner = _flat_planes((c,), n, h, wd, pad_lo, pad_hi, wp, x.dtype)  # spare row
    inner[...] = x.transpose(3, 0, 1, 2)
    wmat = np.ascontiguousarray(w.reshape(g, og, kh, kw, cg).transpose(0, 1, 4, 2, 3))
    wmat = wmat.reshape(g, og, k)
    out = np.empty((o, size), dtype=dtype)
    cols_n = _max(1, _BLOCK // (4 * k))
    cols = np.empty((cg, kh, kw, _min(cols_n, m)), dtype=x.dtype)
    sc, sp = planes.strides
    for gi in range(g):
        base = planes[gi * cg:(gi + 1) * cg]
        for c0 in range(0, m, cols_n):
            mc = _min(cols_n, m - c0)
            taps = as_strided(base[:, c0:], (cg, kh, kw, mc),
                              (sc, sp * dilation[0] * wp, sp * dilation[1], sp), writeable=False)
            blk = cols[..., :mc]
            np.copyto(blk, taps)
            np.matmul(wmat[gi], blk.reshape(k, mc), out=out[gi * og:(gi + 1) * og, c0:c0 + mc])
    y = out.reshape(o, n, hp, wp)[:, :, :ho, :wo].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y).transpose(0, 2, 3, 1)                # NHWC view of NCHW


_DOT_BLOCK = 1 << 18    # kernel elements per group block of _flat_dots (1 MB of float32)
_DOT_MAX_WASTE = 8      # _flat_dots when the padded input is at most this many times the kernel


def _flat_dots(x, w, stride, pad_lo, pad_hi, dilation, ho, wo, g):
    """Grouped, few output pixels, a kernel larger than the output: the shape of a grouped
    conv's weight gradient, whose 'kernel' is the output gradient and whose reduction runs over
    the batch. A block of groups at a time, the kernel is placed in zero frames shaped like a
    group's padded input planes and flattened; each output pixel is then one product per group
    of the (O/g, frame) kernel with a (frame, N) matrix of contiguous slices of the flat input
    planes, which BLAS reads in place. (A NaN or inf in the input can reach pixels whose window
    does not cover it, through 0·inf: ``conv2d`` redoes non-finite results on an exact path.)"""
    n, h, wd, _c = x.shape
    o, kh, kw, cg = w.shape
    og = o // g
    (sh, sw), (dh, dw), (t, l) = stride, dilation, pad_lo
    hp, wp = h + t + pad_hi[0], wd + l + pad_hi[1]
    frame = cg * hp * wp
    dtype = np.result_type(x.dtype, w.dtype)
    xg = x.transpose(3, 0, 1, 2).reshape(g, cg, n, h, wd).transpose(0, 2, 1, 3, 4)
    kg = w.transpose(0, 3, 1, 2).reshape(g, og, cg, kh, kw)
    step = _min(g, _max(1, _DOT_BLOCK // (frame * _max(og, n))))
    xs, x_in = _flat_planes((step, n), cg, h, wd, pad_lo, pad_hi,
                            (ho - 1) * sh * wp + (wo - 1) * sw, x.dtype)
    kf = np.zeros((step, og, frame), dtype=w.dtype)
    k_in = kf.reshape(step, og, cg, hp, wp)[..., :(kh - 1) * dh + 1:dh, :(kw - 1) * dw + 1:dw]
    out = np.empty((n, ho, wo, g, og), dtype=dtype)
    for g0 in range(0, g, step):
        k = _min(step, g - g0)
        k_in[:k] = kg[g0:g0 + k]                                       # frames stay zero
        x_in[:k] = xg[g0:g0 + k]
        for p in range(ho):
            for q in range(wo):
                s = p * sh * wp + q * sw
                prod = np.matmul(kf[:k], xs[:k, :, s:s + frame].transpose(0, 2, 1))  # (k, og, N)
                out[:, p, q, g0:g0 + k] = prod.transpose(2, 0, 1)
    return out.reshape(n, ho, wo, o)


def eval(*arrays):
    return None


# -- collectives: one process only ------------------------------------------------------------
class _SingleProcess:
    """The group of a process that was not launched as one of several ranks."""

    def rank(self) -> int:
        return 0

    def size(self) -> int:
        return 1


def _launched_world_size() -> int:
    """How many ranks MLX's launchers started, read from the variables they set (1 when none):
    ``mlx.launch`` ring and JACCL write a JSON list with one entry per rank to a file named by
    MLX_HOSTFILE / MLX_IBV_DEVICES; its NCCL launch sets MLX_WORLD_SIZE; mpirun sets
    OMPI_COMM_WORLD_SIZE (Open MPI) or PMI_SIZE (MPICH)."""
    import json
    import os

    sizes = [1]
    for var in ("MLX_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        value = os.environ.get(var, "")
        if value.strip().isdigit():
            sizes.append(int(value))
    for var in ("MLX_HOSTFILE", "MLX_IBV_DEVICES"):
        path = os.environ.get(var, "")
        try:
            with open(path) as f:
                ranks = json.load(f)
        except (OSError, ValueError):
            continue                       # unset, missing or empty (a single-rank launch)
        if isinstance(ranks, list):
            sizes.append(len(ranks))
    if os.environ.get("MLX_RANK", "0").strip() not in ("", "0"):
        sizes.append(2)                    # rank 1 or above: there are at least two
    return _max(sizes)


def init_distributed(backend):
    n = _launched_world_size()
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

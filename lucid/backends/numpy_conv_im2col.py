"""The NHWC-im2col paths of the NumPy ``conv`` (see the table in ``numpy_conv_paths``): the
definition's strided window view and GEMMs, made in cache-sized blocks (of output rows, of
kernel rows, of channels for a weight gradient in channel-major order), and one einsum per
channel for strided depthwise convs.

Each function takes x (N, H, W, C), w (O, kh, kw, C/g) (already flipped for a convolution) and
the call's ``Geometry``, and returns (N, Ho, Wo, O), or None to decline.
"""

from __future__ import annotations

import builtins

import numpy as np
from numpy.lib.stride_tricks import as_strided

_max, _min = builtins.max, builtins.min

# Block sizes and channel_major's limits (module constants, so tests can force blocking on small
# inputs; the table in numpy_conv_paths reads them here too)
_BLOCK = 1 << 20        # im2col elements per block (4 MB of float32): stays in cache for the GEMM
_MIN_ROWS = 512         # fewer GEMM rows than this per block and blocking costs more than it saves
_CM_LONG_ROW = 64       # channel_major: kernel rows at least this long are contiguous enough, or
_CM_ROWS_PER_OUT = 5    # ... at most this many GEMM rows per output channel (see channel_major)
_BI_MIN_RUN = 24        # batch_inner: its im2col runs (batch · output columns) at least this long


def windows(x, geo):
    """The padded input's windows as one strided view (N, Ho, Wo, kh, kw, g, C/g)."""
    if geo.padded:
        x = np.pad(x, ((0, 0), (geo.pad_lo[0], geo.pad_hi[0]), (geo.pad_lo[1], geo.pad_hi[1]),
                       (0, 0)))
    x = np.ascontiguousarray(x)
    sn, sh, sw, sc = x.strides
    (st_h, st_w), (dh, dw) = geo.stride, geo.dilation
    return as_strided(x, (geo.n, geo.ho, geo.wo, geo.kh, geo.kw, geo.groups, geo.cg),
                      (sn, sh * st_h, sw * st_w, sh * dh, sw * dw, sc * geo.cg, sc),
                      writeable=False)


def weight_matrix(w, geo):
    """(g, K, O/g): each group's weight as the right-hand GEMM operand, K in (kh, kw, C/g) order."""
    return np.ascontiguousarray(w).reshape(geo.groups, geo.og, geo.k).transpose(0, 2, 1)


def strided_taps(x, w, geo):
    """Few input channels per group where ``flat_taps`` does not apply (strided, or a kernel
    larger than the output): one einsum over the strided window view, which reads each input
    once per tap without materialising patches. im2col would gather along the channel axis into
    thin GEMMs, which costs far more than the arithmetic."""
    view = windows(x, geo)
    n, ho, wo, g, og = geo.n, geo.ho, geo.wo, geo.groups, geo.og
    kh, kw, cg = geo.kh, geo.kw, geo.cg
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


def k_blocked(x, w, geo):
    """Few output pixels but a long reduction (the shape of a weight gradient): the im2col copy
    is split along the kernel rows into cache-sized pieces and the GEMMs' partial sums added."""
    view, wmat = windows(x, geo), weight_matrix(w, geo)
    kh, kw, cg, g, m = geo.kh, geo.kw, geo.cg, geo.groups, geo.rows
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
    return acc.reshape(geo.n, geo.ho, geo.wo, geo.o)


def channel_major(x, w, geo):
    """A weight gradient (a kernel larger than its output) as the autograd asks for it: x
    (B, H, W, C) is the forward's input (N, C_in, H, W) seen with C_in as the batch and the
    images as channels, so its channel axis is outermost in memory, and w (O, kh, kw, C) the
    output gradient seen the same way. The definition's im2col, ordered (kh, kw, C), gathers
    single values an image apart; ordered (C, kh, kw) every window row is a contiguous run of
    that memory, and the weight matrix (C, kh, kw, O) is read from w in its own memory order
    (the (kh, kw, C) order gathers it an image apart too). A cache-sized block of channels at a
    time (the partial GEMMs add up); declines (None) an x laid out otherwise.

    The price is im2col runs of kw values where the NHWC order copies kw·C at a stretch after
    one transposing pad: it pays where rows are long (kh = 1, kw >= ``_CM_LONG_ROW``) or the
    GEMM has few rows per output channel (``_CM_ROWS_PER_OUT``), so the weight side
    dominates; the table gives it those calls whose one-channel block fits the cache
    (``_BLOCK``), ``k_blocked`` the rest (Bayar's 256² k5 weight gradient: 44 ms there, 68 ms
    here; the demo net's 5x5 one 2.6 ms there, 3.4 ms here)."""
    b, h, wd, c = x.shape
    o, kh, kw = geo.o, geo.kh, geo.kw
    ho, wo = geo.ho, geo.wo
    # (a size-1 axis has any stride: only the others tell the memory order)
    if c > 1 and any(n > 1 and st > x.strides[3] for n, st in zip(x.shape[:3], x.strides[:3])):
        return None
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    th, tw = geo.pad_lo
    xp = np.zeros((c, b, geo.hp, geo.wp), dtype=x.dtype)    # zeros + one copy: cheaper than np.pad
    xp[:, :, th:th + h, tw:tw + wd] = x.transpose(3, 0, 1, 2)
    s0, s1, s2, s3 = xp.strides
    windows = as_strided(xp, (b, ho, wo, c, kh, kw), (s1, s2 * sh, s3 * sw, s0, s2 * dh, s3 * dw),
                         writeable=False)
    wmat = w.transpose(3, 1, 2, 0)                          # (C, kh, kw, O)
    rows = b * ho * wo
    step = _max(1, _BLOCK // _max(1, rows * kh * kw))         # (an empty batch: rows = 0)
    acc = None
    for c0 in range(0, c, step):
        c1 = _min(c, c0 + step)
        cols = windows[:, :, :, c0:c1].reshape(rows, (c1 - c0) * kh * kw)
        part = cols @ wmat[c0:c1].reshape((c1 - c0) * kh * kw, o)
        acc = part if acc is None else np.add(acc, part, out=acc)
    if acc is None:                                         # no channels: an empty sum
        return np.zeros((b, ho, wo, o), dtype=np.result_type(x.dtype, w.dtype))
    return acc.reshape(b, ho, wo, o)


def batch_inner(x, w, geo):
    """A weight gradient (a kernel larger than its output, one group) through the forward's
    im2col order: x (B, H, W, C) is the forward's input seen with its channels as the batch B
    and its images as the channels C, w (O, kh, kw, C) the output gradient seen the same way.
    One copy puts x in (C, Hp, Wp, B) order, zero-padded (cheap: x is small next to its
    im2col); the im2col rows are then (c, i, j) and its columns (p, q, b), so every window
    copies runs of Wo·B values (B at a stride), the forward's runs of kw·C_in. One GEMM
    (O, C·kh·kw) @ (C·kh·kw, Ho·Wo·B) gives the result transposed, (O, Ho, Wo, B), which is
    small. channel_major's runs are kw long; the table gives this path the calls whose runs are
    at least twice as long (the digits CNN's 16 -> 32 weight gradient: 1.7x channel_major)."""
    b, h, wd, c = x.shape
    o, kh, kw = geo.o, geo.kh, geo.kw
    ho, wo = geo.ho, geo.wo
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    th, tw = geo.pad_lo
    xp = np.zeros((c, geo.hp, geo.wp, b), dtype=x.dtype)
    xp[:, th:th + h, tw:tw + wd] = x.transpose(3, 1, 2, 0)
    s0, s1, s2, s3 = xp.strides
    cols = as_strided(xp, (c, kh, kw, ho, wo, b), (s0, s1 * dh, s2 * dw, s1 * sh, s2 * sw, s3),
                      writeable=False).reshape(c * kh * kw, ho * wo * b)
    wmat = w.transpose(0, 3, 1, 2).reshape(o, c * kh * kw)       # (O, C, kh, kw): its rows' order
    return (wmat @ cols).reshape(o, ho, wo, b).transpose(3, 1, 2, 0)


def batch_inner_run(geo) -> int:
    """The contiguous runs of batch_inner's im2col copy: B values per output pixel, Wo·B when
    the window steps one column at a time."""
    return geo.n * (geo.wo if geo.stride[1] == 1 else 1)


def row_blocks(geo) -> list[tuple[int, int, int, int]]:
    """Split the N·Ho output rows (of Wo pixels, g·K im2col elements each pixel) into blocks
    whose im2col copy holds about ``_BLOCK`` elements, so the copy is still in cache when the
    GEMM reads it. (n0, n1, r0, r1) per block: whole images per block when an image fits, else
    row bands of one image; one block when blocks would give the GEMM too few rows."""
    n, ho, wo = geo.n, geo.ho, geo.wo
    # at least _MIN_ROWS GEMM rows per block: larger blocks than _BLOCK for a long reduction,
    # but never the whole batch's im2col at once (for a 5x5 conv of 96 channels over a batch of
    # 64 30x30 maps that single copy is 550 MB and costs more than the GEMM)
    rows = _max(_BLOCK // (wo * geo.groups * geo.k), -(-_MIN_ROWS // wo), 1)
    if n * ho <= rows:
        return [(0, n, 0, ho)]
    if rows >= ho:
        step = rows // ho
        return [(b, _min(n, b + step), 0, ho) for b in range(0, n, step)]
    return [(b, b + 1, r, _min(ho, r + rows)) for b in range(n) for r in range(0, ho, rows)]


def row_blocked(x, w, geo):
    """The definition's im2col and GEMMs, a cache-sized block of output rows at a time."""
    view, wmat = windows(x, geo), weight_matrix(w, geo)
    g, k, o, wo = geo.groups, geo.k, geo.o, geo.wo
    out = np.empty((geo.n, geo.ho, wo, o), dtype=np.result_type(x.dtype, w.dtype))
    for b0, b1, r0, r1 in row_blocks(geo):
        blk = view[b0:b1, r0:r1]
        m = (b1 - b0) * (r1 - r0) * wo
        dst = out[b0:b1, r0:r1].reshape(m, o)          # a view: whole images or one image's rows
        if g == 1:
            np.matmul(blk.reshape(m, k), wmat[0], out=dst)                     # one copy, one GEMM
        else:
            # One copy, pixel-major (a group-major copy gathers short runs and is 1.5x slower);
            # each group's GEMM reads its columns of it in place and writes its output columns.
            cols = np.ascontiguousarray(blk.transpose(0, 1, 2, 5, 3, 4, 6)).reshape(m, g, k)
            dst = dst.reshape(m, g, o // g).transpose(1, 0, 2)
            np.matmul(cols.transpose(1, 0, 2), wmat, out=dst)
    return out

"""The flat-plane paths of the NumPy ``conv2d``, for few channels per group (see the table in
``numpy_conv_paths``). Each input channel's zero-padded planes, all images end to end, are laid
out as one flat row, so that every kernel tap is a shifted contiguous slice of it: im2col is a
copy of long runs, depthwise a weighted sum of slices, and a grouped weight gradient a product
with the kernel placed in a zero frame.

Each function takes x (N, H, W, C), w (O, kh, kw, C/g) (already flipped for a convolution) and
the call's ``Geometry``, and returns (N, Ho, Wo, O), or None to decline.
"""

from __future__ import annotations

import builtins
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

_max, _min = builtins.max, builtins.min

# Block sizes (module constants, so tests can force blocking on small inputs).
_COL_BLOCK = 1 << 20    # im2col elements per column block of flat_gemm (4 MB of float32)
_TAP_BLOCK = 1 << 18    # output elements per channel block of flat_taps (1 MB of float32)
_DOT_BLOCK = 1 << 18    # kernel elements per group block of flat_dots (1 MB of float32)


def _flat_planes(lead: tuple, p: int, h: int, wd: int, pad_lo, pad_hi, tail: int, dtype):
    """The buffer the flat paths share: zeros (*lead, p·Hp·Wp + tail) holding p zero-padded
    planes end to end and then ``tail`` zeros, so that every kernel tap is a shifted contiguous
    slice of a row; and the view (*lead, p, H, W) of the planes' interiors, to copy data into
    (the pads stay zero, so a buffer can be refilled)."""
    hp, wp = h + pad_lo[0] + pad_hi[0], wd + pad_lo[1] + pad_hi[1]
    flat = np.zeros(lead + (p * hp * wp + tail,), dtype=dtype)
    planes = flat[..., :p * hp * wp].reshape(lead + (p, hp, wp))
    return flat, planes[..., pad_lo[0]:pad_lo[0] + h, pad_lo[1]:pad_lo[1] + wd]


class _Shared(NamedTuple):
    """The shared-pad layout of ``_shared_planes``: rows of ``period`` values, images of
    ``rows`` rows, output (n, ho, wo) computed at flat position n·rows·period + ho·period + wo
    for ho·period + wo < ``m`` within the last image."""
    rows: int
    period: int
    m: int


def _shared_planes(lead: tuple, geo, dtype):
    """Like ``_flat_planes``, but neighbouring rows and images share their zero pads: a row is
    W + max(left, right pad) values, so a read left of column 0 lands in the previous row's
    zero columns; likewise an image is H + max(top, bottom pad) rows after a leading margin.
    For a 3x3 'same' conv on 32² planes that computes 33² positions per image, not 34².
    Returns the zeroed buffer (*lead, L), the (*lead, N, H, W) view to copy x into, and the
    layout. Tap (i, j) of output position q reads q + i·dh·period + j·dw."""
    (plh, plw), (phh, phw) = geo.pad_lo, geo.pad_hi
    period = _max(geo.w + _max(plw, phw), geo.wo)
    rows = _max(geo.h + _max(plh, phh), geo.ho)
    m = (geo.n - 1) * rows * period + (geo.ho - 1) * period + geo.wo
    origin = plh * period + plw
    reach = (geo.kh - 1) * geo.dilation[0] * period + (geo.kw - 1) * geo.dilation[1]
    flat = np.zeros(lead + (_max(m + reach, origin + geo.n * rows * period),), dtype=dtype)
    images = flat[..., origin:origin + geo.n * rows * period]
    inner = images.reshape(lead + (geo.n, rows, period))[..., :geo.h, :geo.w]
    return flat, inner, _Shared(rows, period, m)


def flat_dots(x, w, geo):
    """Grouped, few output pixels, a kernel larger than the output: the shape of a grouped
    conv's weight gradient, whose 'kernel' is the output gradient and whose reduction runs over
    the batch. A block of groups at a time, the kernel is placed in zero frames shaped like a
    group's padded input planes and flattened; each output pixel is then one product per group
    of the (O/g, frame) kernel with a (frame, N) matrix of contiguous slices of the flat input
    planes, which BLAS reads in place.

    The zero frame also meets input values outside each window: only a NaN or inf there (0·inf)
    can change a result, and then the result is not finite. Such calls decline (None), so the
    next path computes them exactly; checking the few output pixels costs nothing."""
    n, h, wd, _c = x.shape
    o, kh, kw, cg = w.shape
    g, og, ho, wo = geo.groups, geo.og, geo.ho, geo.wo
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    hp, wp = geo.hp, geo.wp
    frame = cg * hp * wp
    dtype = np.result_type(x.dtype, w.dtype)
    xg = x.transpose(3, 0, 1, 2).reshape(g, cg, n, h, wd).transpose(0, 2, 1, 3, 4)
    kg = w.transpose(0, 3, 1, 2).reshape(g, og, cg, kh, kw)
    step = _min(g, _max(1, _DOT_BLOCK // (frame * _max(og, n))))
    xs, x_in = _flat_planes((step, n), cg, h, wd, geo.pad_lo, geo.pad_hi,
                            (ho - 1) * sh * wp + (wo - 1) * sw, x.dtype)
    kf = np.zeros((step, og, frame), dtype=w.dtype)
    k_in = kf.reshape(step, og, cg, hp, wp)[..., :(kh - 1) * dh + 1:dh, :(kw - 1) * dw + 1:dw]
    out = np.empty((n, ho, wo, g, og), dtype=dtype)
    with np.errstate(invalid="ignore"):
        for g0 in range(0, g, step):
            k = _min(step, g - g0)
            k_in[:k] = kg[g0:g0 + k]                                   # frames stay zero
            x_in[:k] = xg[g0:g0 + k]
            for p in range(ho):
                for q in range(wo):
                    s = p * sh * wp + q * sw
                    prod = np.matmul(kf[:k], xs[:k, :, s:s + frame].transpose(0, 2, 1))
                    out[:, p, q, g0:g0 + k] = prod.transpose(2, 0, 1)  # (k, og, N) -> (N, k, og)
    if not np.isfinite(out).all():
        return None
    return out.reshape(n, ho, wo, o)


def flat_taps(x, w, geo):
    """Stride 1, few input channels per group (depthwise, and the input gradient of depthwise).

    A block of channels at a time, each input channel's planes (all images end to end, sharing
    their zero pads: ``_shared_planes``) are laid out as one flat row. The output, computed at
    every position of such a row (rows and columns past Ho, Wo are dropped), is then a weighted
    sum of shifted contiguous slices of it, one per tap and input channel. Every step is a long
    contiguous multiply or add over a block that stays in cache, several times faster than a
    strided reduction; long rows matter, as NumPy's broadcast loops run at half speed on rows
    of a few thousand. The block buffers are reused, so the only new memory is the output."""
    n, h, wd, _c = x.shape
    o, kh, kw, cg = w.shape
    g, og, ho, wo = geo.groups, geo.og, geo.ho, geo.wo
    dilation = geo.dilation
    dtype = np.result_type(x.dtype, w.dtype)
    xc = x.transpose(3, 0, 1, 2)                # (C, N, H, W): NCHW memory reads whole rows
    wt = w.reshape(g, og, kh, kw, cg)
    planes, inner, lay = _shared_planes((_min(g, _max(1, _TAP_BLOCK // (og * n * geo.hp
                                                                        * geo.wp))), cg),
                                        geo, x.dtype)
    step, m, period, size = planes.shape[0], lay.m, lay.period, n * lay.rows * lay.period
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
                    s = i * dilation[0] * period + j * dilation[1]
                    src = planes[:k, ci, None, s:s + m]                  # (k, 1, m)
                    wv = wt[g0:g0 + k, :, i, j, ci, None]                # (k, og, 1)
                    if ci == i == j == 0:
                        np.multiply(src, wv, out=a)
                    else:
                        np.multiply(src, wv, out=t)
                        a += t
        y[:, g0 * og:(g0 + k) * og] = \
            acc[:k].reshape(k * og, n, lay.rows, period)[:, :, :ho, :wo].transpose(1, 0, 2, 3)
    return y.transpose(0, 2, 3, 1)                                     # NHWC view of NCHW


def flat_gemm(x, w, geo):
    """Stride 1, few channels per group (grouped convs, Bayar-style 3-channel layers):
    im2col in channel-major form. Each input channel's planes, all images end to end sharing
    their zero pads (``_shared_planes``), form one flat row, so the patch row of channel c and
    tap (i, j) is a shifted contiguous slice of it. A block of columns at a time, one copy
    gathers those slices (long contiguous runs, where NHWC im2col copies runs of C/g values)
    and one GEMM per group multiplies them by the (O/g, C/g·kh·kw) weight, writing
    channel-major output rows; rows and columns past Ho, Wo are dropped at the end. From NCHW
    memory this also skips the NHWC transpose."""
    n, c = x.shape[0], x.shape[3]
    o, kh, kw, cg = w.shape
    g, og, k, ho, wo = geo.groups, geo.og, geo.k, geo.ho, geo.wo
    dilation = geo.dilation
    dtype = np.result_type(x.dtype, w.dtype)
    planes, inner, lay = _shared_planes((c,), geo, x.dtype)
    inner[...] = x.transpose(3, 0, 1, 2)
    m, period = lay.m, lay.period
    wmat = np.ascontiguousarray(w.reshape(g, og, kh, kw, cg).transpose(0, 1, 4, 2, 3))
    wmat = wmat.reshape(g, og, k)
    out = np.empty((o, n * lay.rows * period), dtype=dtype)
    cols_n = _max(1, _COL_BLOCK // (4 * k))
    cols = np.empty((cg, kh, kw, _min(cols_n, m)), dtype=x.dtype)
    sc, sp = planes.strides
    for gi in range(g):
        base = planes[gi * cg:(gi + 1) * cg]
        for c0 in range(0, m, cols_n):
            mc = _min(cols_n, m - c0)
            taps = as_strided(base[:, c0:], (cg, kh, kw, mc),
                              (sc, sp * dilation[0] * period, sp * dilation[1], sp),
                              writeable=False)
            blk = cols[..., :mc]
            np.copyto(blk, taps)
            np.matmul(wmat[gi], blk.reshape(k, mc), out=out[gi * og:(gi + 1) * og, c0:c0 + mc])
    y = out.reshape(o, n, lay.rows, period)[:, :, :ho, :wo].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y).transpose(0, 2, 3, 1)                # NHWC view of NCHW


def _flat_volumes(x, pad_lo, pad_hi):
    """The 3-D paths' layout of x (N, D, H, W, C): each channel's zero-padded volumes, all
    images end to end, as one flat row of a (C, N·Dp·Hp·Wp + Hp·Wp) buffer (a spare plane after
    them: the last output plane's dropped rows read past the volumes), so that every kernel tap
    is a shifted contiguous slice of a row. Returns the buffer and (Dp, Hp, Wp)."""
    n, *sp, c = x.shape
    dp, hp, wp = (s + lo + hi for s, lo, hi in zip(sp, pad_lo, pad_hi))
    flat = np.zeros((c, n * dp * hp * wp + hp * wp), dtype=x.dtype)
    vols = flat[:, :n * dp * hp * wp].reshape(c, n, dp, hp, wp)
    vols[:, :, pad_lo[0]:pad_lo[0] + sp[0], pad_lo[1]:pad_lo[1] + sp[1],
         pad_lo[2]:pad_lo[2] + sp[2]] = x.transpose(4, 0, 1, 2, 3)
    return flat, (dp, hp, wp)


def _column_blocks(n: int, vol: int, used: int, step: int):
    """(start, length) blocks of at most ``step`` flat positions covering, in each of n volumes
    of ``vol`` positions, its first ``used`` (the Do output planes; the planes past them would
    only be dropped)."""
    return [(b * vol + c0, _min(step, used - c0)) for b in range(n) for c0 in range(0, used, step)]


def _volume_output(out, n, dp, hp, wp, do, ho, wo):
    """(N, Do, Ho, Wo, O) as an NDHWC view of NCDHW memory, from out (O, N·Dp·Hp·Wp) whose
    positions past Do, Ho, Wo in each volume are dropped."""
    y = out.reshape(out.shape[0], n, dp, hp, wp)[:, :, :do, :ho, :wo].transpose(1, 0, 2, 3, 4)
    return np.ascontiguousarray(y).transpose(0, 2, 3, 4, 1)


def flat_gemm_3d(x, w, pad_lo, pad_hi, dilation, groups):
    """``flat_gemm`` for a 3-D call (stride 1, no input dilation), on ``_flat_volumes``: the
    patch row of channel c and tap (a, i, j) is a shifted contiguous slice of channel c's row;
    a block of columns at a time, one copy gathers those slices and one GEMM per group
    multiplies them by the (O/g, C/g·kd·kh·kw) weight. One reduction over the whole 3-D kernel,
    where ``depth_taps`` makes kd 2-D calls of a kd times shorter reduction and adds them.
    x (N, D, H, W, C), w (O, kd, kh, kw, C/g) already flipped; returns (N, Do, Ho, Wo, O)."""
    n = x.shape[0]
    o, *ks, cg = w.shape
    g, og = groups, o // groups
    k = cg * ks[0] * ks[1] * ks[2]
    flat, (dp, hp, wp) = _flat_volumes(x, pad_lo, pad_hi)
    do, ho, wo = (p - dl * (kk - 1) for p, dl, kk in zip((dp, hp, wp), dilation, ks))
    wmat = np.ascontiguousarray(w.reshape(g, og, *ks, cg).transpose(0, 1, 5, 2, 3, 4))
    wmat = wmat.reshape(g, og, k)
    out = np.empty((o, n * dp * hp * wp), dtype=np.result_type(x.dtype, w.dtype))
    blocks = _column_blocks(n, dp * hp * wp, do * hp * wp, _max(1, _COL_BLOCK // (4 * k)))
    cols = np.empty((cg, *ks, _max((mc for _, mc in blocks), default=0)), dtype=x.dtype)
    sc, sp = flat.strides
    steps = (sp * dilation[0] * hp * wp, sp * dilation[1] * wp, sp * dilation[2])
    for gi in range(g):
        base = flat[gi * cg:(gi + 1) * cg]
        for c0, mc in blocks:
            taps = as_strided(base[:, c0:], (cg, *ks, mc), (sc, *steps, sp), writeable=False)
            blk = cols[..., :mc]
            np.copyto(blk, taps)
            np.matmul(wmat[gi], blk.reshape(k, mc), out=out[gi * og:(gi + 1) * og, c0:c0 + mc])
    return _volume_output(out, n, dp, hp, wp, do, ho, wo)


def flat_shift_3d(x, w, pad_lo, pad_hi, dilation):
    """A 3-D call (stride 1, no input dilation, one group) with fewer output than input channels
    (the input gradient of a layer that widens its channels), on ``_flat_volumes``: a block of
    columns at a time, one GEMM of the (taps·O, C) weight with the flat rows (read in place)
    gives every tap's contribution at every position, and the output is the sum over taps of
    each tap's rows shifted by the tap's offset. No im2col, whose C·taps rows would be copied
    to produce O rows."""
    n, _d, _h, _w, c = x.shape
    o, *ks, _c = w.shape
    taps = ks[0] * ks[1] * ks[2]
    flat, (dp, hp, wp) = _flat_volumes(x, pad_lo, pad_hi)
    do, ho, wo = (p - dl * (kk - 1) for p, dl, kk in zip((dp, hp, wp), dilation, ks))
    shifts = [a * dilation[0] * hp * wp + i * dilation[1] * wp + j * dilation[2]
              for a in range(ks[0]) for i in range(ks[1]) for j in range(ks[2])]
    reach = shifts[-1]
    wt = np.ascontiguousarray(w.reshape(o, taps, c).transpose(1, 0, 2)).reshape(taps * o, c)
    dtype = np.result_type(x.dtype, w.dtype)
    out = np.empty((o, n * dp * hp * wp), dtype=dtype)
    # Each block's GEMM also computes the reach past it: blocks of at least 4x the reach.
    step = _max(_COL_BLOCK // (4 * taps * o), 4 * reach, 1)
    blocks = _column_blocks(n, dp * hp * wp, do * hp * wp, step)
    part = np.empty((taps, o, _max((mc for _, mc in blocks), default=0) + reach), dtype=dtype)
    for c0, mc in blocks:
        y = part[..., :mc + reach]
        np.matmul(wt, flat[:, c0:c0 + mc + reach], out=y.reshape(taps * o, mc + reach))
        acc = out[:, c0:c0 + mc]
        np.copyto(acc, y[0, :, :mc])
        for t in range(1, taps):
            acc += y[t, :, shifts[t]:shifts[t] + mc]
    return _volume_output(out, n, dp, hp, wp, do, ho, wo)

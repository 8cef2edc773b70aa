"""Faster paths of the NumPy ``conv``, as explicit tables: ``PATHS`` here for 2-D calls (and
1-D calls lifted to 2-D of height 1), ``PATHS_3D`` in ``numpy_conv_paths3d`` for 3-D calls.

``numpy_backend.conv`` is the definition (im2col through one strided view, one GEMM per group).
Its callers — the forward, both gradients and the transposed conv — come in a few shapes for
which that definition wastes time: few channels per group (the GEMMs are thin and the NHWC
im2col copies short runs), kernels larger than their output (every weight gradient), input
dilation (input gradients of strided convs: mostly zeros). ``PATHS`` lists, in order, a path for
each: its name, when it applies (a predicate of the call's ``Geometry`` alone), the
implementation, and what it buys where it was measured. ``conv2d`` takes the first path that
applies; a path may decline by returning None (then the next one is tried) and the definition is
the fallback. Every path computes the definition's numbers: tests/test_conv_paths.py proves each
one taken on its case and equal to the definition and to a direct float64 reference.

Speed-ups in the notes: the path against the definition on the same call of a
``benchmarks/conv.py`` workload (fwd+bwd of its sum), float32, one thread, CPU time, best of 9
interleaved runs, on the project's shared 2-core x86 Linux box (OpenBLAS 0.3.31).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lucid.backends.contract import conv_output_size, dilated_size
from lucid.backends.numpy_conv_flat import (
    flat_dots,
    flat_gemm,
    flat_shift_3d,
    flat_taps,
)

_max, _min = builtins.max, builtins.min
Pair = tuple[int, int]

# Thresholds of the table, and the NHWC paths' block sizes (module constants, so tests can force
# blocking on small inputs; the flat paths' block sizes are in numpy_conv_flat).
_BLOCK = 1 << 20        # im2col elements per block (4 MB of float32): stays in cache for the GEMM
_MIN_ROWS = 512         # fewer GEMM rows than this per block and blocking costs more than it saves
_TAPS_MAX_CG = 4        # grouped convs with at most this many input channels per group use taps
_FLAT_GEMM_MAX = 16     # channel-major im2col with at most this many in and out channels per group
_DOT_MAX_WASTE = 8      # flat_dots when the padded input is at most this many times the kernel
_SHIFT_MAX = 1 << 20    # flat_shift(_3d): taps·O·reach at most this (its buffer is about 5x that)
_CM_LONG_ROW = 64       # channel_major: kernel rows at least this long are contiguous enough, or
_CM_ROWS_PER_OUT = 5    # ... at most this many GEMM rows per output channel (see _channel_major)


def _pair(v: tuple | list) -> Pair:
    return (int(v[0]), int(v[1]))


@dataclass(frozen=True)
class Geometry:
    """One ``conv2d`` call: x (N, H, W, C) undilated, w (O, kh, kw, C/g), its options, and the
    sizes the paths need. hp, wp: the input after input dilation and padding."""

    n: int
    h: int
    w: int
    c: int
    o: int
    kh: int
    kw: int
    groups: int
    stride: Pair
    pad_lo: Pair
    pad_hi: Pair
    dilation: Pair
    input_dilation: Pair
    ho: int
    wo: int
    hp: int
    wp: int

    @classmethod
    def of(cls, x_shape: tuple, w_shape: tuple, stride: Pair, pad_lo: Pair, pad_hi: Pair,
           dilation: Pair, input_dilation: Pair, groups: int) -> Geometry:
        n, h, wd, c = x_shape
        o, kh, kw, _ = w_shape
        size = [conv_output_size(s, k, st, lo, hi, d, di) for s, k, st, lo, hi, d, di in zip(
            (h, wd), (kh, kw), stride, pad_lo, pad_hi, dilation, input_dilation)]
        hp, wp = (dilated_size(s, di) + lo + hi for s, lo, hi, di in zip(
            (h, wd), pad_lo, pad_hi, input_dilation))
        return cls(n, h, wd, c, o, kh, kw, groups, _pair(stride), _pair(pad_lo), _pair(pad_hi),
                   _pair(dilation), _pair(input_dilation), size[0], size[1], hp, wp)

    @property
    def cg(self) -> int:
        return self.c // self.groups

    @property
    def og(self) -> int:
        return self.o // self.groups

    @property
    def k(self) -> int:
        """Reduction length per group: kh * kw * C/g."""
        return self.kh * self.kw * self.cg

    @property
    def rows(self) -> int:
        """Output pixels, the GEMM rows of im2col: N * Ho * Wo."""
        return self.n * self.ho * self.wo

    @property
    def padded(self) -> bool:
        return any(self.pad_lo) or any(self.pad_hi)

    @property
    def undilated(self) -> bool:
        return self.input_dilation == (1, 1)

    @property
    def flat(self) -> bool:
        """Stride 1 and a kernel no larger than its output: the flat-plane paths' shapes."""
        return self.undilated and self.stride == (1, 1) and self.kh * self.kw <= self.ho * self.wo


class Path(NamedTuple):
    name: str
    applies: Callable[[Geometry], bool]
    run: Callable[[np.ndarray, np.ndarray, Geometry], np.ndarray | None]
    note: str


def first(geo: Geometry) -> Path | None:
    """The first path in ``PATHS`` that applies to ``geo`` (None: the definition)."""
    return _first(PATHS, geo)


def run(x: np.ndarray, w: np.ndarray, geo: Geometry) -> np.ndarray | None:
    """The result of the first path that applies and does not decline, or None (then the
    caller computes the definition). w is already flipped for a convolution."""
    return _run(PATHS, x, w, geo)


def _first(table: Sequence[Any], call: Any) -> Any:
    """The first entry of a path table (``PATHS`` or ``PATHS_3D``) that applies to ``call``."""
    return next((p for p in table if p.applies(call)), None)


def _run(table: Sequence[Any], x: np.ndarray, w: np.ndarray, call: Any) -> np.ndarray | None:
    """Each entry of ``table`` that applies, in order, until one does not decline (None)."""
    for path in table:
        if path.applies(call):
            out = path.run(x, w, call)
            if out is not None:
                return out
    return None


def lifted(x: np.ndarray, w: np.ndarray, stride: tuple, pad_lo: tuple, pad_hi: tuple,
           dilation: tuple, input_dilation: tuple, groups: int) -> np.ndarray | None:
    """The table for a ``conv`` call of any rank (w already flipped): a 2-D call as it is; a 1-D
    call as the 2-D call of height 1 it equals (x (N, 1, L, C), w (O, 1, k, C/g)), its result
    reshaped back; a 3-D call to ``numpy_conv_paths3d.PATHS_3D`` (whose last entry,
    ``depth_taps``, makes 2-D calls of ``PATHS``). None: no path applies (the caller computes
    the definition)."""
    rank = x.ndim - 2
    if rank == 2:
        return run(x, w, Geometry.of(x.shape, w.shape, stride, pad_lo, pad_hi, dilation,
                                     input_dilation, groups))
    if rank == 1:
        x2, w2 = x[:, None], w[:, None]
        geo = Geometry.of(x2.shape, w2.shape, (1, stride[0]), (0, pad_lo[0]), (0, pad_hi[0]),
                          (1, dilation[0]), (1, input_dilation[0]), groups)
        out = run(x2, w2, geo)
        return None if out is None else out[:, 0]
    if rank == 3:
        from lucid.backends import numpy_conv_paths3d as p3  # it builds on this module
        return p3.run_3d(x, w, p3.Volume.of(x.shape, w.shape, stride, pad_lo, pad_hi,
                                            dilation, input_dilation, groups))
    return None


# -- input dilation -------------------------------------------------------------------------

def _phase_axis(size, k, lo, dil, idil, r, out_len):
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


def _stride_phases(x, w, geo):
    """A stride-1 conv over an input dilated by D (the input gradient of a strided conv, or a
    transposed conv) as D_h·D_w ordinary convs, one per output phase: output row i = q·D + r only
    meets the taps whose dilated input position is a real input row, so each phase convolves the
    undilated input with a sub-kernel. This skips the zeros that a dilated copy would hold (and
    D² times the im2col memory)."""
    from lucid.backends.numpy_backend import conv  # each phase takes the table again
    (dh_in, dw_in), (dh, dw) = geo.input_dilation, geo.dilation
    ho, wo = geo.ho, geo.wo
    out = np.zeros((geo.n, ho, wo, geo.o), dtype=np.result_type(x.dtype, w.dtype))
    for rh in range(dh_in):
        ph = _phase_axis(geo.h, geo.kh, geo.pad_lo[0], dh, dh_in, rh, ho)
        if ph is None:
            continue
        for rw in range(dw_in):
            pw = _phase_axis(geo.w, geo.kw, geo.pad_lo[1], dw, dw_in, rw, wo)
            if pw is None:
                continue
            sub = w[:, ph[0]::ph[1], pw[0]::pw[1], :]
            part = conv(x[:, ph[3], pw[3]], sub, (1, 1), (ph[4], pw[4]), (ph[5], pw[5]),
                          (ph[2], pw[2]), (1, 1), geo.groups, False)
            out[:, rh::dh_in, rw::dw_in] = part[:, :ph[6], :pw[6]]
    return out


# -- 1×1 kernels and 1×1 outputs: plain GEMMs ------------------------------------------------

def _pointwise(x, w, geo):
    """A 1×1 conv is a GEMM of every pixel's channels with the weight (O, C), read in place in
    the input's own memory order. NCHW memory (the ops layer hands over an NHWC view of it for
    NCHW tensors): one GEMM per image of the weight with its (C, H·W) matrix, whose (N, O, H·W)
    result is NCHW memory again, so that the ops layer's NCHW view of it is contiguous. NHWC
    memory (channels-last tensors, or a broadcast gradient once made dense): one GEMM of the
    (N·H·W, C) pixels."""
    n, h, wd, c = x.shape
    wm = w.reshape(geo.o, c)
    if 0 in x.strides:            # a broadcast (the gradient of a sum): BLAS needs it dense
        x = np.ascontiguousarray(x)
    if x.flags.c_contiguous:
        return np.matmul(x.reshape(n * h * wd, c), wm.T).reshape(n, h, wd, geo.o)
    y = np.matmul(wm, x.transpose(0, 3, 1, 2).reshape(n, c, h * wd))      # (N, O, H·W)
    return y.reshape(n, geo.o, h, wd).transpose(0, 2, 3, 1)               # NHWC view of NCHW


def _full_window(x, w, geo):
    """One output pixel whose window is the whole input (the weight gradient of a 1×1 conv,
    where the 'kernel' is the output gradient): out[n, o] = Σ_{i,j,c} x[n, i, j, c] w[o, i, j, c],
    as one GEMM over the window per channel c, summed. In the weight-gradient picture c is the
    batch and x, w are views of NCHW memory, so each (n, i·j) and (i·j, o) matrix is read in
    place; one GEMM over (i, j, c) would first copy both operands."""
    n, c, o = geo.n, geo.c, geo.o
    (dh, dw), (kh, kw) = geo.dilation, (geo.kh, geo.kw)
    xw = x[:, :(kh - 1) * dh + 1:dh, :(kw - 1) * dw + 1:dw, :]      # the window (N, kh, kw, C)
    a = xw.transpose(3, 0, 1, 2).reshape(c, n, kh * kw)
    b = w.transpose(3, 1, 2, 0).reshape(c, kh * kw, o)
    return np.matmul(a, b).sum(axis=0).reshape(n, 1, 1, o)


def _flat_shift(x, w, geo):
    """``flat_shift_3d`` on the 2-D call as a 3-D one of depth 1."""
    (lh, lw), (hh, hw), (dh, dw) = geo.pad_lo, geo.pad_hi, geo.dilation
    return flat_shift_3d(x[:, None], w[:, None], (0, lh, lw), (0, hh, hw), (1, dh, dw))[:, 0]


def _shift_fits(geo) -> bool:
    """flat_shift's per-block buffer (taps·O rows, the reach past the block) stays bounded."""
    reach = (geo.kh - 1) * geo.dilation[0] * geo.wp + (geo.kw - 1) * geo.dilation[1]
    return geo.kh * geo.kw * geo.o * reach <= _SHIFT_MAX


# -- NHWC im2col, in blocks ------------------------------------------------------------------

def _windows(x, geo):
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


def _weight_matrix(w, geo):
    """(g, K, O/g): each group's weight as the right-hand GEMM operand, K in (kh, kw, C/g) order."""
    return np.ascontiguousarray(w).reshape(geo.groups, geo.og, geo.k).transpose(0, 2, 1)


def _strided_taps(x, w, geo):
    """Few input channels per group where ``flat_taps`` does not apply (strided, or a kernel
    larger than the output): one einsum over the strided window view, which reads each input
    once per tap without materialising patches. im2col would gather along the channel axis into
    thin GEMMs, which costs far more than the arithmetic."""
    view = _windows(x, geo)
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


def _k_blocked(x, w, geo):
    """Few output pixels but a long reduction (the shape of a weight gradient): the im2col copy
    is split along the kernel rows into cache-sized pieces and the GEMMs' partial sums added."""
    view, wmat = _windows(x, geo), _weight_matrix(w, geo)
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


def _channel_major(x, w, geo):
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


def _row_blocks(geo) -> list[tuple[int, int, int, int]]:
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


def _row_blocked(x, w, geo):
    """The definition's im2col and GEMMs, a cache-sized block of output rows at a time."""
    view, wmat = _windows(x, geo), _weight_matrix(w, geo)
    g, k, o, wo = geo.groups, geo.k, geo.o, geo.wo
    out = np.empty((geo.n, geo.ho, wo, o), dtype=np.result_type(x.dtype, w.dtype))
    for b0, b1, r0, r1 in _row_blocks(geo):
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


# -- the table ------------------------------------------------------------------------------

PATHS: tuple[Path, ...] = (
    Path("stride_phases",
         lambda g: not g.undilated and g.stride == (1, 1),
         _stride_phases,
         "input gradient of 'strided 5x5 s2': D² sub-convs of the undilated input skip the "
         "zeros of the dilated copy (6x the definition, a quarter of its im2col memory)"),
    Path("pointwise",
         lambda g: (g.undilated and g.kh == g.kw == 1 and g.stride == (1, 1) and not g.padded
                    and g.groups == 1),
         _pointwise,
         "forward and input gradient of 'pointwise 64->128': GEMMs on the input's own memory "
         "(forward 1.3-1.6x the definition; input gradient 2.1x for a dense output gradient, "
         "1.0x for the benchmark's broadcast one); with full_window the 1x1 fwd+bwd runs at "
         "the speed of plain NumPy GEMMs (benchmarks/conv.py prints the ratio)"),
    Path("full_window",
         lambda g: (g.undilated and g.ho == g.wo == 1 and not g.padded and g.groups == 1
                    and g.kh * g.kw >= g.c),
         _full_window,
         "weight gradient of 'pointwise 64->128': GEMMs over the window read in place, no "
         "im2col (1.5-1.9x the definition for the benchmark's broadcast output gradient, 5x for "
         "a dense one); a window shorter than the channel count would make the GEMMs too short"),
    Path("flat_dots",
         lambda g: (g.undilated and g.groups > 1 and g.ho * g.wo < g.kh * g.kw
                    and g.hp * g.wp <= _DOT_MAX_WASTE * g.kh * g.kw),
         flat_dots,
         "weight gradients of 'depthwise 64 g64' (13x the definition) and 'grouped g4' "
         "(1.5x): products with flat planes read in place; declines on a non-finite result"),
    Path("flat_taps",
         lambda g: g.flat and g.groups > 1 and g.cg <= _TAPS_MAX_CG,
         flat_taps,
         "forward and input gradient of 'depthwise 64 g64': weighted sums of shifted flat "
         "slices (12x and 17x the definition)"),
    Path("flat_gemm",
         lambda g: (g.flat and g.kh * g.kw > 1 and g.cg <= _FLAT_GEMM_MAX
                    and g.og <= _FLAT_GEMM_MAX),
         flat_gemm,
         "forward and input gradient of 'bayar 3->3 256² k5' (2x the definition) and "
         "'grouped g4' (1.5x, 2x): channel-major im2col of long runs"),
    Path("flat_shift",
         lambda g: (g.flat and g.groups == 1 and g.kh * g.kw > 1 and 8 * g.o <= g.c
                    and _shift_fits(g)),
         _flat_shift,
         "input gradients of the 7x7/2 first convs of the demo net (24 -> 3 channels) and "
         "MISLnet (96 -> 3), i.e. their 4x4..3x3 stride phases: one GEMM of the (taps·O, C) "
         "weight with the flat planes read in place, then shifted sums, instead of an im2col "
         "that copies taps·C values to make O. Demo phases 1.6x row_blocked on one thread; "
         "MISLnet's 1.04x on one, 3.5x on two (one wide GEMM both threads share, where "
         "row_blocked's 3-column GEMMs and copies run on one); 64 -> 8 3x3 0.96x, 64 -> 4 1.03x. "
         "After flat_gemm, which stays faster with at most 16 channels"),
    Path("strided_taps",
         lambda g: g.undilated and g.groups > 1 and g.cg <= _TAPS_MAX_CG,
         _strided_taps,
         "strided depthwise, in no benchmark workload ('depthwise 64 g64' with stride 2: 2.8x "
         "the definition): one einsum per channel over the window view"),
    Path("channel_major",
         lambda g: (g.undilated and g.groups == 1 and g.kh * g.kw > g.ho * g.wo
                    and g.rows * g.kh * g.kw <= _BLOCK
                    and (g.kh == 1 or g.kw >= _CM_LONG_ROW
                         or g.rows <= _CM_ROWS_PER_OUT * g.o)),
         _channel_major,
         "weight gradients whose one-channel im2col block fits _BLOCK and whose window rows "
         "are long (a kernel of one row, or rows of 64 or more: the EEG nets' temporal and "
         "spatial convs, eeg 1-D 2.2x the definition, an EEGNet 1x64 conv 2.1x k_blocked, "
         "ShallowConvNet's 1.2x) or whose GEMM has few rows per output channel (the digits "
         "CNN's: 1 -> 16 3x, 16 -> 32 1.3x the definition; 'mid', 'dilated' as fast as "
         "k_blocked): im2col in (C, kh, kw) order, contiguous window rows of the input's "
         "memory, and the output gradient read in its own order. The demo net's 5x5..7x7 "
         "wgrads (rows of 12-48, many rows per output) are 1.05-1.35x faster through "
         "k_blocked's long NHWC runs. Declines an x whose channel axis is not outermost"),
    Path("k_blocked",
         lambda g: (g.undilated and g.kh > 1 and g.rows * g.groups * g.k > _BLOCK
                    and (g.rows < _MIN_ROWS or g.kh * g.kw > g.ho * g.wo)),
         _k_blocked,
         "weight gradients that channel_major leaves: 'bayar' (1.5x the definition), "
         "'strided' (1.5x), the demo net's, MISLnet's conv2 (96 -> 64, 1.35x); and few "
         "output pixels over a long reduction: the im2col copy in cache-sized kernel-row "
         "blocks"),
    Path("row_blocked",
         lambda g: g.undilated and g.kh * g.kw > 1 and len(_row_blocks(g)) > 1,
         _row_blocked,
         "input gradients of 'mid' and 'dilated' (1.25x, 1.3x the definition), and their and "
         "'strided''s forwards (1.0x): the im2col copy in cache-sized output-row blocks, of "
         "at least _MIN_ROWS rows (MISLnet's conv2 forward, 5x5 over 96 channels of 64 30x30 "
         "maps: 132 ms against the definition's 1.5 s and 550 MB copy, on two threads)"),
)

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

from lucid.backends import numpy_conv_im2col as im2col
from lucid.backends.contract import conv_output_size, dilated_size
from lucid.backends.numpy_conv_flat import (
    flat_dots,
    flat_gemm,
    flat_shift_3d,
    flat_taps,
)
from lucid.backends.numpy_conv_im2col import (
    batch_inner,
    batch_inner_run,
    channel_major,
    k_blocked,
    row_blocked,
    row_blocks,
    strided_taps,
)

_max, _min = builtins.max, builtins.min
Pair = tuple[int, int]

# Thresholds of the table (module constants, so tests can move them; the paths' block sizes are
# in numpy_conv_im2col and numpy_conv_flat, and the table reads im2col's there).
_TAPS_MAX_CG = 4        # grouped convs with at most this many input channels per group use taps
_FLAT_GEMM_MAX = 16     # channel-major im2col with at most this many in and out channels per group
_DOT_MAX_WASTE = 8      # flat_dots when the padded input is at most this many times the kernel
_SHIFT_MAX = 1 << 20    # flat_shift(_3d): taps·O·reach at most this (its buffer is about 5x that)


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
    from lucid.backends.numpy_backend import conv_table  # each phase takes the table again
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
            part = conv_table(x[:, ph[3], pw[3]], sub, (1, 1), (ph[4], pw[4]),
                              (ph[5], pw[5]), (ph[2], pw[2]), (1, 1), geo.groups, False)
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
         strided_taps,
         "strided depthwise, in no benchmark workload ('depthwise 64 g64' with stride 2: 2.8x "
         "the definition): one einsum per channel over the window view"),
    Path("batch_inner",
         lambda g: (g.undilated and g.groups == 1 and g.kh * g.kw > g.ho * g.wo
                    and batch_inner_run(g) >= _max(im2col._BI_MIN_RUN, 2 * g.kw)
                    and g.c * g.kh * g.kw * g.ho * g.wo * g.n <= im2col._BLOCK),
         batch_inner,
         "weight gradients whose im2col fits _BLOCK, in the forward's im2col order: runs of "
         "Wo·B values (B: the forward's input channels) at least twice channel_major's kw and "
         "_BI_MIN_RUN long. The digits CNN's 16 -> 32 (runs of 48 against 8): 1.7x "
         "channel_major; 8 -> 32 (24 against 8) 1.4x; runs of 12 or 6 against 8, 16 against "
         "64: 0.7-0.94x, left to channel_major"),
    Path("channel_major",
         lambda g: (g.undilated and g.groups == 1 and g.kh * g.kw > g.ho * g.wo
                    and g.rows * g.kh * g.kw <= im2col._BLOCK
                    and (g.kh == 1 or g.kw >= im2col._CM_LONG_ROW
                         or g.rows <= im2col._CM_ROWS_PER_OUT * g.o)),
         channel_major,
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
         lambda g: (g.undilated and g.kh > 1 and g.rows * g.groups * g.k > im2col._BLOCK
                    and (g.rows < im2col._MIN_ROWS or g.kh * g.kw > g.ho * g.wo)),
         k_blocked,
         "weight gradients that channel_major leaves: 'bayar' (1.5x the definition), "
         "'strided' (1.5x), the demo net's, MISLnet's conv2 (96 -> 64, 1.35x); and few "
         "output pixels over a long reduction: the im2col copy in cache-sized kernel-row "
         "blocks"),
    Path("row_blocked",
         lambda g: g.undilated and g.kh * g.kw > 1 and len(row_blocks(g)) > 1,
         row_blocked,
         "input gradients of 'mid' and 'dilated' (1.25x, 1.3x the definition), and their and "
         "'strided''s forwards (1.0x): the im2col copy in cache-sized output-row blocks, of "
         "at least _MIN_ROWS rows (MISLnet's conv2 forward, 5x5 over 96 channels of 64 30x30 "
         "maps: 132 ms against the definition's 1.5 s and 550 MB copy, on two threads)"),
)

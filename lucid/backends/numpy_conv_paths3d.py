"""The 3-D calls' table of the NumPy ``conv``: ``PATHS_3D``, used as ``numpy_conv_paths.PATHS``
is (``numpy_conv_paths.lifted`` offers every 3-D call to it; see that module for how the tables
work and are tested). Notes measured as ``PATHS``'s are, on the 'video 3-D 3->16 8x32² k3'
workload's calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from lucid.backends.contract import conv_output_size
from lucid.backends.numpy_conv_flat import flat_gemm_3d, flat_shift_3d
from lucid.backends.numpy_conv_paths import _FLAT_GEMM_MAX, _SHIFT_MAX, _first, _run


def depth_taps(x, w, vol):
    """A 3-D conv (depth not input-dilated) as kd 2-D convs, one per depth tap a of the kernel:
    output plane i reads padded input plane i·s + a·d with the 2-D kernel w[:, a], so the planes
    of every image that tap a reads form one batch of N·D_out images of a 2-D call, which takes
    the 2-D table."""
    from lucid.backends.numpy_backend import conv_table  # each 2-D call takes the table again
    n, _d, h, wd, c = x.shape
    o, kd = w.shape[0], w.shape[1]
    stride, pad_lo, pad_hi = vol.stride, vol.pad_lo, vol.pad_hi
    dilation, input_dilation, groups = vol.dilation, vol.input_dilation, vol.groups
    sd, dd, do = stride[0], dilation[0], vol.out[0]
    if pad_lo[0] or pad_hi[0]:
        x = np.pad(x, ((0, 0), (pad_lo[0], pad_hi[0]), (0, 0), (0, 0), (0, 0)))
    out = None
    for a in range(kd):
        planes = x[:, a * dd:a * dd + sd * (do - 1) + 1:sd].reshape(n * do, h, wd, c)
        part = conv_table(planes, w[:, a], stride[1:], pad_lo[1:], pad_hi[1:], dilation[1:],
                          input_dilation[1:], groups, False)
        out = part if out is None else np.add(out, part, out=out)
    assert out is not None
    return out.reshape((n, do) + out.shape[1:3] + (o,))


Triple = tuple[int, int, int]


def _triple(v: tuple | list) -> Triple:
    return (int(v[0]), int(v[1]), int(v[2]))


@dataclass(frozen=True)
class Volume:
    """One 3-D ``conv`` call: x (N, D, H, W, C) undilated, w (O, kd, kh, kw, C/g), its options,
    and its output size (Do, Ho, Wo)."""

    n: int
    c: int
    o: int
    kernel: Triple
    groups: int
    stride: Triple
    pad_lo: Triple
    pad_hi: Triple
    dilation: Triple
    input_dilation: Triple
    out: Triple

    @classmethod
    def of(cls, x_shape: tuple, w_shape: tuple, stride: tuple, pad_lo: tuple, pad_hi: tuple,
           dilation: tuple, input_dilation: tuple, groups: int) -> Volume:
        n, *sp, c = x_shape
        o, *k, _cg = w_shape
        out = [conv_output_size(*a) for a in zip(sp, k, stride, pad_lo, pad_hi, dilation,
                                                  input_dilation)]
        t = _triple
        return cls(n, c, o, t(k), groups, t(stride), t(pad_lo), t(pad_hi), t(dilation),
                   t(input_dilation), t(out))

    @property
    def cg(self) -> int:
        return self.c // self.groups

    @property
    def og(self) -> int:
        return self.o // self.groups

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.kernel[2]

    @property
    def flat(self) -> bool:
        """Stride 1, no input dilation, a kernel no larger than its output: the shapes of the
        flat-volume paths (numpy_conv_flat), whose dropped positions then stay few."""
        return (self.stride == self.input_dilation == (1, 1, 1)
                and self.taps <= self.out[0] * self.out[1] * self.out[2])

    @property
    def reach(self) -> int:
        """The last tap's offset in the flat padded volumes of ``numpy_conv_flat``."""
        (kd, kh, kw), (dd, dh, dw) = self.kernel, self.dilation
        hp = self.out[1] + dh * (kh - 1)
        wp = self.out[2] + dw * (kw - 1)
        return (kd - 1) * dd * hp * wp + (kh - 1) * dh * wp + (kw - 1) * dw


class Path3(NamedTuple):
    name: str
    applies: Callable[[Volume], bool]
    run: Callable[[np.ndarray, np.ndarray, Volume], np.ndarray | None]
    note: str


def first_3d(vol: Volume) -> Path3 | None:
    """The first path in ``PATHS_3D`` that applies to ``vol`` (None: the definition)."""
    return _first(PATHS_3D, vol)


def run_3d(x: np.ndarray, w: np.ndarray, vol: Volume) -> np.ndarray | None:
    """``run`` for a 3-D call, over ``PATHS_3D``."""
    return _run(PATHS_3D, x, w, vol)


def _flat_shift_3d(x, w, vol):
    return flat_shift_3d(x, w, vol.pad_lo, vol.pad_hi, vol.dilation)


def _flat_gemm_3d(x, w, vol):
    return flat_gemm_3d(x, w, vol.pad_lo, vol.pad_hi, vol.dilation, vol.groups)


PATHS_3D: tuple[Path3, ...] = (
    Path3("flat_shift_3d",
          lambda v: (v.flat and v.groups == 1 and v.o < v.c
                     and v.taps * v.o * v.reach <= _SHIFT_MAX),
          _flat_shift_3d,
          "input gradient of 'video 3-D' (16 -> 3 channels): one GEMM of the (taps·O, C) weight "
          "with the flat volumes read in place, then shifted sums (5.9x the definition, 2.2x "
          "depth_taps, 1.6x flat_gemm_3d)"),
    Path3("flat_gemm_3d",
          lambda v: v.flat and v.cg <= _FLAT_GEMM_MAX and v.og <= _FLAT_GEMM_MAX,
          _flat_gemm_3d,
          "forward of 'video 3-D' (3 -> 16 channels): flat_gemm's channel-major im2col over "
          "the whole 3-D kernel, one reduction of kd·kh·kw·C/g (1.7x the definition, 1.65x "
          "depth_taps)"),
    Path3("depth_taps",
          lambda v: v.input_dilation[0] == 1 and v.kernel[0] <= v.out[0],
          depth_taps,
          "3-D calls whose kernel is no deeper than their output (not a weight gradient's "
          "shape: there one im2col GEMM beats kd 2-D calls) and no flat path applies: kd 2-D "
          "calls of the table (on 'video 3-D', before the flat paths: input gradient 2.7x "
          "the definition, forward 1.0x)"),
)

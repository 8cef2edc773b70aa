"""The NumPy conv2d's fast-path table (lucid/backends/numpy_conv_paths.py): every path is taken
where its note says it is, each threshold sits where the table says, and every path computes
the definition's numbers (float64, and the direct reference in conv_reference.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conv_reference import conv2d_ref
from hypothesis import given, settings
from hypothesis import strategies as st

import lucid
import lucid.nn.functional as F
from lucid.backends import numpy_backend as nb
from lucid.backends import numpy_conv_flat as flat
from lucid.backends import numpy_conv_im2col as im2col
from lucid.backends import numpy_conv_paths as P
from lucid.backends import numpy_conv_paths3d as P3

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "conv.py"


def _bench_workloads() -> dict:
    spec = importlib.util.spec_from_file_location("bench_conv", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.WORKLOADS


def _geometry(n, h, w, cin, cout, k, groups, stride=(1, 1), lo=(0, 0), hi=(0, 0),
              dilation=(1, 1), input_dilation=(1, 1), memory="nhwc"):
    return P.Geometry.of((n, h, w, cin), (cout,) + k + (cin // groups,), stride, lo, hi,
                         dilation, input_dilation, groups)


def _conv(n, h, w, cin, cout, k, groups, **options) -> dict:
    """One conv2d call's arguments: x (n, h, w, cin), w (cout, *k, cin/groups), and the
    options stride, lo, hi, dilation, input_dilation; ``memory="cnhw"``: x is a view of
    (cin, n, h, w) memory, as a weight gradient's input is (see channel_major)."""
    return {"n": n, "h": h, "w": w, "cin": cin, "cout": cout, "k": k, "groups": groups, **options}


def _taken(geo) -> str:
    path = P.first(geo)
    return "definition" if path is None else path.name


# -- the benchmark's calls take the paths the notes name ------------------------------------

# Per workload: the paths of the forward, the input gradient and the weight gradient, in call
# order (the stride phases' own sub-convs follow their entry). A weight gradient's kernel (the
# output gradient) is larger than its output: channel-major im2col, or kernel-row blocks where
# one channel's block would not fit the cache (Bayar's 256² planes).
BENCH_PATHS = {
    "bayar 3->3 256² k5": ["flat_gemm", "flat_gemm", "k_blocked"],
    "mid 32->64 32² k3": ["row_blocked", "row_blocked", "channel_major"],
    "depthwise 64 g64": ["flat_taps", "flat_taps", "flat_dots"],
    "grouped g4 64->64": ["flat_gemm", "flat_gemm", "flat_dots"],
    "pointwise 64->128": ["pointwise", "pointwise", "full_window"],
    "strided 5x5 s2": ["row_blocked", "stride_phases"] + ["row_blocked"] * 4 + ["k_blocked"],
    "dilated 3x3 d2": ["row_blocked", "row_blocked", "channel_major"],
    # 1-D calls go through the table as 2-D calls of height 1
    "eeg 1-D 8->16 L512 k64": ["flat_gemm", "flat_gemm", "channel_major"],
    # 3-D calls take the 3-D table (PATHS_3D); the weight gradient's kernel is deeper than its
    # output, so it is the definition
    "video 3-D 3->16 8x32² k3": ["flat_gemm_3d", "flat_shift_3d", "definition"],
}


def test_benchmark_workloads_take_their_paths(numpy_backend, monkeypatch):
    """Each conv2d call of benchmarks/conv.py's fwd+bwd takes the path whose note cites it.
    The paths are replaced by recorders returning zeros (the stride phases run, to record their
    sub-convs), so the real sizes cost little."""
    calls, active = [], []
    conv2d = nb.conv_table                  # what conv and the recursing paths call

    def recording_conv2d(*args):
        active.append(len(calls))
        calls.append("definition")         # unless a path below records itself
        try:
            return conv2d(*args)
        finally:
            active.pop()

    def recorder(path):
        def run(x, w, geo):
            calls[active[-1]] = path.name
            if path.name == "stride_phases":
                return path.run(x, w, geo)
            return np.zeros((geo.n, geo.ho, geo.wo, geo.o), dtype=x.dtype)
        return run

    def recorder_3d(path):
        def run(x, w, vol):
            calls[active[-1]] = path.name
            if path.name == "depth_taps":                   # its 2-D calls record themselves
                return path.run(x, w, vol)
            return np.zeros((vol.n, *vol.out, vol.o), dtype=x.dtype)
        return run

    monkeypatch.setattr(nb, "conv_table", recording_conv2d)
    monkeypatch.setattr(P, "PATHS", tuple(p._replace(run=recorder(p)) for p in P.PATHS))
    monkeypatch.setattr(P3, "PATHS_3D", tuple(p._replace(run=recorder_3d(p)) for p in P3.PATHS_3D))
    workloads = _bench_workloads()
    assert set(workloads) == set(BENCH_PATHS)
    for name, (n, ci, co, size, k, s, p, d, g) in workloads.items():
        calls.clear()
        sp = tuple(size) if isinstance(size, tuple) else (size, size)
        x = lucid.zeros(n, ci, *sp, requires_grad=True)
        w = lucid.zeros(co, ci // g, *(k,) * len(sp), requires_grad=True)
        getattr(F, f"conv{len(sp)}d")(x, w, None, s, p, d, g).sum().backward()
        assert calls == BENCH_PATHS[name], (name, calls)


def test_every_path_has_threshold_cases():
    assert {case[0] for case in CASES} - {"definition"} == {p.name for p in P.PATHS}


# -- each threshold, on both sides ----------------------------------------------------------

# (expected path, geometry): pairs on either side of each threshold, at the table's values.
CASES = [
    ("stride_phases", _conv(n=2, h=6, w=7, cin=3, cout=4, k=(3, 3), groups=1,
                           input_dilation=(2, 1))),
    ("definition", _conv(n=2, h=6, w=7, cin=3, cout=4, k=(3, 3), groups=1, stride=(2, 1),
                        input_dilation=(2, 1))),           # input dilation with a stride
    ("pointwise", _conv(n=2, h=5, w=6, cin=7, cout=9, k=(1, 1), groups=1)),
    ("definition", _conv(n=2, h=5, w=6, cin=7, cout=9, k=(1, 1), groups=1, lo=(1, 0))),
    ("full_window", _conv(n=3, h=4, w=4, cin=16, cout=5, k=(4, 4), groups=1)),      # kh·kw = C
    ("channel_major", _conv(n=3, h=4, w=4, cin=17, cout=5, k=(4, 4), groups=1)),    # kh·kw < C
    # _DOT_MAX_WASTE: the padded input at most 8 times the kernel
    ("flat_dots", _conv(n=2, h=8, w=16, cin=4, cout=4, k=(8, 2), groups=2, stride=(1, 2))),
    ("strided_taps", _conv(n=2, h=8, w=17, cin=4, cout=4, k=(8, 2), groups=2, stride=(1, 2))),
    # _TAPS_MAX_CG: at most 4 input channels per group
    ("flat_taps", _conv(n=2, h=6, w=7, cin=8, cout=6, k=(3, 3), groups=2)),         # C/g = 4
    ("flat_gemm", _conv(n=2, h=6, w=7, cin=10, cout=6, k=(3, 3), groups=2)),        # C/g = 5
    ("strided_taps", _conv(n=2, h=9, w=7, cin=8, cout=6, k=(3, 3), groups=2, stride=(2, 1))),
    # _FLAT_GEMM_MAX: at most 16 input and output channels per group
    ("flat_gemm", _conv(n=2, h=6, w=7, cin=16, cout=16, k=(3, 3), groups=1)),
    ("definition", _conv(n=2, h=6, w=7, cin=17, cout=16, k=(3, 3), groups=1)),
    ("definition", _conv(n=2, h=6, w=7, cin=16, cout=17, k=(3, 3), groups=1)),
    # _MIN_ROWS and _BLOCK for k_blocked: under 512 output pixels, over 2^20 im2col elements
    ("k_blocked", _conv(n=1, h=14, w=80, cin=33, cout=5, k=(8, 8), groups=1)),      # 1.03·2^20
    ("definition", _conv(n=1, h=14, w=80, cin=32, cout=5, k=(8, 8), groups=1)),     # 0.998·2^20
    ("k_blocked", _conv(n=1, h=14, w=80, cin=33, cout=5, k=(8, 8), groups=1)),      # 7·73 = 511
    ("definition", _conv(n=1, h=15, w=71, cin=33, cout=5, k=(8, 8), groups=1)),     # 8·64 = 512
    # ... or any output size when the kernel is larger than the output (a weight gradient)
    ("k_blocked", _conv(n=5, h=20, w=40, cin=32, cout=8, k=(16, 16), groups=1)),    # 256 > 125
    ("row_blocked", _conv(n=5, h=20, w=40, cin=32, cout=8, k=(12, 16), groups=1)),  # 192 < 225
    # channel_major, a kernel larger than its output, ungrouped: long window rows (a kernel of
    # one row, or rows of _CM_LONG_ROW) or at most _CM_ROWS_PER_OUT GEMM rows per output
    # channel; one channel's im2col block (N·Ho·Wo·kh·kw) within _BLOCK
    ("channel_major", _conv(n=8, h=1, w=70, cin=16, cout=4, k=(1, 60), groups=1)),   # kh = 1
    ("definition", _conv(n=8, h=2, w=70, cin=16, cout=4, k=(2, 60), groups=1)),      # kh = 2
    ("channel_major", _conv(n=8, h=2, w=74, cin=16, cout=4, k=(2, 64), groups=1)),   # kw = 64
    ("definition", _conv(n=8, h=2, w=73, cin=16, cout=4, k=(2, 63), groups=1)),      # kw = 63
    ("channel_major", _conv(n=4, h=6, w=6, cin=8, cout=8, k=(4, 4), groups=1)),      # 36 ≤ 5·8
    ("definition", _conv(n=4, h=6, w=6, cin=8, cout=7, k=(4, 4), groups=1)),         # 36 > 5·7
    ("channel_major", _conv(n=1, h=41, w=28, cin=14, cout=29, k=(24, 21), groups=1)),  # 504 > 144
    ("flat_dots", _conv(n=1, h=41, w=28, cin=14, cout=4, k=(24, 21), groups=2)),   # grouped
    ("channel_major", _conv(n=129, h=1, w=180, cin=2, cout=4, k=(1, 100), groups=1)),  # 0.997·2^20
    ("row_blocked", _conv(n=130, h=1, w=180, cin=2, cout=4, k=(1, 100), groups=1)),    # 1.004·2^20
    # batch_inner, a kernel larger than its output, ungrouped: runs of Wo·N (N alone with a
    # column stride) at least _BI_MIN_RUN and twice kw, and its im2col (C·kh·kw·Ho·Wo·N) within
    # _BLOCK; else channel_major (or the definition) as before
    ("batch_inner", _conv(n=16, h=8, w=8, cin=64, cout=32, k=(8, 8), groups=1, lo=(1, 1),
                          hi=(1, 1))),                                  # the digits CNN's: 48
    ("channel_major", _conv(n=4, h=8, w=8, cin=64, cout=32, k=(8, 8), groups=1, lo=(1, 1),
                            hi=(1, 1))),                                # runs of 12
    ("batch_inner", _conv(n=24, h=4, w=4, cin=17, cout=5, k=(4, 4), groups=1)),     # 24
    ("channel_major", _conv(n=23, h=4, w=4, cin=17, cout=5, k=(4, 4), groups=1)),   # 23
    ("batch_inner", _conv(n=2, h=4, w=31, cin=4, cout=15, k=(3, 16), groups=1)),    # 32 = 2·16
    ("channel_major", _conv(n=2, h=4, w=32, cin=4, cout=15, k=(3, 17), groups=1)),  # 32 < 2·17
    ("batch_inner", _conv(n=16, h=8, w=8, cin=113, cout=32, k=(8, 8), groups=1, lo=(1, 1),
                          hi=(1, 1))),                                  # 0.993·2^20
    ("channel_major", _conv(n=16, h=8, w=8, cin=114, cout=32, k=(8, 8), groups=1, lo=(1, 1),
                            hi=(1, 1))),                                # 1.002·2^20
    ("batch_inner", _conv(n=24, h=8, w=8, cin=16, cout=32, k=(6, 6), groups=1, stride=(1, 2),
                          lo=(1, 1), hi=(1, 1))),                       # strided: runs of N
    ("definition", _conv(n=23, h=8, w=8, cin=16, cout=32, k=(6, 6), groups=1, stride=(1, 2),
                         lo=(1, 1), hi=(1, 1))),
    # _BLOCK and _MIN_ROWS for row blocks: more than one block, each of at least 512 rows
    ("row_blocked", _conv(n=8, h=24, w=24, cin=32, cout=8, k=(3, 3), groups=1)),    # 2 blocks
    ("definition", _conv(n=7, h=24, w=24, cin=32, cout=8, k=(3, 3), groups=1)),     # 1 block
    ("row_blocked", _conv(n=9, h=10, w=10, cin=256, cout=33, k=(3, 3), groups=1)),  # 72 > 64 rows
    ("definition", _conv(n=8, h=10, w=10, cin=256, cout=33, k=(3, 3), groups=1)),   # 64 rows
    # flat_shift: at most C/8 output channels, taps·O·reach at most _SHIFT_MAX
    ("flat_shift", _conv(n=2, h=12, w=12, cin=32, cout=4, k=(3, 3), groups=1)),
    ("definition", _conv(n=2, h=12, w=12, cin=31, cout=4, k=(3, 3), groups=1)),
    ("flat_gemm", _conv(n=2, h=12, w=12, cin=16, cout=2, k=(3, 3), groups=1)),
    ("flat_shift", _conv(n=1, h=10, w=800, cin=32, cout=2, k=(9, 9), groups=1)),   # 0.99·2^20
    ("row_blocked", _conv(n=1, h=10, w=810, cin=32, cout=2, k=(9, 9), groups=1)),  # 1.002·2^20
]


@pytest.mark.parametrize("expected,kw", CASES)
def test_case_takes_its_path(expected, kw):
    assert _taken(_geometry(**kw)) == expected


def test_row_blocks_cover_the_output_once():
    geo = _geometry(n=8, h=24, w=24, cin=32, cout=8, k=(3, 3), groups=1)
    blocks = im2col.row_blocks(geo)
    assert len(blocks) == 2
    cover = np.zeros((geo.n, geo.ho), dtype=int)
    for b0, b1, r0, r1 in blocks:
        cover[b0:b1, r0:r1] += 1
    np.testing.assert_array_equal(cover, 1)


# -- each path computes the definition ------------------------------------------------------

def _arrays(kw, rng):
    if kw.get("memory") == "cnhw":
        x = rng.standard_normal((kw["cin"], kw["n"], kw["h"], kw["w"])).transpose(1, 2, 3, 0)
    else:
        x = rng.standard_normal((kw["n"], kw["h"], kw["w"], kw["cin"]))
    w = rng.standard_normal((kw["cout"],) + kw["k"] + (kw["cin"] // kw["groups"],))
    return x, w


def _options(kw):
    return (kw.get("stride", (1, 1)), kw.get("lo", (0, 0)), kw.get("hi", (0, 0)),
            kw.get("dilation", (1, 1)), kw.get("input_dilation", (1, 1)), kw["groups"])


def _definition(x, w, opts, flip, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(P, "PATHS", ())
        return nb.conv(x, w, *opts, flip)


def _reference(x, w, opts, flip):
    """conv_reference.py's loops, NCHW, the input dilated explicitly."""
    stride, lo, hi, dilation, (dh, dw), groups = opts
    xc = x.transpose(0, 3, 1, 2)
    xd = np.zeros(xc.shape[:2] + ((xc.shape[2] - 1) * dh + 1, (xc.shape[3] - 1) * dw + 1))
    xd[:, :, ::dh, ::dw] = xc
    wc = w.transpose(0, 3, 1, 2)
    if flip:
        wc = wc[:, :, ::-1, ::-1]
    return conv2d_ref(xd, wc, None, stride, lo, hi, dilation, groups).transpose(0, 2, 3, 1)


# The paths' cases, with pads, dilations and flips on top (each is re-checked to take its path).
PATH_CASES = [
    ("stride_phases", _conv(n=2, h=6, w=7, cin=4, cout=6, k=(3, 2), groups=2, lo=(2, 1),
                           hi=(1, 0), dilation=(1, 2), input_dilation=(2, 3)), True),
    ("pointwise", _conv(n=2, h=5, w=6, cin=7, cout=9, k=(1, 1), groups=1), True),
    ("full_window", _conv(n=3, h=6, w=6, cin=8, cout=5, k=(3, 3), groups=1, stride=(2, 2),
                         dilation=(2, 2)), False),                # x has a row past the window
    ("flat_dots", _conv(n=2, h=8, w=11, cin=6, cout=3, k=(7, 9), groups=3, lo=(1, 0),
                       hi=(0, 2)), False),
    ("flat_dots", _conv(n=3, h=9, w=11, cin=3, cout=3, k=(6, 5), groups=3, stride=(2, 1),
                       dilation=(1, 2), lo=(1, 0), hi=(0, 2)), True),
    ("flat_taps", _conv(n=2, h=6, w=7, cin=8, cout=6, k=(3, 3), groups=2, lo=(1, 0), hi=(0, 2),
                       dilation=(2, 1)), True),
    ("flat_gemm", _conv(n=2, h=6, w=7, cin=12, cout=4, k=(3, 3), groups=2, lo=(1, 0), hi=(0, 2),
                       dilation=(2, 1)), False),
    ("strided_taps", _conv(n=2, h=9, w=7, cin=6, cout=2, k=(2, 2), groups=2, stride=(3, 2),
                          lo=(1, 0), hi=(0, 2)), True),
    ("k_blocked", _conv(n=1, h=14, w=80, cin=33, cout=5, k=(8, 8), groups=1), False),
    ("channel_major", _conv(n=1, h=41, w=28, cin=16, cout=40, k=(24, 21), groups=1, lo=(1, 0),
                           hi=(0, 2), memory="cnhw"), False),
    ("channel_major", _conv(n=4, h=9, w=11, cin=5, cout=12, k=(4, 6), groups=1, stride=(2, 1),
                           dilation=(1, 2), lo=(1, 0), hi=(0, 2), memory="cnhw"), True),
    ("channel_major", _conv(n=2, h=1, w=30, cin=4, cout=2, k=(1, 20), groups=1, lo=(0, 2),
                           hi=(0, 1), dilation=(1, 1), memory="cnhw"), True),   # runs 28 < 40
    ("batch_inner", _conv(n=12, h=9, w=11, cin=5, cout=6, k=(5, 8), groups=1, stride=(2, 1),
                          lo=(1, 0), hi=(0, 2), memory="cnhw"), True),
    ("batch_inner", _conv(n=12, h=9, w=11, cin=5, cout=6, k=(4, 5), groups=1,
                          dilation=(2, 2)), False),
    ("row_blocked", _conv(n=8, h=24, w=24, cin=32, cout=8, k=(3, 3), groups=1, lo=(1, 0),
                         hi=(0, 2)), True),
    ("row_blocked", _conv(n=4, h=30, w=30, cin=51, cout=12, k=(3, 3), groups=3, dilation=(2, 1)),
     False),
    ("flat_shift", _conv(n=2, h=9, w=10, cin=32, cout=2, k=(3, 2), groups=1, lo=(1, 0),
                        hi=(0, 2), dilation=(2, 1)), True),
    ("k_blocked", _conv(n=33, h=20, w=40, cin=2, cout=4, k=(16, 16), groups=1, lo=(1, 0),
                       hi=(0, 2)), False),
]


def test_path_cases_cover_every_path():
    assert {case[0] for case in PATH_CASES} == {p.name for p in P.PATHS}


@pytest.mark.parametrize("name,kw,flip", PATH_CASES)
def test_path_equals_definition_and_reference(numpy_backend, monkeypatch, name, kw, flip):
    geo = _geometry(**kw)
    assert _taken(geo) == name
    x, w = _arrays(kw, np.random.default_rng(len(PATH_CASES)))
    opts = _options(kw)
    y = nb.conv(x, w, *opts, flip)
    y_def = _definition(x, w, opts, flip, monkeypatch)
    np.testing.assert_allclose(y, y_def, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, _reference(x, w, opts, flip), rtol=1e-10, atol=1e-10)
    assert y.shape == (geo.n, geo.ho, geo.wo, geo.o) and y.dtype == np.float64


@pytest.mark.parametrize("memory", ["nhwc", "nchw", "broadcast"])
def test_pointwise_reads_every_memory_order(numpy_backend, monkeypatch, memory):
    """The 1×1 path's two GEMM layouts: NHWC memory, NCHW memory (what the ops layer hands over
    for NCHW tensors) and a broadcast (the gradient of a sum)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 1, 1, 4))
    if memory == "nhwc":
        x = rng.standard_normal((2, 3, 6, 4))
    elif memory == "nchw":
        x = rng.standard_normal((2, 4, 3, 6)).transpose(0, 2, 3, 1)
    else:
        x = np.broadcast_to(rng.standard_normal((1, 1, 6, 4)), (2, 3, 6, 4))
    opts = ((1, 1), (0, 0), (0, 0), (1, 1), (1, 1), 1)
    assert _taken(P.Geometry.of(x.shape, w.shape, *opts[:5], 1)) == "pointwise"
    y = nb.conv(x, w, *opts, False)
    np.testing.assert_allclose(y, _definition(x, w, opts, False, monkeypatch), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(y, np.einsum("nhwc,oc->nhwo", x, w[:, 0, 0]), rtol=1e-12)


@pytest.mark.parametrize("x_shape,w_shape,pads", [
    ((3, 6, 7, 20), (17, 3, 3, 20), (1, 1)),          # the definition: an NHWC GEMM result
    ((3, 6, 7, 4), (5, 3, 3, 4), (1, 1)),             # flat_gemm: channel-major already
    ((2, 9, 20), (6, 4, 20), (2,)),                   # 1-D, through the 2-D table
    ((2, 3, 4, 5, 6), (7, 2, 2, 2, 6), (0, 1, 1)),    # 3-D
])
def test_conv_results_are_channel_major(numpy_backend, monkeypatch, x_shape, w_shape, pads):
    """``conv`` returns (N, *S_out, O) as a view of (N, O, *S_out) memory, the order of lucid's
    channels-first tensors, with the values of ``conv_table`` (whatever order that left); a
    result of _CM_MAX values or more in the order its path left."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    r = x.ndim - 2
    opts = ((1,) * r, pads, pads, (1,) * r, (1,) * r, 1, False)
    y, y_any = nb.conv(x, w, *opts), nb.conv_table(x, w, *opts)
    assert np.moveaxis(y, -1, 1).flags.c_contiguous
    np.testing.assert_array_equal(y, y_any)
    monkeypatch.setattr(nb, "_CM_MAX", y.size)
    y_big = nb.conv(x, w, *opts)
    assert y_big.strides == y_any.strides
    np.testing.assert_array_equal(y_big, y_any)


def test_definition_against_reference(numpy_backend, monkeypatch):
    """The definition alone (no table) on random geometries: every option, input dilation with
    and without a stride, flips."""
    rng = np.random.default_rng(12)
    checked = 0
    while checked < 60:
        g = int(rng.choice([1, 2, 3]))
        kw = _conv(n=int(rng.integers(1, 3)), h=int(rng.integers(1, 8)), w=int(rng.integers(1, 8)),
                  cin=g * int(rng.integers(1, 3)), cout=g * int(rng.integers(1, 3)),
                  k=tuple(int(v) for v in rng.integers(1, 4, 2)), groups=g,
                  stride=tuple(int(v) for v in rng.integers(1, 3, 2)),
                  lo=tuple(int(v) for v in rng.integers(0, 3, 2)),
                  hi=tuple(int(v) for v in rng.integers(0, 3, 2)),
                  dilation=tuple(int(v) for v in rng.integers(1, 3, 2)),
                  input_dilation=tuple(int(v) for v in rng.integers(1, 4, 2)))
        geo = _geometry(**kw)
        if geo.ho < 1 or geo.wo < 1:
            continue
        x, w = _arrays(kw, rng)
        flip = bool(rng.integers(0, 2))
        opts = _options(kw)
        np.testing.assert_allclose(_definition(x, w, opts, flip, monkeypatch),
                                   _reference(x, w, opts, flip), rtol=1e-10, atol=1e-10,
                                   err_msg=str(kw))
        checked += 1


def _flat_geometries():
    """Stride-1 geometries for the flat paths' shared-pad layout: pads on each side from none
    to past the kernel's reach (an output wider than the padded row), dilations, 1-row and
    1-image inputs, and kernels as wide as the padded input."""
    def build(n, h, w, kh, kw, lo_h, lo_w, hi_h, hi_w, dh, dw, g, cg, og):
        return _conv(n=n, h=h, w=w, cin=g * cg, cout=g * og, k=(kh, kw), groups=g,
                     lo=(lo_h, lo_w), hi=(hi_h, hi_w), dilation=(dh, dw))
    small = st.integers(1, 4)
    pad = st.integers(0, 5)
    return st.builds(build, st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), small,
                     small, pad, pad, pad, pad, st.integers(1, 2), st.integers(1, 2),
                     st.integers(1, 3), st.integers(1, 2), st.integers(1, 2)).filter(
        lambda kw: min(_geometry(**kw).ho, _geometry(**kw).wo) >= 1)


@settings(max_examples=120, derandomize=True, deadline=None)
@given(kw=_flat_geometries(), block=st.sampled_from([1 << 20, 1]))
def test_flat_paths_share_pads_correctly(kw, block):
    """flat_taps and flat_gemm lay the planes out with shared zero pads (a read left of
    column 0 lands in the previous row's pad columns, above row 0 in the previous image's pad
    rows): called directly on any stride-1 geometry, also with one channel per block, each
    equals the direct reference."""
    geo = _geometry(**kw)
    x, w = _arrays(kw, np.random.default_rng(3))
    opts = _options(kw)
    want = _reference(x, w, opts, False)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(flat, "_TAP_BLOCK", block)
        m.setattr(flat, "_COL_BLOCK", block)
        for run in (flat.flat_taps, flat.flat_gemm):
            np.testing.assert_allclose(run(x, w, geo), want, rtol=1e-10, atol=1e-10,
                                       err_msg=f"{run.__name__} {kw}")


@pytest.mark.parametrize("block,min_rows", [(1 << 20, 512), (40, 1), (300, 1), (400, 1),
                                            (1000, 1), (3000, 1), (200, 10**6), (10, 10**6)])
def test_paths_with_forced_blocks_agree_with_reference(numpy_backend, monkeypatch, block,
                                                       min_rows):
    """The paths' blocking — im2col GEMMs blocked by output rows (forced here with a tiny block
    size: row bands, whole-image blocks, one block) or by kernel rows, channel-major im2col in
    column blocks, flat-plane taps in channel blocks (the last one short), flat-plane products
    in group blocks — and the stride phases, on inputs larger than the grid's."""
    monkeypatch.setattr(im2col, "_BLOCK", block)
    monkeypatch.setattr(im2col, "_MIN_ROWS", min_rows)
    for name in ("_COL_BLOCK", "_TAP_BLOCK", "_DOT_BLOCK"):
        monkeypatch.setattr(flat, name, block)
    rng = np.random.default_rng(11)
    for groups, cin, cout, k, s, d in [(1, 3, 4, (3, 2), (1, 1), (1, 2)),    # flat GEMM
                                       (2, 12, 4, (3, 3), (1, 1), (2, 1)),   # flat GEMM, g=2
                                       (2, 4, 6, (3, 3), (2, 1), (1, 2)),    # NHWC im2col
                                       (3, 12, 6, (2, 3), (1, 2), (2, 1)),   # im2col per group
                                       (4, 4, 8, (3, 3), (1, 1), (1, 1)),    # depthwise, x2
                                       (5, 10, 5, (2, 3), (1, 1), (2, 1)),   # flat taps, 2 ch
                                       (2, 6, 2, (2, 2), (3, 2), (1, 1)),    # taps, 3 ch/group
                                       (3, 6, 3, (7, 9), (1, 1), (1, 1)),    # flat dots
                                       (3, 3, 3, (6, 5), (2, 1), (1, 2)),    # flat dots, strided
                                       (2, 10, 4, (8, 6), (1, 1), (1, 2)),   # flat dots, 2 out
                                       (1, 2, 3, (7, 9), (1, 1), (1, 1)),    # big kernel: K
                                       (2, 10, 4, (4, 4), (4, 4), (1, 1))]:  # K blocks, grouped
        x = rng.standard_normal((3, cin, 9, 11))
        w = rng.standard_normal((cout, cin // groups) + k)
        lo, hi = (1, 0), (0, 2)
        y_ref = conv2d_ref(x, w, None, s, lo, hi, d, groups)
        y = nb.conv(x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1), s, lo, hi, d, (1, 1),
                      groups, False)
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), y_ref, rtol=1e-10, atol=1e-10)
        # Input dilation (the stride-phase path) against an explicitly dilated input.
        xd = np.zeros((3, cin, 17, 21))
        xd[:, :, ::2, ::2] = x
        y_ref = conv2d_ref(xd, w[:, :, ::-1, ::-1], None, (1, 1), lo, hi, d, groups)
        y = nb.conv(x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1), (1, 1), lo, hi, d,
                      (2, 2), groups, True)
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), y_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("per_block", [None, 2, 1])
def test_channel_major_reads_channel_outermost_memory_only(numpy_backend, monkeypatch,
                                                           per_block):
    """The weight-gradient path: on a view of (C, N, H, W) memory (what the autograd passes)
    it computes the definition, whole or a block of ``per_block`` channels at a time (the last
    block short); on any other layout it declines and the next path computes."""
    kw = _conv(n=2, h=12, w=11, cin=5, cout=8, k=(5, 7), groups=1, stride=(1, 2),
               dilation=(2, 1), lo=(1, 0), hi=(0, 2))
    geo = _geometry(**kw)
    assert _taken(geo) == "channel_major"
    if per_block is not None:
        monkeypatch.setattr(im2col, "_BLOCK", geo.rows * geo.kh * geo.kw * per_block)
    x, w = _arrays({**kw, "memory": "cnhw"}, np.random.default_rng(7))
    opts = _options(kw)
    y_def = _definition(x, w, opts, False, monkeypatch)
    y = im2col.channel_major(x, w, geo)
    assert y is not None
    np.testing.assert_allclose(y, y_def, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, _reference(x, w, opts, False), rtol=1e-10, atol=1e-10)
    for other in (np.ascontiguousarray(x), x.transpose(0, 3, 1, 2).copy().transpose(0, 2, 3, 1)):
        assert im2col.channel_major(other, w, geo) is None
        np.testing.assert_allclose(nb.conv(other, w, *opts, False), y_def, rtol=1e-10,
                                   atol=1e-10)
    # one input channel (a first layer's weight gradient): the batch axis has size 1, and its
    # stride says nothing about the memory order
    x1 = np.ascontiguousarray(x[:1].transpose(3, 0, 1, 2)).transpose(1, 2, 3, 0)
    x1 = np.lib.stride_tricks.as_strided(x1, x1.shape, (10**6,) + x1.strides[1:])
    geo1 = P.Geometry.of(x1.shape, w.shape, *opts[:5], 1)
    y1 = im2col.channel_major(x1, w, geo1)
    assert y1 is not None
    np.testing.assert_allclose(y1, _definition(x1, w, opts, False, monkeypatch), rtol=1e-10,
                               atol=1e-10)


def test_flat_products_decline_nonfinite_inputs(numpy_backend):
    """A NaN or inf in the input of a grouped weight-gradient-shaped conv only reaches the output
    pixels whose window covers it, as in the direct definition: the flat-plane products (which
    multiply the kernel's zero frame with every input value) decline, the next path computes."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 9, 11))
    w = rng.standard_normal((3, 2, 7, 9))
    lo, hi = (1, 0), (0, 2)
    xh, wh = x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1)
    geo = P.Geometry.of(xh.shape, wh.shape, (1, 1), lo, hi, (1, 1), (1, 1), 3)
    assert _taken(geo) == "flat_dots"
    for bad in (np.inf, np.nan):
        xb = x.copy()
        xb[1, 4, 8, 10] = bad
        y_ref = conv2d_ref(xb, w, None, (1, 1), lo, hi, (1, 1), 3)
        assert np.isfinite(y_ref).any() and not np.isfinite(y_ref).all()
        xbh = xb.transpose(0, 2, 3, 1)
        assert flat.flat_dots(xbh, wh, geo) is None
        y = nb.conv(xbh, wh, (1, 1), lo, hi, (1, 1), (1, 1), 3, False)
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), y_ref, rtol=1e-10, atol=1e-10)


def test_paths_have_notes():
    for p in P.PATHS + P3.PATHS_3D:
        assert p.note and callable(p.applies) and callable(p.run), p.name
    assert len({p.name for p in P.PATHS}) == len(P.PATHS)
    assert len({p.name for p in P3.PATHS_3D}) == len(P3.PATHS_3D)

"""The MLX backend: the contract's names on ``mlx.core``. Everything stays lazy; only ``eval`` and
``to_numpy`` synchronise with the device."""

from __future__ import annotations

import builtins
import contextlib
import math
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import mlx.core as mx
import numpy as np

from lucid import dtypes as _dtypes
from lucid.backends import launcher
from lucid.backends.contract import conv_output_size

name = "mlx"
lazy = True                    # results are graphs until evaluated
# MLX computes in float32 at most on the GPU and silently turns float64 input into float32, so
# float64 is refused at the door rather than downcast behind the user's back.
dtypes = _dtypes.supported(name)
_MX = {"float16": mx.float16, "bfloat16": mx.bfloat16, "float32": mx.float32,
       "int32": mx.int32, "int64": mx.int64,
       "uint32": mx.uint32, "uint64": mx.uint64,          # lucid.random's bits
       "bool": mx.bool_}
_NAMES = {v: k for k, v in _MX.items()}
# the NumPy types host data is converted to before MLX takes it (bfloat16: ml_dtypes')
_NPT = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32,
        "int32": np.int32, "int64": np.int64, "uint32": np.uint32, "uint64": np.uint64,
        "bool": np.bool_}
_BF16 = np.dtype(ml_dtypes.bfloat16)


def _check(dtype: str) -> Any:
    if dtype not in _MX:
        raise TypeError(f"dtype {dtype} is not supported on the mlx backend (supported: "
                        f"{sorted(dtypes)}); MLX has no float64 on the GPU — use float32, or the "
                        "numpy backend for float64")
    return _MX[dtype]


def asarray(data: Any, dtype: str | None = None) -> mx.array:
    if isinstance(data, mx.array):
        return data if dtype is None else data.astype(_check(dtype))
    if dtype is not None and type(data) in (int, float, bool):
        return mx.array(data, dtype=_check(dtype))        # a scalar: no NumPy round trip
    arr = np.asarray(data)
    if dtype is None:
        if arr.dtype == _BF16:
            dtype = "bfloat16"
        elif arr.dtype.kind == "f":
            dtype = "float16" if arr.dtype == np.float16 else "float32"
        elif arr.dtype.kind in "iu":
            dtype = "int32" if arr.dtype == np.int32 else "int64"
        elif arr.dtype.kind == "b":
            dtype = "bool"
        else:
            raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")
    target = _check(dtype)
    # the cast happens in NumPy (ml_dtypes for bfloat16: round to nearest even, NaN kept), so
    # both backends hold the same bits for the same host data
    return mx.array(arr.astype(_NPT[dtype], copy=False), dtype=target)


def device_type() -> str:
    """Where MLX computes by default: "gpu" with Metal or CUDA, "cpu" for the CPU build."""
    return "gpu" if mx.default_device().type == mx.DeviceType.gpu else "cpu"


def to_numpy(x: mx.array) -> np.ndarray:
    if x.dtype == mx.bfloat16:
        # NumPy's buffer protocol has no bfloat16: widen exactly, then narrow to ml_dtypes'
        return np.array(x.astype(mx.float32)).astype(ml_dtypes.bfloat16)
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


exp, log, sqrt, tanh, erf, cos, sin = mx.exp, mx.log, mx.sqrt, mx.tanh, mx.erf, mx.cos, mx.sin
bitwise_xor, right_shift = mx.bitwise_xor, mx.right_shift
add, subtract, multiply, divide = mx.add, mx.subtract, mx.multiply, mx.divide
power, maximum, equal, greater, where = mx.power, mx.maximum, mx.equal, mx.greater, mx.where
greater_equal = mx.greater_equal


def _reduced_shape(x, axis, keepdims):
    axes = range(x.ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    axes = {a % builtins.max(x.ndim, 1) for a in axes}
    return tuple(1 if i in axes else n for i, n in enumerate(x.shape)
                 if keepdims or i not in axes)


# Floating sums over more than SUM_BLOCK values are reduced in stages of at most SUM_BLOCK
# values each (see _staged_sum). MLX's CPU reduction accumulates each output sequentially, so a
# float32 sum of 2^19 values was off by ~1e-5..1e-3 relative; staged, every value passes through
# a few short sums and the result is as accurate as a pairwise sum (float32 rounding).
SUM_BLOCK = 256
_FLOATING = frozenset({mx.float16, mx.float32, mx.bfloat16})
_HALF = frozenset({mx.float16, mx.bfloat16})


def sum(x, axis=None, keepdims=False):
    size = x.size
    if size == 0:
        # MLX's CPU reduction of an empty array can hang (seen on 0.32: its loop then reads
        # uninitialised strides). The sum of nothing is 0, shaped as the reduction would be.
        return mx.zeros(_reduced_shape(x, axis, keepdims), dtype=x.dtype)
    if x.dtype in _HALF:
        # half precision accumulates in float32 and rounds once: the NumPy backend's rule
        return sum(x.astype(mx.float32), axis, keepdims).astype(x.dtype)
    if size > SUM_BLOCK and x.dtype in _FLOATING:    # (no reduction of fewer values is staged)
        axes = _axes_of(x, axis)
        count = 1
        for a in axes:
            count *= x.shape[a]
        if count > SUM_BLOCK:
            return _staged_sum(x, axes, keepdims)
    return mx.sum(x, axis=axis, keepdims=keepdims)


def _axes_of(x, axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    axes = [axis] if isinstance(axis, int) else axis
    return tuple(sorted({a % builtins.max(x.ndim, 1) for a in axes}))


def _block_of(n: int) -> int:
    """The block length that splits an axis of n > SUM_BLOCK values: a divisor of n in
    [SUM_BLOCK/4, SUM_BLOCK] when there is one (a free reshape), else SUM_BLOCK (zero-padded)."""
    for b in range(SUM_BLOCK, SUM_BLOCK // 4 - 1, -1):
        if n % b == 0:
            return b
    return SUM_BLOCK


def _staged_sum(x, axes, keepdims):
    """The sum over ``axes`` as a sequence of short reductions, the innermost axes first: each
    stage sums a group of reduced axes holding at most SUM_BLOCK values per output in all (a
    conv output's (H, W) at once), and an axis longer than SUM_BLOCK is split into blocks that
    are summed, then their sums summed. Each value passes through sums of at most SUM_BLOCK
    terms, so the rounding error grows with the number of stages (about log_SUM_BLOCK of the
    count), not with the count itself.

    x is made row-major first (free when it already is): a stage over the innermost axis of a
    transposed view — an NCHW view of a conv's NHWC output, as every BatchNorm after a conv
    sums — read its memory at stride C, and took 2x MLX's own reduction of the view (1.09 vs
    0.54 ms over (0, 2, 3) of a (64, 32, 8, 8) view; with the copy first, 0.20-0.25 ms)."""
    x = _row_major(x)
    pending = list(reversed(axes))                  # innermost first
    while pending:
        a = pending[0]
        while x.shape[a] > SUM_BLOCK:
            n = x.shape[a]
            b = _block_of(n)
            if n % b:                       # zeros add nothing: pad to whole blocks
                widths = [(0, 0)] * x.ndim
                widths[a] = (0, b - n % b)
                x = mx.pad(x, widths)
                n = x.shape[a]
            x = mx.sum(mx.unflatten(x, a, (n // b, b)), axis=a + 1)
        group, count = [], 1
        for b in pending:
            if count * x.shape[b] > SUM_BLOCK:
                break
            group.append(b)
            count *= x.shape[b]
        x = mx.sum(x, axis=tuple(group), keepdims=True)
        pending = pending[len(group):]
    # Every reduced axis now has length 1. unflatten and squeeze name no other axis's length,
    # so that a shapeless mx.export_function replays them at another batch size.
    return x if keepdims else mx.squeeze(x, axis=axes)


def max(x, axis=None, keepdims=False):
    if x.size == 0:          # an empty result (the shared code refuses empty reduced axes)
        return mx.zeros(_reduced_shape(x, axis, keepdims), dtype=x.dtype)
    return mx.max(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    if x.size == 0:          # likewise; MLX raises on an empty array
        return mx.zeros(_reduced_shape(x, axis, keepdims), dtype=mx.int64)
    return mx.argmax(x, axis=axis, keepdims=keepdims).astype(mx.int64)


def cumsum(x, axis):
    if x.dtype in _HALF:                       # a float32 running sum, as the NumPy backend's
        return mx.cumsum(x.astype(mx.float32), axis=axis).astype(x.dtype)
    return mx.cumsum(x, axis=axis)


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


def _scatter_stream(dtype, index) -> Any:
    """Where an array-index scatter of ``dtype`` runs: MLX's GPU scatter refuses 8-byte types
    (``mlx/ops.cpp``; mlx issues #1076, #4308), so for int64 those run on the CPU stream — on
    every device, so that Linux's CPU build takes the exact branch a Mac does. Slices and ints
    alone are a slice update, not a scatter, and stay where they are."""
    items = index if isinstance(index, tuple) else (index,)
    if dtype.size == 8 and any(isinstance(i, mx.array) for i in items):
        return mx.stream(mx.cpu)
    return contextlib.nullcontext()


def setitem(x, index, value):
    out = mx.array(x)          # a new array object: the caller's x is left untouched
    with _scatter_stream(x.dtype, index):
        out[index] = value
    return out


def scatter_add(shape, index, values):
    with _scatter_stream(values.dtype, index):
        return mx.zeros(shape, dtype=values.dtype).at[index].add(values)


def matmul(a, b):
    return mx.matmul(a, b)


def conv(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, groups, flip):
    """``mx.conv_general`` for every rank: x (N, *S, C), w (O, *k, C/g)."""
    k = w.shape[1:-1]
    out = [conv_output_size(*a) for a in zip(x.shape[1:-1], k, stride, pad_lo, pad_hi, dilation,
                                              input_dilation)]
    if (groups == 1 and not flip and all(di == 1 for di in input_dilation)
            and math.prod(k) > math.prod(out) and min(out) > 0):
        return _patches_matmul(x, w, stride, pad_lo, pad_hi, dilation, out)
    # The CPU conv reads a transposed view (our NCHW -> NHWC change) up to 1.5x slower than a
    # row-major copy of it. The copy is a flatten and a reshape (free for a row-major array),
    # not mx.contiguous, whose primitive mx.export_function cannot serialize (MLX 0.32).
    x, w = _row_major(x), _row_major(w)
    opts = {"stride": list(stride), "padding": (list(pad_lo), list(pad_hi)),
            "kernel_dilation": list(dilation), "input_dilation": list(input_dilation),
            "flip": flip}
    if groups > 1 and len(k) > 2:
        # MLX 0.32 convolves groups in 1-D and 2-D only: one conv_general per group.
        cg, og = x.shape[-1] // groups, w.shape[0] // groups
        return mx.concatenate([mx.conv_general(x[..., i * cg:(i + 1) * cg],
                                               w[i * og:(i + 1) * og], **opts)
                               for i in range(groups)], axis=-1)
    return mx.conv_general(x, w, groups=groups, **opts)


def _row_major(a):
    """a as a row-major array: a copy when a is a strided view, else a itself (as
    mx.contiguous, through Reshape primitives that every MLX transform and export knows). The
    leading size is left to MLX (-1), so that a shapeless export lets the batch vary."""
    return mx.reshape(mx.flatten(a), (-1, *a.shape[1:]))


def _patches_matmul(x, w, stride, pad_lo, pad_hi, dilation, out):
    """A kernel larger than its output (the shape of every weight gradient): gather the input
    patches with one strided view and multiply by the kernel in one GEMM — how MLX computes its
    own conv weight gradients, and far faster than ``conv_general`` with a large dilated kernel.
    Any rank: x (N, *S, C), w (O, *k, C) -> (N, *out, O)."""
    n, c = x.shape[0], x.shape[-1]
    o, k = w.shape[0], w.shape[1:-1]
    if any(pad_lo) or any(pad_hi):
        x = mx.pad(x, [(0, 0)] + list(zip(pad_lo, pad_hi)) + [(0, 0)])
    sp = x.shape[1:-1]
    # Row-major strides of the padded input (as_strided reads x as row-major memory).
    axis_stride = [c * math.prod(sp[a + 1:]) for a in range(len(sp))]
    patches = mx.as_strided(x, (n, *out, *k, c),
                            (math.prod(sp) * c, *(st * s for st, s in zip(axis_stride, stride)),
                             *(st * d for st, d in zip(axis_stride, dilation)), 1))
    kk = math.prod(k) * c
    cols = patches.reshape(n * math.prod(out), kk)
    # Both GEMM operands row-major: MLX's CPU GEMM runs several times slower on a transposed view.
    wmat = _row_major(w.reshape(o, kk).T)
    return (cols @ wmat).reshape(n, *out, o)


def eval(*arrays):
    mx.eval(*arrays)


def compile(pure_fn, shapeless=False):
    """mx.compile of a function of a list of arrays returning a list of arrays."""
    return mx.compile(pure_fn, shapeless=shapeless)


# -- collectives: mlx.core.distributed ----------------------------------------------------------
def init_distributed(backend):
    """MLX's global group. Without a launcher, not strict: MLX returns its singleton group of
    size 1 (every collective on it is the identity), so the same script runs on one process or
    many. Under a launcher that started several ranks, strict: a transport that cannot join
    (a backend name the launcher did not set up, "nccl" on a Mac) is an error, never a silent
    group of one per process."""
    n = launcher.world_size()
    if n <= 1:
        return mx.distributed.init(strict=False, backend=backend)
    where = (f"this process was launched as rank {launcher.rank()} of a world of size {n} "
             f"({launcher.described()})")
    try:
        group = mx.distributed.init(strict=True, backend=backend)
    except RuntimeError as e:
        raise RuntimeError(
            f"lucid.distributed.init(backend={backend!r}): MLX's {backend!r} distributed backend "
            f"could not join the launched world: {where}. MLX said: {e}. Use the backend the "
            "launcher set up (mlx.launch --backend ...; 'any' tries NCCL, ring, MPI, JACCL)") \
            from e
    if group.size() != n:
        raise RuntimeError(f"lucid.distributed.init(backend={backend!r}): MLX's group has size "
                           f"{group.size()}, but {where}")
    return group


def all_sum(x, group):
    return mx.distributed.all_sum(x, group=group)


# -- memory: MLX's allocator (lucid.memory) ------------------------------------------------------
def memory_active() -> int:
    return int(mx.get_active_memory())


def memory_peak() -> int:
    return int(mx.get_peak_memory())


def memory_cache() -> int:
    return int(mx.get_cache_memory())


def memory_reset_peak() -> None:
    mx.reset_peak_memory()


def memory_clear_cache() -> None:
    mx.clear_cache()


def memory_set_cache_limit(limit: int) -> int:
    return int(mx.set_cache_limit(limit))


def memory_set_memory_limit(limit: int) -> int:
    return int(mx.set_memory_limit(limit))


# -- devices (lucid.selfcheck) -------------------------------------------------------------------
def devices() -> list[str]:
    """The devices MLX can compute on here: "cpu" always, "gpu" with Metal or CUDA."""
    cuda = getattr(mx, "cuda", None)
    gpu = mx.metal.is_available() or (cuda is not None and cuda.is_available())
    return ["cpu", "gpu"] if gpu else ["cpu"]


def on_device(name: str) -> Any:
    """Context manager: MLX ops made inside it run on device ``name`` ("cpu" or "gpu")."""
    return mx.stream(mx.gpu if name == "gpu" else mx.cpu)


def describe() -> dict[str, str]:
    """MLX's version and what it computes on, for reports."""
    info: dict[str, str] = {"mlx": str(getattr(mx, "__version__", "?"))}
    cuda = getattr(mx, "cuda", None)
    info["gpu"] = ("metal" if mx.metal.is_available() else
                   "cuda" if cuda is not None and cuda.is_available() else "none")
    try:
        dev = mx.device_info()
        info["device_name"] = str(dev.get("device_name", ""))
        if "memory_size" in dev:
            info["memory_gb"] = f"{int(dev['memory_size']) / 2**30:.0f}"
    except (AttributeError, RuntimeError):
        pass
    return info

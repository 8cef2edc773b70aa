"""Pooling of every rank (1, 2 or 3 spatial axes, the last axes of the input): strided window
taps, then a max or a sum over them."""

from __future__ import annotations

import itertools
from typing import Any

from lucid.creation import ones
from lucid.functions import concatenate
from lucid.nn import conv_args as A
from lucid.nn.functional.padding import pad
from lucid.ops.pool import MaxPoolWindows
from lucid.tensor import Tensor, apply

Ints = tuple[int, ...]


def _pool_geometry(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, int]:
    """(output size, extra high-side padding) along one axis, PyTorch's rule for ceil_mode: the
    last window must start inside the input or the low padding."""
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise ValueError(f"pooling window {k} (dilation {d}) is larger than the padded input "
                         f"{n + 2 * p}")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
    return out, extra


def _taps(x: Tensor, k: Ints, s: Ints, d: Ints, out: Ints) -> Tensor:
    """Stack of the prod(k) strided views of the last len(k) axes: (prod(k), N, C, *out)."""
    views = []
    for offs in itertools.product(*(range(kk) for kk in k)):
        index = tuple(slice(o * dd, o * dd + ss * (m - 1) + 1, ss)
                      for o, dd, ss, m in zip(offs, d, s, out))
        views.append(x[(Ellipsis,) + index])
    return concatenate([v.unsqueeze(0) for v in views], 0)


def _widths(lo: Ints, hi: Ints) -> tuple[int, ...]:
    """F.pad's flat widths (last axis first) from per-axis lo/hi."""
    w: tuple[int, ...] = ()
    for a, b in zip(reversed(lo), reversed(hi)):
        w += (a, b)
    return w


def _pool_args(x: Tensor, rank: int, kernel_size: Any, stride: Any, padding: Any,
               dilation: Any) -> tuple[Ints, Ints, Ints, Ints]:
    k = A.ntuple(kernel_size, "kernel_size", rank)
    s = k if stride is None or stride == () or stride == [] else A.ntuple(stride, "stride", rank)
    p = A.ntuple(padding, "padding", rank, minimum=0)
    d = A.ntuple(dilation, "dilation", rank)
    for pp, kk in zip(p, k):
        if pp > kk // 2:
            raise ValueError(f"pad {p} should be at most half of the kernel size {k}")
    if not isinstance(x, Tensor):
        raise TypeError(f"pooling input must be a lucid Tensor, got {type(x).__name__}")
    if x.ndim not in (rank + 1, rank + 2):
        layout = A.layout(rank, False)
        raise ValueError(f"{rank}-D pooling expects {layout} input, got shape {x.shape}")
    return k, s, p, d


def _max_pool(rank: int, x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
              ceil_mode: bool) -> Tensor:
    k, s, p, d = _pool_args(x, rank, kernel_size, stride, padding, dilation)
    geo = [_pool_geometry(n, kk, ss, pp, dd, ceil_mode)
           for n, kk, ss, pp, dd in zip(x.shape[-rank:], k, s, p, d)]
    out, extra = tuple(g[0] for g in geo), tuple(g[1] for g in geo)
    if s == k and p == (0,) * rank and d == (1,) * rank and extra == (0,) * rank:
        # non-overlapping windows (the usual 2x2 / 2): the windows that fit, as blocks
        fit = tuple(o * kk for o, kk in zip(out, k))
        xp = x if tuple(x.shape[-rank:]) == fit else x[(Ellipsis,) + tuple(map(slice, fit))]
    else:
        xp = pad(x, _widths(p, tuple(a + e for a, e in zip(p, extra))), value=float("-inf"))
    return apply(MaxPoolWindows, xp, k=k, s=s, d=d, out=out)


def _avg_pool(rank: int, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
              ceil_mode: bool, count_include_pad: bool) -> Tensor:
    k, s, p, d = _pool_args(x, rank, kernel_size, stride, padding, 1)
    geo = [_pool_geometry(n, kk, ss, pp, 1, ceil_mode)
           for n, kk, ss, pp in zip(x.shape[-rank:], k, s, p)]
    out, extra = tuple(g[0] for g in geo), tuple(g[1] for g in geo)
    if s == k and not any(p) and not any(extra):
        return _block_mean(x, k, out)
    hi = tuple(a + e for a, e in zip(p, extra))
    xp = pad(x, _widths(p, hi))
    total = _taps(xp, k, s, d, out).sum(axis=0)
    if not (any(extra) or (not count_include_pad and any(p))):
        size = 1
        for kk in k:
            size *= kk
        return total / float(size)
    sizes = x.shape[-rank:]
    if count_include_pad:
        full = ones(*(n + 2 * pp for n, pp in zip(sizes, p)), device=x.backend, dtype=x.dtype)
        mask = pad(full, _widths((0,) * rank, extra))
    else:
        mask = pad(ones(*sizes, device=x.backend, dtype=x.dtype), _widths(p, hi))
    count = _taps(mask, k, s, d, out).sum(axis=0)
    return total / count


def _block_mean(x: Tensor, k: Ints, out: Ints) -> Tensor:
    """Average pooling with non-overlapping windows (stride = kernel, no padding): the windows
    are a reshape of x, (..., o1, k1, o2, k2, ...), averaged over the k axes. No slices or
    pads on the way (except the crop of a ragged edge), which also keeps it exportable with a
    batch axis that varies (``lucid.export``)."""
    rank = len(k)
    span = tuple(o * kk for o, kk in zip(out, k))
    if x.shape[-rank:] != span:
        x = x[(Ellipsis,) + tuple(slice(0, n) for n in span)]
    lead = x.shape[:-rank]
    windows = x.reshape(lead + tuple(v for o, kk in zip(out, k) for v in (o, kk)))
    return windows.mean(axis=tuple(len(lead) + 2 * i + 1 for i in range(rank)))


def _adaptive_axis(x: Tensor, axis: int, out: int) -> Tensor:
    """Adaptive mean along one axis: bins start = floor(i*n/out), end = ceil((i+1)*n/out)."""
    n = x.shape[axis]
    if n % out == 0:
        shape = x.shape[:axis] + (out, n // out) + x.shape[axis + 1:]
        return x.reshape(shape).mean(axis=axis + 1)
    pre = (slice(None),) * axis
    bins = [x[pre + (slice((i * n) // out, -(-((i + 1) * n) // out)),)].mean(
        axis=axis, keepdims=True) for i in range(out)]
    return concatenate(bins, axis)


def _adaptive_avg_pool(rank: int, x: Tensor, output_size: Any) -> Tensor:
    """Mean over the adaptive bins of each of the last ``rank`` axes (PyTorch's bins). A box
    mean is the mean of means along each axis in turn, so the axes are pooled one at a time."""
    if not isinstance(x, Tensor):
        raise TypeError(f"pooling input must be a lucid Tensor, got {type(x).__name__}")
    if x.ndim not in (rank + 1, rank + 2):
        raise ValueError(f"{rank}-D adaptive pooling expects {A.layout(rank, False)} input, "
                         f"got shape {x.shape}")
    sizes = x.shape[-rank:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != rank:
            raise ValueError(f"output_size must be an int or {rank} sizes, got {output_size!r}")
        want = tuple(n if o is None else o for o, n in zip(output_size, sizes))
    else:
        want = (output_size,) * rank
    want = A.ntuple(want, "output_size", rank)
    for i, o in enumerate(want):
        x = _adaptive_axis(x, x.ndim - rank + i, o)
    return x


def max_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max over windows of (N, C, L) or (C, L); as ``max_pool2d`` along one axis."""
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max over windows of (N, C, H, W); padding counts as -inf; the gradient goes to one maximum
    per window."""
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max over windows of (N, C, D, H, W) or (C, D, H, W)."""
    return _max_pool(3, x, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, L) or (C, L); as ``avg_pool2d`` along one axis."""
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, H, W). The divisor counts zero padding when count_include_pad;
    window parts beyond the padded input (ceil_mode) never count."""
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, D, H, W) or (C, D, H, W)."""
    return _avg_pool(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def adaptive_avg_pool1d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over adaptive bins of the last axis of (N, C, L) or (C, L)."""
    return _adaptive_avg_pool(1, x, output_size)


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over the adaptive bins start = floor(i*H/out), end = ceil((i+1)*H/out) (PyTorch)."""
    return _adaptive_avg_pool(2, x, output_size)


def adaptive_avg_pool3d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over adaptive bins of the last three axes of (N, C, D, H, W) or (C, D, H, W)."""
    return _adaptive_avg_pool(3, x, output_size)

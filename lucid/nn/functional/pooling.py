"""Pooling: strided window taps, then a max or a sum over them."""

from __future__ import annotations

from typing import Any

from lucid.creation import ones
from lucid.functions import concatenate
from lucid.nn import conv_args as A
from lucid.nn.functional.padding import pad
from lucid.ops.pool import MaxOverTaps, MaxPoolBlocks
from lucid.tensor import Tensor, apply


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


def _taps(x: Tensor, k, s, d, out) -> Tensor:
    """Stack of the kh*kw strided views: (kh*kw, N, C, Ho, Wo)."""
    views = []
    for a in range(k[0]):
        for b in range(k[1]):
            r, c = a * d[0], b * d[1]
            views.append(x[..., r:r + s[0] * (out[0] - 1) + 1:s[0],
                           c:c + s[1] * (out[1] - 1) + 1:s[1]])
    return concatenate([v.unsqueeze(0) for v in views], 0)


def _pool_args(x, kernel_size, stride, padding, dilation):
    k = A.pair(kernel_size, "kernel_size")
    s = k if stride is None else A.pair(stride, "stride")
    p = A.pair(padding, "padding", minimum=0)
    d = A.pair(dilation, "dilation")
    for pp, kk in zip(p, k):
        if pp > kk // 2:
            raise ValueError(f"pad {p} should be at most half of the kernel size {k}")
    if x.ndim not in (3, 4):
        raise ValueError(f"pooling expects (N, C, H, W) or (C, H, W) input, got shape {x.shape}")
    return k, s, p, d


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max over windows of (N, C, H, W); padding counts as -inf; the gradient goes to one maximum
    per window."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, dilation)
    (ho, eh), (wo, ew) = (_pool_geometry(n, kk, ss, pp, dd, ceil_mode) for n, kk, ss, pp, dd in
                          zip(x.shape[-2:], k, s, p, d))
    if s == k and p == (0, 0) and d == (1, 1) and eh == ew == 0:
        # non-overlapping windows (the usual 2x2 / 2): the windows are a reshape of the input
        h, w = ho * k[0], wo * k[1]
        xc = x if x.shape[-2:] == (h, w) else x[..., :h, :w]
        return apply(MaxPoolBlocks, xc, k=k)
    xp = pad(x, (p[1], p[1] + ew, p[0], p[0] + eh), value=float("-inf"))
    return apply(MaxOverTaps, _taps(xp, k, s, d, (ho, wo)))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, H, W). The divisor counts zero padding when count_include_pad;
    window parts beyond the padded input (ceil_mode) never count."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, 1)
    (ho, eh), (wo, ew) = (_pool_geometry(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in
                          zip(x.shape[-2:], k, s, p))
    xp = pad(x, (p[1], p[1] + ew, p[0], p[0] + eh))
    total = _taps(xp, k, s, d, (ho, wo)).sum(axis=0)
    if not (eh or ew or (not count_include_pad and any(p))):
        return total / float(k[0] * k[1])
    h, w = x.shape[-2:]
    if count_include_pad:
        full = ones(h + 2 * p[0], w + 2 * p[1], device=x.backend, dtype=x.dtype)
        mask = pad(full, (0, ew, 0, eh))
    else:
        mask = pad(ones(h, w, device=x.backend, dtype=x.dtype), (p[1], p[1] + ew, p[0], p[0] + eh))
    count = _taps(mask, k, s, d, (ho, wo)).sum(axis=0)
    return total / count


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over the adaptive bins start = floor(i*H/out), end = ceil((i+1)*H/out) (PyTorch)."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    h, w = x.shape[-2:]
    oh, ow = (h if o is None else o for o in output_size)
    if h % oh == 0 and w % ow == 0:
        lead = x.shape[:-2]
        return x.reshape(lead + (oh, h // oh, ow, w // ow)).mean(axis=(-3, -1))
    rows = []
    for i in range(oh):
        r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        cols = [x[..., r0:r1, (j * w) // ow:-(-((j + 1) * w) // ow)].mean(axis=(-2, -1))
                for j in range(ow)]
        rows.append(concatenate([c.unsqueeze(-1) for c in cols], -1).unsqueeze(-2))
    return concatenate(rows, -2)

"""Pooling reductions over a leading axis of stacked window taps (K, ...)."""

from __future__ import annotations

import itertools
from typing import Any

from lucid.autograd import Function


def first_max(be, taps):
    """(max over axis 0, index of its first occurrence) of taps (K, ...), both of shape (...);
    a NaN counts as the maximum, as in argmax. The index is a chain of K - 1 selects on
    contiguous taps: NumPy's argmax over a leading (or a short trailing) axis copies and loops
    per window, ~5x slower on a CNN's pooling."""
    k = taps.shape[0]
    m = be.max(taps, axis=0)
    idx = be.full(tuple(m.shape), k - 1, "int64")
    nan_wins = be.full((), True, "bool")
    for i in range(k - 2, -1, -1):
        t = be.getitem(taps, (i,))
        hit = be.where(be.equal(t, t), be.equal(t, m), nan_wins)      # t is NaN: it wins
        idx = be.where(hit, be.full((), i, "int64"), idx)
    return m, idx


def _route(be, g, idx, k, dtype):
    """(K, ...) gradient: g (...) at each window's winning tap idx (...), zero elsewhere."""
    ks = be.reshape(be.arange(0, k, 1, "int64"), (k,) + (1,) * g.ndim)
    onehot = be.astype(be.equal(ks, be.reshape(idx, (1,) + tuple(idx.shape))), dtype)
    return be.multiply(onehot, be.reshape(g, (1,) + tuple(g.shape)))


class MaxPoolWindows(Function):
    """Max pooling of x (..., *S) over windows of kernel k, stride s, dilation d along its last
    len(k) axes, with ``out`` windows per axis (x is already padded). The K = prod(k) taps,
    strided views of x, are stacked (K, ..., *out) and reduced as in ``first_max``: the gradient
    goes to one winner per window, the first maximum, as in PyTorch (not shared between ties).

    The backward puts each tap's routed gradient back without a scatter per tap into a zero
    array of x's size: x is viewed as s_1·s_2·… phase planes (plane r holds positions
    r + s·i), tap offset o lands in plane (o·d) mod s shifted by (o·d) div s, so each tap is
    one pad of a window-sized array added into its plane, and the planes are interleaved back
    with one transpose."""

    def forward(self, x, k=(), s=(), d=(), out=()):
        be = self.be
        r = len(k)
        self.offsets = list(itertools.product(*(range(kk) for kk in k)))
        taps = []
        for offs in self.offsets:
            index = (Ellipsis,) + tuple(slice(o * dd, o * dd + ss * (m - 1) + 1, ss)
                                        for o, dd, ss, m in zip(offs, d, s, out))
            v = be.getitem(x, index)
            taps.append(be.reshape(v, (1,) + tuple(v.shape)))
        m, self.idx = first_max(be, be.concatenate(taps, 0))
        self.meta = (tuple(x.shape), r, tuple(s), tuple(d), be.dtype_name(x))
        return m

    def backward(self, g):
        be = self.be
        shape, r, s, d, dtype = self.meta
        lead, out, size = tuple(g.shape[:-r]), tuple(g.shape[-r:]), shape[-r:]
        planes = tuple(-(-n // ss) for n, ss in zip(size, s))       # rows of each phase plane
        zero = be.full((), 0, dtype)
        acc: dict[tuple[int, ...], Any] = {}
        for i, offs in enumerate(self.offsets):
            gi = be.where(be.equal(self.idx, be.full((), i, "int64")), g, zero)
            phase = tuple(o * dd % ss for o, dd, ss in zip(offs, d, s))
            shift = tuple(o * dd // ss for o, dd, ss in zip(offs, d, s))
            widths = ((0, 0),) * len(lead) + tuple(
                (q, p - q - m) for q, p, m in zip(shift, planes, out))
            part = be.pad(gi, widths, 0.0)
            acc[phase] = part if phase not in acc else be.add(acc[phase], part)
        # (s_1, s_2, ..., *lead, *planes) -> (*lead, p_1, s_1, p_2, s_2, ...) -> x's shape
        full = be.full(lead + planes, 0, dtype)
        stacked = be.concatenate(
            [be.reshape(acc.get(ph, full), (1,) + lead + planes)
             for ph in itertools.product(*(range(ss) for ss in s))], 0)
        stacked = be.reshape(stacked, s + lead + planes)
        nl = len(lead)
        perm = tuple(range(r, r + nl)) + tuple(a for j in range(r) for a in (r + nl + j, j))
        inter = be.reshape(be.transpose(stacked, perm),
                           lead + tuple(p * ss for p, ss in zip(planes, s)))
        return be.getitem(inter, (Ellipsis,) + tuple(slice(0, n) for n in size))


class MaxPoolBlocks(Function):
    """Max pooling with non-overlapping windows (stride = kernel, no padding, no dilation) of
    x (..., kh·Ho, kw·Wo): the windows are a reshape of x, their taps moved to a leading axis by
    one transpose (a single copy), reduced as in MaxOverTaps; the gradient goes back through the
    same transpose, without per-tap copies or scatters. The first maximum of a window wins."""

    def forward(self, x, k=(2, 2)):
        be = self.be
        *lead, h, w = x.shape
        kh, kw = k
        ho, wo = h // kh, w // kw
        n = len(lead)
        blocks = be.reshape(x, tuple(lead) + (ho, kh, wo, kw))
        perm = (n + 1, n + 3) + tuple(range(n)) + (n, n + 2)         # (kh, kw, ..., Ho, Wo)
        taps = be.reshape(be.transpose(blocks, perm), (kh * kw,) + tuple(lead) + (ho, wo))
        m, self.idx = first_max(be, taps)
        self.meta = (tuple(lead), ho, wo, kh, kw, perm, be.dtype_name(x))
        return m

    def backward(self, g):
        be = self.be
        lead, ho, wo, kh, kw, perm, dtype = self.meta
        gw = be.reshape(_route(be, g, self.idx, kh * kw, dtype), (kh, kw) + lead + (ho, wo))
        inverse = [0] * len(perm)
        for i, a in enumerate(perm):
            inverse[a] = i
        return be.reshape(be.transpose(gw, tuple(inverse)), lead + (ho * kh, wo * kw))

"""Pooling reductions over a leading axis of stacked window taps (K, ...)."""

from __future__ import annotations

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


class MaxOverTaps(Function):
    """max over axis 0; the gradient goes to one winner per window — the first maximum, as in
    PyTorch's max pooling (not shared between ties)."""

    def forward(self, taps):
        be = self.be
        m, self.idx = first_max(be, taps)
        self.k = taps.shape[0]
        self.dtype = be.dtype_name(taps)
        return m

    def backward(self, g):
        return _route(self.be, g, self.idx, self.k, self.dtype)


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

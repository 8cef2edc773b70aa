"""Pooling reductions over a leading axis of stacked window taps (K, ...)."""

from __future__ import annotations

from lucid.autograd import Function


class MaxOverTaps(Function):
    """max over axis 0; the gradient goes to one winner per window — the first maximum, as in
    PyTorch's max pooling (not shared between ties)."""

    def forward(self, taps):
        be = self.be
        idx = be.argmax(taps, axis=0, keepdims=True)
        self.k = taps.shape[0]
        self.idx = idx
        self.dtype = be.dtype_name(taps)
        return be.max(taps, axis=0)

    def backward(self, g):
        be = self.be
        ks = be.reshape(be.arange(0, self.k, 1, "int64"), (self.k,) + (1,) * (g.ndim))
        onehot = be.astype(be.equal(ks, self.idx), self.dtype)
        return be.multiply(onehot, be.reshape(g, (1,) + tuple(g.shape)))


class MaxPoolBlocks(Function):
    """Max pooling with non-overlapping windows (stride = kernel, no padding, no dilation) of
    x (..., kh·Ho, kw·Wo): the windows are a reshape of x, reduced over their last axis (a
    contiguous argmax), and the gradient goes back through the same reshape, without the taps'
    copies and scatters. The first maximum of a window wins, as in MaxOverTaps."""

    def forward(self, x, k=(2, 2)):
        be = self.be
        *lead, h, w = x.shape
        kh, kw = k
        ho, wo = h // kh, w // kw
        n = len(lead)
        blocks = be.reshape(x, tuple(lead) + (ho, kh, wo, kw))
        perm = tuple(range(n)) + (n, n + 2, n + 1, n + 3)           # (..., Ho, Wo, kh, kw)
        win = be.reshape(be.transpose(blocks, perm), tuple(lead) + (ho, wo, kh * kw))
        self.idx = be.argmax(win, axis=-1, keepdims=True)
        self.meta = (tuple(lead), ho, wo, kh, kw, perm, be.dtype_name(x))
        return be.max(win, axis=(n + 2,))

    def backward(self, g):
        be = self.be
        lead, ho, wo, kh, kw, perm, dtype = self.meta
        ks = be.reshape(be.arange(0, kh * kw, 1, "int64"), (1,) * (len(lead) + 2) + (kh * kw,))
        onehot = be.astype(be.equal(ks, self.idx), dtype)
        gw = be.multiply(onehot, be.reshape(g, tuple(g.shape) + (1,)))
        gw = be.reshape(gw, lead + (ho, wo, kh, kw))
        inverse = [0] * len(perm)
        for i, a in enumerate(perm):
            inverse[a] = i
        return be.reshape(be.transpose(gw, tuple(inverse)), lead + (ho * kh, wo * kw))

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

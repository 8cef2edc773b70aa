"""Reductions, running sums and the numerically stable softmax family. Axes arrive already
checked and normalised (``lucid.ops.axes``): a tuple of non-negative axes, or one axis."""

from __future__ import annotations

from lucid.autograd import Function


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, x, axis=None, keepdims=False):
        self.shape = x.shape
        self.axes = axis
        return self.be.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        be = self.be
        return be.broadcast_to(be.reshape(g, _kept_shape(self.shape, self.axes)), self.shape)


class Max(Function):
    """Max over axes; the gradient is shared evenly between tied maxima (PyTorch's amax rule)."""

    def forward(self, x, axis=None, keepdims=False):
        be = self.be
        self.axes = axis
        m = be.max(x, axis=axis, keepdims=True)
        self.save_for_backward(x, m)
        return m if keepdims else be.reshape(m, tuple(
            n for i, n in enumerate(x.shape) if i not in self.axes))

    def backward(self, g):
        x, m = self.saved
        be = self.be
        mask = be.astype(be.equal(x, m), be.dtype_name(x))
        count = be.sum(mask, axis=self.axes, keepdims=True)
        g = be.reshape(g, m.shape)
        return be.multiply(mask, be.divide(g, count))


class CumSum(Function):
    """y[i] = x[0] + ... + x[i] along one axis; the gradient is the reversed running sum."""

    def forward(self, x, axis=0):
        self.axis = axis
        return self.be.cumsum(x, axis)

    def backward(self, g):
        be = self.be
        flip = (slice(None),) * self.axis + (slice(None, None, -1),)
        return be.getitem(be.cumsum(be.getitem(g, flip), self.axis), flip)


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        be = self.be
        self.axis = axis
        shifted = be.subtract(x, be.max(x, axis=axis, keepdims=True))
        out = be.subtract(shifted, be.log(be.sum(be.exp(shifted), axis=axis, keepdims=True)))
        self.save_for_backward(out)
        return out

    def backward(self, g):
        be = self.be
        soft = be.exp(self.saved[0])
        return be.subtract(g, be.multiply(soft, be.sum(g, axis=self.axis, keepdims=True)))


class Softmax(Function):
    def forward(self, x, axis=-1):
        be = self.be
        self.axis = axis
        e = be.exp(be.subtract(x, be.max(x, axis=axis, keepdims=True)))
        out = be.divide(e, be.sum(e, axis=axis, keepdims=True))
        self.save_for_backward(out)
        return out

    def backward(self, g):
        be = self.be
        s = self.saved[0]
        gs = be.multiply(g, s)
        return be.subtract(gs, be.multiply(s, be.sum(gs, axis=self.axis, keepdims=True)))

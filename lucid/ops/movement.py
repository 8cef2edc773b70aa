"""Shape and indexing Functions: their backward only moves gradients back into place."""

from __future__ import annotations

from lucid import indexing
from lucid.autograd import Function, unbroadcast


class Reshape(Function):
    def forward(self, x, shape=None):
        self.shape = x.shape
        return self.be.reshape(x, shape)

    def backward(self, g):
        return self.be.reshape(g, self.shape)


class Transpose(Function):
    def forward(self, x, axes=None):
        self.axes = axes
        return self.be.transpose(x, axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return self.be.transpose(g, tuple(inverse))


class BroadcastTo(Function):
    def forward(self, x, shape=None):
        self.shape = x.shape
        return self.be.broadcast_to(x, shape)

    def backward(self, g):
        return unbroadcast(self.be, g, self.shape)


class Concatenate(Function):
    def forward(self, *xs, axis=0):
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return self.be.concatenate(xs, axis)

    def backward(self, g):
        out, start = [], 0
        for n in self.sizes:
            index = (slice(None),) * (self.axis % g.ndim) + (slice(start, start + n),)
            out.append(self.be.getitem(g, index))
            start += n
        return tuple(out)


class GetItem(Function):
    """x[index]; the backward scatters into zeros, accumulating repeated integer indices.

    ``guards`` lists the index arrays whose values could not be checked (see lucid.indexing):
    their out-of-range entries read a safe position, and a floating result is NaN there."""

    def forward(self, x, index=None, guards=()):
        be = self.be
        self.shape = x.shape
        if not guards:
            self.index = index
            return be.getitem(x, index)
        self.index, poison = indexing.safe_index(be, index, guards)
        out = be.getitem(x, self.index)
        dtype = be.dtype_name(x)
        if dtype.startswith("float"):
            src = indexing.poison_source(be, x.shape, index, guards, dtype)
            out = be.add(out, be.getitem(src, poison))
        return out

    def backward(self, g):
        return self.be.scatter_add(self.shape, self.index, g)


class Pad(Function):
    """Constant padding with widths ((lo, hi), ...) per axis, each >= 0."""

    def forward(self, x, widths=None, value=0.0):
        self.index = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return self.be.pad(x, widths, value)

    def backward(self, g):
        return self.be.getitem(g, self.index)

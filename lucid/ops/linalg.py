"""Matrix product with NumPy's batch rules (both inputs at least 2-D; 1-D is handled by Tensor)."""

from __future__ import annotations

from lucid.autograd import Function, unbroadcast


def _swap_last(be, x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return be.transpose(x, axes)


class MatMul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.be.matmul(a, b)

    def backward(self, g):
        a, b = self.saved
        be = self.be
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(be, be.matmul(g, _swap_last(be, b)), a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(be, be.matmul(_swap_last(be, a), g), b.shape)
        return ga, gb


class Linear(Function):
    """y = x @ w.T (+ b): x (..., in), w (out, in), b (out,). One node instead of a transpose,
    a product and a broadcast add: fewer graph nodes and backend calls per layer."""

    def forward(self, x, w, b=None):
        be = self.be
        self.save_for_backward(x, w)
        y = be.matmul(x, be.transpose(w, (1, 0)))
        return y if b is None else be.add(y, b)

    def backward(self, g):
        x, w = self.saved
        be = self.be
        needs = self.needs_input_grad
        gx = be.matmul(g, w) if needs[0] else None
        gw = gb = None
        if needs[1] or (len(needs) > 2 and needs[2]):
            g2 = be.reshape(g, (-1, g.shape[-1])) if g.ndim != 2 else g
            if needs[1]:
                x2 = be.reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
                gw = be.matmul(be.transpose(g2, (1, 0)), x2)
            if len(needs) > 2 and needs[2]:
                gb = be.sum(g2, axis=(0,))
        return (gx, gw) if len(needs) == 2 else (gx, gw, gb)

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

"""Batch normalisation in training mode as one Function with its closed-form gradient (instead
of a mean, a variance and the normalisation as a dozen nodes)."""

from __future__ import annotations

from lucid.autograd import Function


class BatchNormTrain(Function):
    """y = (x - mean) / sqrt(var + eps) · w + b per channel of x (N, C, ...), with the batch's
    mean and (biased) variance over every axis but 1; w and b (C,) are optional inputs
    (``affine`` says which are given). The batch statistics are appended to ``stats`` (as
    (mean, var) arrays of shape (C,)) for the caller's running averages."""

    def forward(self, x, *wb, affine=(True, True), eps=1e-5, stats=None):
        be = self.be
        c = x.shape[1]
        shape = (1, c) + (1,) * (x.ndim - 2)
        m = _count(x.shape, c)                  # values per channel
        mean = be.divide(_per_channel(be, x, shape), m)
        d = be.subtract(x, mean)
        var = be.divide(_per_channel(be, be.multiply(d, d), shape), m)
        rstd = be.divide(1.0, be.sqrt(be.add(var, eps)))
        xhat = be.multiply(d, rstd)
        y, w = scale_shift(be, xhat, wb, affine, shape)
        if stats is not None:
            stats.append((be.reshape(mean, (c,)), be.reshape(var, (c,))))
        self.save_for_backward(xhat, rstd, w)
        self.meta = (shape, m, c, affine)
        return y

    def backward(self, g):
        be = self.be
        xhat, rstd, w = self.saved
        shape, m, c, affine = self.meta
        needs = iter(self.needs_input_grad[1:])
        gw = gb = None
        if affine[0] and next(needs):
            gw = be.reshape(_per_channel(be, be.multiply(g, xhat), shape), (c,))
        if affine[1] and next(needs):
            gb = be.reshape(_per_channel(be, g, shape), (c,))
        gx = None
        if self.needs_input_grad[0]:
            gh = g if w is None else be.multiply(g, w)
            s1 = _per_channel(be, gh, shape)
            s2 = _per_channel(be, be.multiply(gh, xhat), shape)
            # dx = rstd / m · (m·gh − Σgh − xhat·Σ(gh·xhat))
            inner = be.subtract(be.subtract(be.multiply(gh, float(m)), s1), be.multiply(xhat, s2))
            gx = be.multiply(inner, be.divide(rstd, float(m)))
        grads = [gx]
        if affine[0]:
            grads.append(gw)
        if affine[1]:
            grads.append(gb)
        return tuple(grads)


def _per_channel(be, x, shape: tuple):
    """Sum of x (N, C, ...) over every axis but 1, shaped ``shape`` (1, C, 1, ...): first over
    the batch (contiguous rows), then over each channel's values. One reduction over the axes
    (0, 2, 3) of NCHW memory is ~3x slower on NumPy."""
    s = be.sum(x, axis=0)
    if x.ndim > 2:
        s = be.sum(s, axis=tuple(range(1, x.ndim - 1)))
    return be.reshape(s, shape)


def _count(shape: tuple, c: int) -> int:
    n = 1
    for s in shape:
        n *= s
    return n // c


def scale_shift(be, xhat, wb, affine, shape):
    """y = xhat · w + b for the normalisations: ``wb`` holds w and/or b as ``affine`` says,
    each reshaped to ``shape`` to broadcast. Returns (y, w or None: what backward needs)."""
    it = iter(wb)
    w = be.reshape(next(it), shape) if affine[0] else None
    b = be.reshape(next(it), shape) if affine[1] else None
    y = xhat if w is None else be.multiply(xhat, w)
    return (y if b is None else be.add(y, b)), w

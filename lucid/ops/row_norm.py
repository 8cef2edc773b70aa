"""Layer, group and instance normalisation as one Function with its closed-form gradient.

All three normalise rows of a reshaped view: x (any shape) is viewed as ``rows`` = (M, K) and
each of the M rows is normalised by its own mean and biased variance over its K values:
LayerNorm's rows are the trailing ``normalized_shape`` of each sample, GroupNorm's the values of
one group of channels of one sample, InstanceNorm's the values of one channel of one sample. The
affine weight and bias then apply in x's own shape, broadcast from ``affine_shape`` (LayerNorm:
the trailing shape; GroupNorm/InstanceNorm: (1, C, 1, ...)). BatchNorm (normalization.py) is the
same idea over the batch axis."""

from __future__ import annotations

from lucid.autograd import Function, unbroadcast
from lucid.ops.normalization import scale_shift


class RowNorm(Function):
    """y = (x − mean_row) / sqrt(var_row + eps) · w + b; w and b optional (``affine`` says which
    are given), each of the shape their own, broadcast as ``affine_shape``. With ``stats`` (a
    list), the rows' (mean, biased var), each (M,), are appended for running averages."""

    def forward(self, x, *wb, rows=(1, 1), affine_shape=(), affine=(False, False), eps=1e-5,
                stats=None):
        be = self.be
        m, k = rows
        xr = be.reshape(x, rows)
        mean = be.divide(be.sum(xr, axis=(1,), keepdims=True), float(k))
        d = be.subtract(xr, mean)
        var = be.divide(be.sum(be.multiply(d, d), axis=(1,), keepdims=True), float(k))
        rstd = be.divide(1.0, be.sqrt(be.add(var, eps)))
        xhat = be.reshape(be.multiply(d, rstd), x.shape)
        y, w = scale_shift(be, xhat, wb, affine, affine_shape)
        if stats is not None:
            stats.append((be.reshape(mean, (m,)), be.reshape(var, (m,))))
        self.save_for_backward(xhat, rstd, w)
        self.meta = (rows, affine_shape, affine, tuple(x.shape),
                     tuple(t.shape for t in wb))
        return y

    def backward(self, g):
        be = self.be
        xhat, rstd, w = self.saved
        rows, affine_shape, affine, shape, wb_shapes = self.meta
        grads = []
        if self.needs_input_grad[0]:
            gh = be.reshape(g if w is None else be.multiply(g, w), rows)
            xh = be.reshape(xhat, rows)
            k = float(rows[1])
            s1 = be.sum(gh, axis=(1,), keepdims=True)
            s2 = be.sum(be.multiply(gh, xh), axis=(1,), keepdims=True)
            # dx = rstd / K · (K·gh − Σgh − xhat·Σ(gh·xhat)), per row
            inner = be.subtract(be.subtract(be.multiply(gh, k), s1), be.multiply(xh, s2))
            grads.append(be.reshape(be.multiply(inner, be.divide(rstd, k)), shape))
        else:
            grads.append(None)
        needs = iter(self.needs_input_grad[1:])
        shapes = iter(wb_shapes)
        if affine[0]:
            own = next(shapes)
            grads.append(be.reshape(unbroadcast(be, be.multiply(g, xhat), affine_shape), own)
                         if next(needs) else None)
        if affine[1]:
            own = next(shapes)
            grads.append(be.reshape(unbroadcast(be, g, affine_shape), own)
                         if next(needs) else None)
        return tuple(grads)

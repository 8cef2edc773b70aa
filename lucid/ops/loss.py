"""Class-index losses as single Functions: cross entropy from logits and the negative
log-likelihood of log-probabilities, each against a target distribution built from the class
indices (one-hot, optionally label-smoothed, zero rows for ignored targets). One node with a
closed-form gradient, instead of a log-softmax, a product, a sum and a mean."""

from __future__ import annotations

from lucid.autograd import Function


def _targets(be, target, c: int, dtype: str, smoothing: float, ignore_index: int):
    """(q, keep): q (N, C) the target distribution, keep (N, 1) 1.0 for counted rows (None when
    no row is ignored)."""
    n = target.shape[0]
    hit = be.equal(be.reshape(target, (n, 1)), be.reshape(be.arange(0, c, 1, "int64"), (1, c)))
    q = be.astype(hit, dtype)
    if smoothing:
        q = be.add(be.multiply(q, 1.0 - smoothing), smoothing / c)
    keep = None
    if ignore_index is not None:
        keep = be.astype(be.where(be.equal(be.reshape(target, (n, 1)), ignore_index), False,
                                  True), dtype)
        q = be.multiply(q, keep)
    return q, keep


class ClassLoss(Function):
    """loss_i = -Σ_c q_ic · logp_ic for x (N, C): logits (``from_logits``, logp = log_softmax(x))
    or log-probabilities. Reduced as ``reduction`` ("none" -> (N,), "sum", "mean" divided by
    ``count``, the counted rows); ``bad`` (N,) marks targets known to be out of range only as
    a lazy graph: their loss is NaN."""

    def forward(self, x, target=None, smoothing=0.0, ignore_index=None, reduction="mean",
                count=None, bad=None, from_logits=True):
        be = self.be
        dtype = be.dtype_name(x)
        q, keep = _targets(be, target, x.shape[1], dtype, smoothing, ignore_index)
        if from_logits:
            shifted = be.subtract(x, be.max(x, axis=(1,), keepdims=True))
            e = be.exp(shifted)
            z = be.sum(e, axis=(1,), keepdims=True)
            logp = be.subtract(shifted, be.log(z))
            self.save_for_backward(be.divide(e, z), q, keep)
        else:
            logp = x
            self.save_for_backward(None, q, keep)
        loss = be.multiply(be.sum(be.multiply(q, logp), axis=(1,)), -1.0)
        if bad is not None:
            loss = be.where(bad, float("nan"), loss)
        self.reduction, self.count = reduction, count
        if reduction == "none":
            return loss
        total = be.sum(loss, axis=(0,))
        return total if reduction == "sum" else be.divide(total, count)

    def backward(self, g):
        p, q, keep = self.saved
        be = self.be
        if p is None:                                    # d/dlogp of -Σ q·logp
            d = be.multiply(q, -1.0)
        elif keep is None:                               # rows of q sum to 1: p - q
            d = be.subtract(p, q)
        else:                                            # ignored rows: 0
            d = be.subtract(be.multiply(p, keep), q)
        if self.reduction == "none":
            return be.multiply(d, be.reshape(g, (g.shape[0], 1)))
        if self.reduction == "mean":
            g = be.divide(g, self.count)
        return be.multiply(d, g)

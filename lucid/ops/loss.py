"""Class-index losses as single Functions: cross entropy from logits and the negative
log-likelihood of log-probabilities, each against a target distribution built from the class
indices (one-hot, optionally label-smoothed, zero rows for ignored targets). One node with a
closed-form gradient, instead of a log-softmax, a product, a sum and a mean.

The target's log-probability is *selected* (``where`` over the one-hot mask), never multiplied
by the one-hot: a ``-inf`` logit of a class that is not the target (a masked logit) would make
``0 * -inf = NaN``. PyTorch and MLX give the finite loss; so does this."""

from __future__ import annotations

from lucid.autograd import Function


def _targets(be, target, c: int, dtype: str, smoothing: float, ignore_index: int):
    """(hit, q, kept, keep): hit (N, C) bool, the one-hot mask; q (N, C) the target
    distribution (the gradient's); kept (N,) bool and keep (N, 1) 1.0 for counted rows (both
    None when no row is ignored)."""
    n = target.shape[0]
    hit = be.equal(be.reshape(target, (n, 1)), be.arange(0, c, 1, "int64"))   # (N,1) vs (C,)
    q = be.astype(hit, dtype)
    if smoothing:
        q = be.add(be.multiply(q, 1.0 - smoothing), smoothing / c)
    kept = keep = None
    if ignore_index is not None:
        kept = be.where(be.equal(target, ignore_index), False, True)
        keep = be.astype(be.reshape(kept, (n, 1)), dtype)
        q = be.multiply(q, keep)
    return hit, q, kept, keep


class ClassLoss(Function):
    """loss_i = -Σ_c q_ic · logp_ic for x (N, C) and integer targets (N,) (an input without a
    gradient, as in PyTorch): x logits (``from_logits``, logp = log_softmax(x))
    or log-probabilities. Reduced as ``reduction`` ("none" -> (N,), "sum", "mean" divided by
    ``count``, the counted rows); ``bad`` (N,) marks targets known to be out of range only as
    a lazy graph: their loss is NaN."""

    def forward(self, x, target, smoothing=0.0, ignore_index=None, reduction="mean",
                count=None, bad=None, from_logits=True):
        be = self.be
        dtype = be.dtype_name(x)
        c = x.shape[1]
        hit, q, kept, keep = _targets(be, target, c, dtype, smoothing, ignore_index)
        if from_logits:
            shifted = be.subtract(x, be.max(x, axis=(1,), keepdims=True))
            e = be.exp(shifted)
            z = be.sum(e, axis=(1,), keepdims=True)
            logp = be.subtract(shifted, be.log(z))
            self.save_for_backward(be.divide(e, z), q, keep)
        else:
            logp = x
            self.save_for_backward(None, q, keep)
        self.reduction, self.count = reduction, count
        # -Σ_c q_c·logp_c, with the target's term selected rather than multiplied by 0/1
        if not smoothing and kept is None and bad is None and reduction != "none":
            total = be.sum(be.where(hit, logp, 0.0))         # one sum, one scale
            if reduction == "mean" and isinstance(count, (int, float)):
                return be.divide(total, -float(count))       # -t/n, exactly as (-t)/n
            total = be.multiply(total, -1.0)
            return total if reduction == "sum" else be.divide(total, count)
        picked = be.sum(be.where(hit, logp, 0.0), axis=(1,))
        if smoothing:
            picked = be.add(be.multiply(picked, 1.0 - smoothing),
                            be.multiply(be.sum(logp, axis=(1,)), smoothing / c))
        loss = be.multiply(picked, -1.0)
        if kept is not None:                             # ignored rows: exactly 0
            loss = be.where(kept, loss, 0.0)
        if bad is not None:
            loss = be.where(bad, float("nan"), loss)
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
            return be.multiply(d, be.reshape(g, (g.shape[0], 1))), None
        if self.reduction == "mean":
            g = be.divide(g, self.count)
        return be.multiply(d, g), None                   # (the targets: no gradient)


class BinaryCrossEntropy(Function):
    """Elementwise −(t·log x + (1 − t)·log(1 − x)) of probabilities x, each log clamped at
    −100 (PyTorch's rule: x = 0 or 1 gives a finite loss). Gradients as PyTorch's:
    d/dx = (x − t) / max(x·(1 − x), 1e-12), d/dt = log(1 − x) − log x (both clamped)."""

    def forward(self, x, t):
        be = self.be
        log_x, log_1mx = _clamped_log(be, x), _clamped_log(be, be.subtract(1.0, x))
        self.save_for_backward(x, t, log_x, log_1mx)
        return be.multiply(be.add(be.multiply(t, log_x),
                                  be.multiply(be.subtract(1.0, t), log_1mx)), -1.0)

    def backward(self, g):
        x, t, log_x, log_1mx = self.saved
        be = self.be
        gx = gt = None
        if self.needs_input_grad[0]:
            denom = be.maximum(be.multiply(x, be.subtract(1.0, x)), 1e-12)
            gx = be.multiply(g, be.divide(be.subtract(x, t), denom))
        if self.needs_input_grad[1]:
            gt = be.multiply(g, be.subtract(log_1mx, log_x))
        return gx, gt


def _clamped_log(be, x):
    """max(log x, −100), without taking the log of 0 (1e-44 is below e^-100 in float32)."""
    return be.maximum(be.log(be.maximum(x, 1e-44)), -100.0)

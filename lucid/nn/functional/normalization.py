"""Batch normalisation."""

from __future__ import annotations

from lucid import precision
from lucid.autograd import no_grad
from lucid.ops.normalization import BatchNormTrain
from lucid.tensor import Tensor, apply


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) per channel. Training: batch statistics (biased variance) and, when
    running buffers are given, running = (1 - momentum)*running + momentum*batch (unbiased var).
    Under ``lucid.autocast`` x, weight and bias are cast to float32 and so is the result; the
    running buffers are never cast (they are updated in place, and stay float32 when the module
    is)."""
    x, weight, bias = precision.cast("batch_norm", x, weight, bias)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        n = x.numel() // x.shape[1]
        if n < 2:
            raise ValueError(f"batch_norm in training needs more than 1 value per channel, got "
                             f"input of shape {x.shape}")
        given = [t for t in (weight, bias) if t is not None]
        stats: list = []
        y = apply(BatchNormTrain, x, *[t.astype(x.dtype) for t in given], eps=eps, stats=stats,
                  affine=(weight is not None, bias is not None))
        if running_mean is not None and running_var is not None:
            mean, var = stats[0]
            with no_grad():
                m = Tensor._wrap(mean, x._be)
                v = Tensor._wrap(var, x._be) * (n / (n - 1))
                running_mean.copy_(running_mean * (1 - momentum) + m * momentum)
                running_var.copy_(running_var * (1 - momentum) + v * momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm in eval mode needs running_mean and running_var")
    mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y

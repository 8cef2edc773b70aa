"""Batch normalisation."""

from __future__ import annotations

from lucid.autograd import no_grad
from lucid.tensor import Tensor


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) per channel. Training: batch statistics (biased variance) and, when
    running buffers are given, running = (1 - momentum)*running + momentum*batch (unbiased var)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        n = x.numel() // x.shape[1]
        if n < 2:
            raise ValueError(f"batch_norm in training needs more than 1 value per channel, got "
                             f"input of shape {x.shape}")
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) * (x - mean)).mean(axis=axes, keepdims=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                m = mean.detach().reshape(-1)
                v = var.detach().reshape(-1) * (n / (n - 1))
                running_mean.copy_(running_mean * (1 - momentum) + m * momentum)
                running_var.copy_(running_var * (1 - momentum) + v * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y

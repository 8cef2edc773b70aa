"""Layer, group and instance normalisation (PyTorch's ``F.layer_norm``, ``F.group_norm``,
``F.instance_norm``), each one ``RowNorm`` node (see ``lucid.ops.row_norm``)."""

from __future__ import annotations

from collections.abc import Sequence

from lucid import precision
from lucid.autograd import no_grad
from lucid.ops.row_norm import RowNorm
from lucid.tensor import Tensor, apply


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple, name: str,
            rows: tuple, affine_shape: tuple, eps: float, stats: list | None = None) -> Tensor:
    for t, what in ((weight, "weight"), (bias, "bias")):
        if t is not None and t.shape != shape:
            raise ValueError(f"{name}: {what} must have shape {shape}, got {t.shape}")
    given = [t.astype(x.dtype) for t in (weight, bias) if t is not None]
    return apply(RowNorm, x, *given, rows=rows, affine_shape=affine_shape,
                 affine=(weight is not None, bias is not None), eps=float(eps), stats=stats)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes of input (..., *normalized_shape):
    mean and biased variance per leading index; weight and bias have ``normalized_shape``.
    float32 under ``lucid.autocast``."""
    input, weight, bias = precision.cast("layer_norm", input, weight, bias)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    if not shape or tuple(input.shape[input.ndim - len(shape):]) != shape or \
            input.ndim < len(shape):
        raise ValueError(f"layer_norm: input of shape {input.shape} does not end with "
                         f"normalized_shape {shape}")
    k = _prod(shape)
    return _affine(input, weight, bias, shape, "layer_norm", (input.numel() // k, k), shape,
                   eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise input (N, C, *) over each group of C // num_groups channels (and every spatial
    position) per sample; weight and bias are per channel (C,). float32 under
    ``lucid.autocast``."""
    input, weight, bias = precision.cast("group_norm", input, weight, bias)
    if input.ndim < 2:
        raise ValueError(f"group_norm expects (N, C, *) input, got shape {input.shape}")
    n, c = input.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups <= 0 or \
            c % num_groups:
        raise ValueError(f"group_norm: num_groups must be a positive int dividing the "
                         f"{c} channels, got {num_groups!r}")
    affine_shape = (1, c) + (1,) * (input.ndim - 2)
    return _affine(input, weight, bias, (c,), "group_norm",
                   (n * num_groups, input.numel() // (n * num_groups)), affine_shape, eps)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise input (N, C, *) per sample and channel over the spatial axes. With
    ``use_input_stats`` (training, or no running stats) the instance's own statistics are
    used and, when running buffers are given, updated in place as PyTorch does:
    running = (1 − momentum)·running + momentum·(batch mean of the instances' mean / unbiased
    variance). Otherwise the running statistics normalise. float32 under ``lucid.autocast``
    (the running statistics are never cast: they are updated in place)."""
    input, weight, bias = precision.cast("instance_norm", input, weight, bias)
    if input.ndim < 3:
        raise ValueError(f"instance_norm expects (N, C, *) input with spatial axes, got shape "
                         f"{input.shape}")
    n, c = input.shape[:2]
    affine_shape = (1, c) + (1,) * (input.ndim - 2)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm with use_input_stats=False needs running_mean and "
                             "running_var")
        y = (input - running_mean.reshape(affine_shape)) / \
            (running_var.reshape(affine_shape) + eps).sqrt()
        if weight is not None:
            y = y * weight.reshape(affine_shape)
        if bias is not None:
            y = y + bias.reshape(affine_shape)
        return y
    k = input.numel() // (n * c)
    if k < 2:
        raise ValueError(f"instance_norm with the input's own statistics needs more than 1 "
                         f"spatial element per channel, got input of shape {input.shape}")
    stats: list = []
    y = _affine(input, weight, bias, (c,), "instance_norm", (n * c, k), affine_shape, eps,
                stats)
    if running_mean is not None and running_var is not None:
        mean, var = stats[0]
        with no_grad():
            m = Tensor._wrap(mean, input._be).reshape(n, c).mean(axis=0)
            v = (Tensor._wrap(var, input._be) * (k / (k - 1))).reshape(n, c).mean(axis=0)
            running_mean.copy_(running_mean * (1 - momentum) + m * momentum)
            running_var.copy_(running_var * (1 - momentum) + v * momentum)
    return y

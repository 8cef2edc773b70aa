"""Batch normalisation: BatchNorm1d, BatchNorm2d, BatchNorm3d (one ``_BatchNorm``, the input
ranks they take declared per class)."""

from __future__ import annotations

from typing import Any

from lucid import dtypes
from lucid.creation import full, ones, zeros
from lucid.nn import conv_args as A
from lucid.nn import functional as F
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor


class _BatchNorm(Module):
    """Per-channel normalisation of (N, C, ...); batch statistics in training, running ones in
    eval. running = (1 - momentum) * running + momentum * batch (unbiased variance).
    Subclasses declare the input ranks they take (``ndims``) and their ``layout``."""

    ndims: tuple[int, ...] = (4,)
    layout = "(N, {c}, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.num_features = A.positive_int(num_features, "num_features")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.eps, self.momentum, self.affine = eps, momentum, affine
        self.track_running_stats = track_running_stats
        dt = dtypes.get(dtype) or dtypes.float32
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dt, device=device))
            self.bias = Parameter(zeros(num_features, dtype=dt, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dt, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dt, device=device))
            self.register_buffer("num_batches_tracked", full((), 0, dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self.ndims or x.shape[1] != self.num_features:
            shapes = self.layout.format(c=self.num_features)
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects {shapes} "
                             f"input, got shape {x.shape}")
        if self.training or not self.track_running_stats:
            update = self.training and self.track_running_stats
            if update:
                self.num_batches_tracked.copy_(self.num_batches_tracked + 1)
            return F.batch_norm(x, self.running_mean if update else None,
                                self.running_var if update else None, self.weight, self.bias,
                                True, self.momentum, self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, " \
               f"affine={self.affine}, track_running_stats={self.track_running_stats}"


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) input (PyTorch's BatchNorm1d): statistics per channel
    over the batch (and length)."""

    ndims = (2, 3)
    layout = "(N, {c}) or (N, {c}, L)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) input: statistics per channel over N, H and W."""

    ndims = (4,)
    layout = "(N, {c}, H, W)"


class BatchNorm3d(_BatchNorm):
    """BatchNorm over (N, C, D, H, W) input: statistics per channel over N, D, H and W."""

    ndims = (5,)
    layout = "(N, {c}, D, H, W)"

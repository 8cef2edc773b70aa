"""BatchNorm2d."""

from __future__ import annotations

from typing import Any

from lucid import dtypes
from lucid.creation import full, ones, zeros
from lucid.nn import conv_args as A
from lucid.nn import functional as F
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor


class BatchNorm2d(Module):
    """Per-channel normalisation of (N, C, H, W); batch statistics in training, running ones in
    eval. running = (1 - momentum) * running + momentum * batch (unbiased variance)."""

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
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) expects (N, {self.num_features}, "
                             f"H, W) input, got shape {x.shape}")
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

"""LayerNorm, GroupNorm, InstanceNorm1d/2d (PyTorch's arguments, buffers and state-dict keys)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lucid import dtypes
from lucid.creation import full, ones, zeros
from lucid.nn import conv_args as A
from lucid.nn.functional import feature_norm as G
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor


def _eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
        raise ValueError(f"eps must be a number > 0, got {eps!r}")
    return float(eps)


class LayerNorm(Module):
    """Normalises the trailing ``normalized_shape`` axes of (..., *normalized_shape) per
    leading index; ``weight`` (ones) and ``bias`` (zeros) of ``normalized_shape`` when
    ``elementwise_affine`` (``bias=False``: weight only)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        self.normalized_shape = tuple(A.positive_int(s, "normalized_shape") for s in shape)
        self.eps, self.elementwise_affine = _eps(eps), bool(elementwise_affine)
        dt = dtypes.get(dtype) or dtypes.float32
        self.register_parameter("weight", Parameter(ones(*self.normalized_shape, dtype=dt,
                                device=device)) if elementwise_affine else None)
        self.register_parameter("bias", Parameter(zeros(*self.normalized_shape, dtype=dt,
                                device=device)) if elementwise_affine and bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return G.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, " \
               f"elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalises (N, C, *) over groups of C // num_groups channels per sample; per-channel
    ``weight`` (ones) and ``bias`` (zeros) when ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_groups = A.positive_int(num_groups, "num_groups")
        self.num_channels = A.positive_int(num_channels, "num_channels")
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.eps, self.affine = _eps(eps), bool(affine)
        dt = dtypes.get(dtype) or dtypes.float32
        self.register_parameter("weight", Parameter(ones(num_channels, dtype=dt, device=device))
                                if affine else None)
        self.register_parameter("bias", Parameter(zeros(num_channels, dtype=dt, device=device))
                                if affine else None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expects (N, "
                             f"{self.num_channels}, *) input, got shape {x.shape}")
        return G.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(Module):
    """Per sample and channel over the spatial axes. ``affine``: per-channel weight (ones) and
    bias (zeros). ``track_running_stats``: running_mean/var buffers updated in training (see
    ``F.instance_norm``) and used in eval."""

    spatial = 0                                  # spatial axes of a batched input

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.num_features = A.positive_int(num_features, "num_features")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.eps, self.momentum = _eps(eps), float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = dtypes.get(dtype) or dtypes.float32
        c = num_features
        self.register_parameter("weight", Parameter(ones(c, dtype=dt, device=device))
                                if affine else None)
        self.register_parameter("bias", Parameter(zeros(c, dtype=dt, device=device))
                                if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(c, dtype=dt, device=device))
            self.register_buffer("running_var", ones(c, dtype=dt, device=device))
            self.register_buffer("num_batches_tracked", full((), 0, dtype="int64",
                                                             device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, x: Tensor) -> Tensor:
        d = self.spatial + 2
        if x.ndim not in (d - 1, d):
            raise ValueError(f"{type(self).__name__} expects {d}-D (batched) or {d - 1}-D "
                             f"(unbatched) input, got shape {x.shape}")
        unbatched = x.ndim == d - 1
        if unbatched:
            x = x.reshape((1,) + x.shape)
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ValueError(f"{type(self).__name__}({self.num_features}) got {x.shape[1]} "
                             f"channels (input shape {x.shape})")
        y = G.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats, self.momentum,
                            self.eps)
        return y.reshape(y.shape[1:]) if unbatched else y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, " \
               f"affine={self.affine}, track_running_stats={self.track_running_stats}"


class InstanceNorm1d(_InstanceNorm):
    """(N, C, L) or unbatched (C, L)."""

    spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """(N, C, H, W) or unbatched (C, H, W)."""

    spatial = 2

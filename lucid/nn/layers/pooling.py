"""Pooling modules of every rank: (N, C, *spatial) or (C, *spatial) with 1, 2 or 3 spatial axes.
One class per kind; the rank picks the functional form."""

from __future__ import annotations

from typing import Any

from lucid.nn import functional as F
from lucid.nn.module import Module
from lucid.tensor import Tensor

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_ADAPTIVE = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


class _MaxPoolNd(Module):
    rank = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return _MAX[self.rank](x, self.kernel_size, self.stride, self.padding, self.dilation,
                               self.ceil_mode)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, " \
               f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L) or (C, L)."""

    rank = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W) or (C, H, W)."""

    rank = 2


class MaxPool3d(_MaxPoolNd):
    """Max pooling over (N, C, D, H, W) or (C, D, H, W)."""

    rank = 3


MaxPool2D = MaxPool2d


class _AvgPoolNd(Module):
    rank = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return _AVG[self.rank](x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                               self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, " \
               f"padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Average pooling over (N, C, L) or (C, L)."""

    rank = 1


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (N, C, H, W) or (C, H, W)."""

    rank = 2


class AvgPool3d(_AvgPoolNd):
    """Average pooling over (N, C, D, H, W) or (C, D, H, W)."""

    rank = 3


class _AdaptiveAvgPoolNd(Module):
    rank = 2

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return _ADAPTIVE[self.rank](x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Averages ``(N, C, L)`` into ``output_size`` bins (PyTorch's bin edges)."""

    rank = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Averages ``(N, C, H, W)`` into ``output_size`` bins per axis (PyTorch's bin edges)."""

    rank = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Averages ``(N, C, D, H, W)`` into ``output_size`` bins per axis (PyTorch's bin edges)."""

    rank = 3

"""selfeeg's convolution blocks: DepthwiseConv2d and SeparableConv2d (selfeeg 0.2.2
``models/layers.py``), over ConstrainedConv2d's norm constraints.

Differences from selfeeg, on purpose: ``max_norm=None`` (no constraint) is the default where
selfeeg's DepthwiseConv2d defaults to 2.0; SeparableConv2d takes ``depth_multiplier`` third and
one ``minmax_rate`` for both parts; the norm eps is ConstrainedConv2d's 1e-7 (selfeeg: 1e-9, the
same at float32 precision). The timing is selfeeg's (``enforce="pre_forward"``: the weight is
projected in place before each forward) unless asked otherwise."""

from __future__ import annotations

from typing import Any

from lucid.nn import conv_args as A
from lucid.nn.layers.constrained_conv import ConstrainedConv2d
from lucid.nn.module import Module
from lucid.tensor import Tensor


class DepthwiseConv2d(ConstrainedConv2d):
    """A depthwise Conv2d (groups = in_channels, in_channels·depth_multiplier outputs) with
    selfeeg's optional norm constraint: ``max_norm`` alone -> MaxNorm, with ``min_norm`` ->
    MinMaxNorm (``minmax_rate``), both 1.0 -> UnitNorm, the norm over ``axis_norm`` of the weight
    (in_channels·depth_multiplier, 1, kh, kw); ``max_norm=None``: unconstrained.

    input (N, in_channels, H, W) -> (N, in_channels·depth_multiplier, H', W'); padding "same" by
    default (stride 1), as selfeeg."""

    def __init__(self, in_channels: int, depth_multiplier: int, kernel_size: Any,
                 stride: Any = 1, padding: Any = "same", dilation: Any = 1, bias: bool = False,
                 *, max_norm: float | None = None, min_norm: float | None = None,
                 axis_norm: Any = (1, 2, 3), minmax_rate: float = 1.0,
                 enforce: str = "pre_forward", device: Any = None, dtype: Any = None) -> None:
        in_ch = A.positive_int(in_channels, "in_channels")
        dm = A.positive_int(depth_multiplier, "depth_multiplier")
        super().__init__(in_ch, in_ch * dm, kernel_size, stride, padding, dilation,
                         groups=in_ch, bias=bias, device=device, dtype=dtype, max_norm=max_norm,
                         min_norm=min_norm, axis_norm=axis_norm, minmax_rate=minmax_rate,
                         enforce=enforce)
        self.depth_multiplier = dm


class SeparableConv2d(Module):
    """selfeeg's SeparableConv2d: a DepthwiseConv2d (submodule ``depthwise``) then a 1×1
    ConstrainedConv2d (``pointwise``), each with its own optional norm constraint (depth_* and
    point_* arguments, one ``axis_norm`` and ``minmax_rate`` for both).

    input (N, in_channels, H, W) -> (N, out_channels, H', W'); depthwise weight
    (in_channels·depth_multiplier, 1, kh, kw), pointwise (out_channels,
    in_channels·depth_multiplier, 1, 1)."""

    def __init__(self, in_channels: int, out_channels: int, depth_multiplier: int,
                 kernel_size: Any, stride: Any = 1, padding: Any = "same", dilation: Any = 1,
                 bias: bool = False, *, depth_max_norm: float | None = None,
                 depth_min_norm: float | None = None, point_max_norm: float | None = None,
                 point_min_norm: float | None = None, axis_norm: Any = (1, 2, 3),
                 minmax_rate: float = 1.0, enforce: str = "pre_forward", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        in_ch = A.positive_int(in_channels, "in_channels")
        dm = A.positive_int(depth_multiplier, "depth_multiplier")
        out_ch = A.positive_int(out_channels, "out_channels")
        self.depthwise = DepthwiseConv2d(in_ch, dm, kernel_size, stride, padding, dilation, bias,
                                         max_norm=depth_max_norm, min_norm=depth_min_norm,
                                         axis_norm=axis_norm, minmax_rate=minmax_rate,
                                         enforce=enforce, device=device, dtype=dtype)
        self.pointwise = ConstrainedConv2d(in_ch * dm, out_ch, 1, bias=bias, device=device,
                                           dtype=dtype, max_norm=point_max_norm,
                                           min_norm=point_min_norm, axis_norm=axis_norm,
                                           minmax_rate=minmax_rate, enforce=enforce)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))

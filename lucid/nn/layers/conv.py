"""Convolution layers of every rank: one ``_ConvNd`` that normalises the arguments once into a
``ConvGeometry``, owns the parameters and calls ``lucid.nn.functional``; ``Conv1d/2d/3d`` and
``ConvTranspose1d/2d/3d`` only declare their rank and PyTorch's argument order.
``ConstrainedConvNd`` (in constrained_conv.py) only changes the kernel."""

from __future__ import annotations

import functools
import math
from typing import Any

from lucid import dtypes
from lucid.backends.contract import ConvGeometry, conv_transpose_output_size
from lucid.creation import zeros
from lucid.nn import conv_args as A
from lucid.nn import init
from lucid.nn.functional.conv import conv_nd, conv_transpose_nd
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor, resolve_backend


def _broadcastable(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))


class _ConvNd(Module):
    """Shared construction for every convolution layer: every argument is checked, and the
    geometry record made, before any parameter is allocated. Subclasses set ``rank`` (spatial
    axes) and ``transposed``."""

    rank = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
                 padding: Any, dilation: Any, groups: int, bias: bool, padding_mode: str,
                 device: Any, dtype: Any, data_format: str, weight_mask: Any,
                 output_padding: Any = 0, input_dilation: Any = 1, weight_init: Any = None,
                 bias_init: Any = None) -> None:
        super().__init__()
        in_ch = A.positive_int(in_channels, "in_channels")
        out_ch = A.positive_int(out_channels, "out_channels")
        if self.transposed:
            geo = A.transpose_geometry(self.rank, kernel_size, stride, padding, output_padding,
                                       groups, dilation, padding_mode=padding_mode,
                                       data_format=data_format)
            A.ntuple(input_dilation, "input_dilation", self.rank)
        else:
            geo = A.conv_geometry(self.rank, kernel_size, stride, padding, dilation, groups,
                                  input_dilation=input_dilation, padding_mode=padding_mode,
                                  data_format=data_format)
        g = A.groups(geo.groups, in_ch, out_ch)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        dt = dtypes.get(dtype) or dtypes.float32
        if not dt.is_floating:
            raise TypeError(f"conv parameters need a floating dtype, got {dt}")
        be = resolve_backend(device)
        k = geo.kernel
        wshape = (in_ch, out_ch // g) + k if self.transposed else (out_ch, in_ch // g) + k
        w_init = init.check_initializer(weight_init, "weight_init", wshape)
        b_init = init.check_initializer(bias_init, "bias_init", (out_ch,))
        if b_init is not None and not bias:
            raise ValueError("bias_init is given but bias=False: the layer has no bias")
        mask = None
        if weight_mask is not None:
            mask = weight_mask if isinstance(weight_mask, Tensor) else Tensor(
                weight_mask, dtype=dt, device=be.name)
            if not _broadcastable(mask.shape, wshape):
                raise ValueError(f"weight_mask of shape {mask.shape} is not broadcastable to the "
                                 f"weight shape {wshape}")
            mask = mask.to(be.name).astype(dt)

        self.geometry: ConvGeometry = geo
        self.in_channels, self.out_channels = in_ch, out_ch
        self._inits = (w_init, b_init)           # applied by reset_parameters (again on reset)
        self.weight = Parameter(zeros(wshape, dtype=dt, device=be.name))
        if bias:
            self.bias = Parameter(zeros(out_ch, dtype=dt, device=be.name))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("weight_mask", mask)
        self.reset_parameters()

    # PyTorch's attribute names, read from the geometry record (the one source).
    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.geometry.kernel

    @property
    def stride(self) -> tuple[int, ...]:
        return self.geometry.stride

    @property
    def padding(self) -> Any:
        """As given: "same"/"valid", an int, or a tuple (the resolved per-side pads are
        ``geometry.lo`` / ``geometry.hi``)."""
        return self.geometry.padding

    @property
    def dilation(self) -> tuple[int, ...]:
        return self.geometry.dilation

    @property
    def input_dilation(self) -> tuple[int, ...]:
        return self.geometry.input_dilation

    @property
    def groups(self) -> int:
        return self.geometry.groups

    @property
    def output_padding(self) -> tuple[int, ...]:
        return self.geometry.output_padding

    @property
    def padding_mode(self) -> str:
        return self.geometry.padding_mode

    @property
    def data_format(self) -> str:
        return "channels_last" if self.geometry.channels_last else "channels_first"

    def reset_parameters(self) -> None:
        """weight and bias from ``weight_init`` / ``bias_init`` when given; otherwise
        ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] * prod(kernel)
        (in_channels/groups * prod(kernel) for ConvNd), as PyTorch's default."""
        fan_in, _ = init.fan_in_and_fan_out(self.weight)
        bound = 1.0 / math.sqrt(fan_in)
        uniform = functools.partial(init.uniform_, a=-bound, b=bound)
        w_init, b_init = self._inits
        init.apply_initializer(self.weight, w_init, "weight_init", uniform)
        if self.bias is not None:
            init.apply_initializer(self.bias, b_init, "bias_init", uniform)

    def masked_weight(self) -> Tensor:
        """The weight times ``weight_mask`` (when one is set): the kernel before any constraint."""
        w = self.weight
        return w if self.weight_mask is None else w * self.weight_mask

    def extra_repr(self) -> str:
        geo, ones, zeros_ = self.geometry, (1,) * self.rank, (0,) * self.rank
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={geo.kernel}, " \
            f"stride={geo.stride}"
        p = geo.padding
        if isinstance(p, str):
            s += f", padding={p!r}"
        elif p not in (0, zeros_):
            s += f", padding={p}"
        if geo.output_padding != zeros_:
            s += f", output_padding={geo.output_padding}"
        if geo.dilation != ones:
            s += f", dilation={geo.dilation}"
        if geo.input_dilation != ones:
            s += f", input_dilation={geo.input_dilation}"
        if geo.groups != 1:
            s += f", groups={geo.groups}"
        if self.bias is None:
            s += ", bias=False"
        if geo.padding_mode != "zeros":
            s += f", padding_mode={geo.padding_mode!r}"
        if geo.channels_last:
            s += ", data_format='channels_last'"
        if self.weight_mask is not None:
            s += f", weight_mask={self.weight_mask.shape}"
        return s


class _Conv(_ConvNd):
    """A convolution of rank ``rank``: PyTorch's ConvNd arguments plus lucid's keyword-only
    extras."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None, *,
                 data_format: str = "channels_first", weight_mask: Any = None,
                 input_dilation: Any = 1, weight_init: Any = None, bias_init: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, data_format, weight_mask,
                         input_dilation=input_dilation, weight_init=weight_init,
                         bias_init=bias_init)

    def kernel(self) -> Tensor:
        """The kernel this layer convolves with (subclasses constrain it)."""
        return self.masked_weight()

    def forward(self, x: Tensor) -> Tensor:
        return conv_nd(x, self.kernel(), self.bias, self.geometry)


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L) or unbatched (C_in, L) — (N, L, C_in) with
    ``data_format="channels_last"``. weight (C_out, C_in/groups, k). Arguments as Conv2d's with
    one entry per axis: padding an int, (p,), ((lo, hi),), "same" or "valid"."""

    rank = 1


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W) or unbatched (C_in, H, W) input — (N, H, W, C_in) with
    ``data_format="channels_last"``.

    weight (C_out, C_in/groups, kh, kw) ~ U(±1/sqrt(fan_in)); bias (C_out,) likewise.
    padding: int, (ph, pw), ((top, bottom), (left, right)), "same" (stride 1; the extra pixel of
    an even kernel goes bottom/right; for TF/Keras 'SAME' with a stride use
    ``lucid.nn.utils.same_padding``) or "valid", case-insensitive. padding_mode: zeros, reflect,
    replicate or circular. weight_mask: broadcastable to the weight, multiplied into the kernel in
    every forward (stored as a buffer).
    Keyword-only, as brainstate's Conv2d: input_dilation (its lhs_dilation): input_dilation - 1
    zeros between input pixels (needs padding_mode="zeros"); weight_init / bias_init (its w_init /
    b_init): a callable ``init(tensor)`` filling the parameter in place (``lucid.nn.init`` style,
    e.g. ``functools.partial(nn.init.xavier_normal_, gain=2.0)``) or an array/Tensor of the
    parameter's exact shape; None keeps the default. ``reset_parameters()`` applies them again.
    Output H_out = ((H - 1)*input_dilation + 1 + top + bottom - dilation*(kh - 1) - 1)
    // stride + 1.
    """

    rank = 2


class Conv3d(_Conv):
    """3-D convolution over (N, C_in, D, H, W) or unbatched (C_in, D, H, W) — (N, D, H, W, C_in)
    with ``data_format="channels_last"``. weight (C_out, C_in/groups, kd, kh, kw). Arguments as
    Conv2d's with three entries per tuple: padding an int, (pd, ph, pw), three (lo, hi) pairs,
    "same" or "valid"."""

    rank = 3


class _ConvTranspose(_ConvNd):
    """A transposed convolution of rank ``rank`` (the adjoint of the ConvNd), as PyTorch's.

    weight (C_in, C_out/groups, *k); each output axis
    (n - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1.
    ``forward(x, output_size=...)`` picks output_padding to reach that size.
    weight_init / bias_init: as Conv2d's."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None, *, data_format: str = "channels_first",
                 weight_mask: Any = None, weight_init: Any = None, bias_init: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, data_format, weight_mask,
                         output_padding, weight_init=weight_init, bias_init=bias_init)

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        geo = self.geometry
        op = None
        if output_size is not None:
            r = self.rank
            size_in = x.shape[-r - 1:-1] if geo.channels_last else x.shape[-r:]
            want = tuple(output_size)[-r:]
            base = [conv_transpose_output_size(n, k, s, p, 0, d) for n, k, s, p, d in zip(
                size_in, geo.kernel, geo.stride, geo.lo, geo.dilation)]
            try:
                op = A.output_padding(tuple(w - b for w, b in zip(want, base)), geo.stride,
                                      geo.dilation)
            except ValueError:
                raise ValueError(f"output_size {want} is not reachable from input {x.shape}: "
                                 f"valid sizes are {tuple(base)} plus less than the stride "
                                 f"{geo.stride} (or dilation {geo.dilation})") from None
        return conv_transpose_nd(x, self.masked_weight(), self.bias, geo, op)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution over (N, C_in, L); weight (C_in, C_out/groups, k)."""

    rank = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (the adjoint of Conv2d), as PyTorch's.

    input (N, C_in, H, W); weight (C_in, C_out/groups, kh, kw); output
    H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1.
    ``forward(x, output_size=(H, W))`` picks output_padding to reach that size.
    weight_init / bias_init: as Conv2d's."""

    rank = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution over (N, C_in, D, H, W); weight (C_in, C_out/groups, kd, kh,
    kw)."""

    rank = 3

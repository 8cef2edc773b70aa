"""Convolution layers: thin wrappers that validate arguments, own the parameters and call
``lucid.nn.functional``. ``ConstrainedConv2d`` (in constrained_conv.py) only changes the kernel."""

from __future__ import annotations

import functools
import math
from typing import Any

from lucid import dtypes
from lucid.backends.contract import conv_transpose_output_size
from lucid.creation import zeros
from lucid.nn import conv_args as A
from lucid.nn import functional as F
from lucid.nn import init
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor, resolve_backend


def _broadcastable(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))


class _ConvNd(Module):
    """Shared construction for Conv2d and ConvTranspose2d: every argument is checked before any
    parameter is allocated."""

    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
                 padding: Any, dilation: Any, groups: int, bias: bool, padding_mode: str,
                 device: Any, dtype: Any, data_format: str, weight_mask: Any,
                 output_padding: Any = 0, input_dilation: Any = 1, weight_init: Any = None,
                 bias_init: Any = None) -> None:
        super().__init__()
        in_ch = A.positive_int(in_channels, "in_channels")
        out_ch = A.positive_int(out_channels, "out_channels")
        k = A.pair(kernel_size, "kernel_size")
        s = A.pair(stride, "stride")
        d = A.pair(dilation, "dilation")
        di = A.pair(input_dilation, "input_dilation")
        g = A.groups(groups, in_ch, out_ch)
        if self.transposed:
            if isinstance(padding, str):
                raise ValueError(f"ConvTranspose2d does not take padding={padding!r}; give an int "
                                 "or (ph, pw)")
            spec: Any = A.pair(padding, "padding", minimum=0)
            op = A.output_padding(output_padding, s, d)
        else:
            spec = A.padding_spec(padding, s)
            op = (0, 0)
        mode = A.padding_mode(padding_mode)
        if self.transposed and mode != "zeros":
            raise ValueError(f"ConvTranspose2d supports only padding_mode='zeros', got {mode!r}")
        if di != (1, 1) and mode != "zeros":
            # Reflecting or wrapping the zeros of a dilated input has no agreed meaning.
            raise ValueError(f"input_dilation {di} needs padding_mode='zeros', got {mode!r}")
        channels_last = A.data_format(data_format)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        dt = dtypes.get(dtype) or dtypes.float32
        if not dt.is_floating:
            raise TypeError(f"conv parameters need a floating dtype, got {dt}")
        be = resolve_backend(device)
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

        self.in_channels, self.out_channels, self.kernel_size = in_ch, out_ch, k
        self.stride, self.dilation, self.groups, self.input_dilation = s, d, g, di
        self.padding = spec if isinstance(spec, str) else padding if not self.transposed else spec
        self.output_padding = op
        self.padding_mode = mode
        self.data_format = "channels_last" if channels_last else "channels_first"
        self._inits = (w_init, b_init)           # applied by reset_parameters (again on reset)
        self.weight = Parameter(zeros(wshape, dtype=dt, device=be.name))
        if bias:
            self.bias = Parameter(zeros(out_ch, dtype=dt, device=be.name))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("weight_mask", mask)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight and bias from ``weight_init`` / ``bias_init`` when given; otherwise
        ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1]*kh*kw
        (in_channels/groups*kh*kw for Conv2d), as PyTorch's default."""
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
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding not in (0, (0, 0), "valid") or isinstance(self.padding, str):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else \
                f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.input_dilation != (1, 1):
            s += f", input_dilation={self.input_dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.data_format != "channels_first":
            s += f", data_format={self.data_format!r}"
        if self.weight_mask is not None:
            s += f", weight_mask={self.weight_mask.shape}"
        return s


class Conv2d(_ConvNd):
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
        return self._conv(x, self.kernel())

    def _conv(self, x: Tensor, w: Tensor) -> Tensor:
        padding = self.padding
        if self.padding_mode != "zeros":
            lo, hi = A.resolve_padding(padding, self.kernel_size, self.dilation, self.stride)
            spatial = (lo[1], hi[1], lo[0], hi[0])
            x = F.pad(x, ((0, 0) + spatial) if self.data_format == "channels_last" else spatial,
                      mode=self.padding_mode)
            padding = 0
        return F.conv2d(x, w, self.bias, self.stride, padding, self.dilation, self.groups,
                        data_format=self.data_format, input_dilation=self.input_dilation)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution (the adjoint of Conv2d), as PyTorch's.

    input (N, C_in, H, W); weight (C_in, C_out/groups, kh, kw); output
    H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1.
    ``forward(x, output_size=(H, W))`` picks output_padding to reach that size.
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
        op = self.output_padding
        if output_size is not None:
            hw_in = x.shape[-3:-1] if self.data_format == "channels_last" else x.shape[-2:]
            want = tuple(output_size)[-2:]
            base = [conv_transpose_output_size(n, k, s, p, 0, d) for n, k, s, p, d in zip(
                hw_in, self.kernel_size, self.stride, self.padding, self.dilation)]
            try:
                op = A.output_padding(tuple(w - b for w, b in zip(want, base)), self.stride,
                                      self.dilation)
            except ValueError:
                raise ValueError(f"output_size {want} is not reachable from input {x.shape}: "
                                 f"valid sizes are {tuple(base)} plus less than the stride "
                                 f"{self.stride} (or dilation {self.dilation})") from None
        return F.conv_transpose2d(x, self.masked_weight(), self.bias, self.stride, self.padding,
                                  op, self.groups, self.dilation, data_format=self.data_format)

"""Convolution and transposed convolution of every rank (channels-first like PyTorch;
channels-last on request). Each public function builds the call's ``ConvGeometry`` from its
arguments and the weight's kernel; layers build theirs once and call ``conv_nd`` /
``conv_transpose_nd`` directly."""

from __future__ import annotations

from typing import Any

from lucid import precision
from lucid.backends.contract import ConvGeometry, dilated_size
from lucid.nn import conv_args as A
from lucid.nn.functional.padding import pad
from lucid.ops import conv as C
from lucid.tensor import Tensor, apply

_WEIGHT = {1: "(out, in/groups, k)", 2: "(out, in/groups, kh, kw)",
           3: "(out, in/groups, kd, kh, kw)"}


def _check_weight(weight: Tensor, rank: int) -> None:
    if not isinstance(weight, Tensor):
        raise TypeError("conv weight must be a lucid Tensor")
    if weight.ndim != rank + 2:
        raise ValueError(f"weight must be {rank + 2}-D {_WEIGHT[rank]}, got shape {weight.shape}")


def _check_input(x: Tensor, weight: Tensor, geo: ConvGeometry) -> tuple[Tensor, bool]:
    """Validate rank, dtypes, channels and groups; returns the batched input and whether a batch
    was added."""
    rank = geo.rank
    if not isinstance(x, Tensor):
        raise TypeError("conv input and weight must be lucid Tensors")
    _check_weight(weight, rank)
    if x.ndim not in (rank + 1, rank + 2):
        raise ValueError(f"expected a {rank + 1}-D or {rank + 2}-D input {geo_layout(geo)}, got "
                         f"shape {x.shape}")
    if x.dtype != weight.dtype:
        # PyTorch's rule: no silent cast of either operand (a float64 weight would lose bits).
        raise TypeError(f"conv input and weight must have the same dtype, got input "
                        f"{x.dtype.name} and weight {weight.dtype.name}")
    unbatched = x.ndim == rank + 1
    if unbatched:
        x = x.unsqueeze(0)
    c = x.shape[-1] if geo.channels_last else x.shape[1]
    g = geo.groups
    expected = weight.shape[0] if geo.transposed else weight.shape[1] * g
    if c != expected:
        raise ValueError(f"expected input with {expected} channels (weight {weight.shape}, "
                         f"groups={g}), got input of shape {x.shape}")
    if geo.transposed:
        A.groups(g, weight.shape[0], weight.shape[1] * g)
    else:
        A.groups(g, c, weight.shape[0])
    return x, unbatched


def geo_layout(geo: ConvGeometry) -> str:
    return A.layout(geo.rank, geo.channels_last)


def _add_bias(y: Tensor, bias: Tensor | None, geo: ConvGeometry, out_ch: int) -> Tensor:
    if bias is None:
        return y
    if bias.shape != (out_ch,):
        raise ValueError(f"bias must have shape ({out_ch},), got {bias.shape}")
    return y + (bias if geo.channels_last else bias.reshape((out_ch,) + (1,) * geo.rank))


def _spatial(x: Tensor, geo: ConvGeometry) -> tuple[int, ...]:
    return tuple(x.shape[1:-1] if geo.channels_last else x.shape[2:])


def conv_nd(input: Tensor, weight: Tensor, bias: Tensor | None, geo: ConvGeometry) -> Tensor:
    """The convolution of ``geo`` (any rank; padding in its mode) — what every Conv layer and
    ``F.conv1d/2d/3d`` run. Shapes as ``conv2d``'s, with one spatial axis per rank. Under
    ``lucid.autocast`` input, weight and bias are cast to the autocast dtype."""
    input, weight, bias = precision.cast("conv", input, weight, bias)
    x, unbatched = _check_input(input, weight, geo)
    if tuple(weight.shape[2:]) != geo.kernel:
        raise ValueError(f"weight of shape {weight.shape} does not have the kernel {geo.kernel}")
    if geo.mode_pads:
        widths: tuple[int, ...] = ()
        for a_lo, a_hi in zip(reversed(geo.lo), reversed(geo.hi)):  # F.pad: last axis first
            widths += (a_lo, a_hi)
        x = pad(x, ((0, 0) + widths) if geo.channels_last else widths, mode=geo.padding_mode)
    lo, hi = geo.conv_pads
    sizes = _spatial(x, geo)
    for n, lo_, hi_, k, d, di in zip(sizes, lo, hi, geo.kernel, geo.dilation,
                                     geo.input_dilation):
        if dilated_size(n, di) + lo_ + hi_ < d * (k - 1) + 1:
            dilated = f" dilated to {dilated_size(n, di)} and" if di > 1 else ""
            raise ValueError(f"input of shape {input.shape}{dilated} padded to "
                             f"{dilated_size(n, di) + lo_ + hi_} is smaller than the dilated "
                             f"kernel ({d * (k - 1) + 1}) of weight {weight.shape} with "
                             f"dilation {geo.dilation}")
    y = apply(C.Conv, x, weight, geo=geo)
    y = _add_bias(y, bias, geo, weight.shape[0])
    return y.squeeze(0) if unbatched else y


def conv_transpose_nd(input: Tensor, weight: Tensor, bias: Tensor | None,
                      geo: ConvGeometry, output_padding: tuple[int, ...] | None = None) -> Tensor:
    """The transposed convolution of ``geo`` (any rank); ``output_padding`` overrides the
    geometry's for one call (``ConvTransposeNd.forward(x, output_size)``); in the autocast
    dtype under ``lucid.autocast``."""
    input, weight, bias = precision.cast("conv_transpose", input, weight, bias)
    if output_padding is not None and output_padding != geo.output_padding:
        geo = _replace_output_padding(geo, output_padding)
    x, unbatched = _check_input(input, weight, geo)
    if tuple(weight.shape[2:]) != geo.kernel:
        raise ValueError(f"weight of shape {weight.shape} does not have the kernel {geo.kernel}")
    if any(n < 0 for n in geo.output_size(_spatial(x, geo))):
        raise ValueError(f"padding {geo.padding} is too large for input {input.shape} and weight "
                         f"{weight.shape}: the output size would be negative")
    y = apply(C.ConvTranspose, x, weight, geo=geo)
    y = _add_bias(y, bias, geo, weight.shape[1] * geo.groups)
    return y.squeeze(0) if unbatched else y


def _replace_output_padding(geo: ConvGeometry, op: tuple[int, ...]) -> ConvGeometry:
    from dataclasses import replace
    return replace(geo, output_padding=A.output_padding(op, geo.stride, geo.dilation))


def _conv(rank: int, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
          padding: Any, dilation: Any, groups: Any, data_format: str,
          input_dilation: Any) -> Tensor:
    _check_weight(weight, rank)
    geo = A.conv_geometry(rank, tuple(weight.shape[2:]), stride, padding, dilation, groups,
                          input_dilation=input_dilation, data_format=data_format)
    return conv_nd(input, weight, bias, geo)


def _conv_transpose(rank: int, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
                    padding: Any, output_padding: Any, groups: Any, dilation: Any,
                    data_format: str) -> Tensor:
    _check_weight(weight, rank)
    geo = A.transpose_geometry(rank, tuple(weight.shape[2:]), stride, padding, output_padding,
                               groups, dilation, data_format=data_format)
    return conv_transpose_nd(input, weight, bias, geo)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
           data_format: str = "channels_first", input_dilation: Any = 1) -> Tensor:
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``: input (N, C_in, L) or (C_in, L)
    — (N, L, C_in) channels-last; weight (C_out, C_in/groups, k); output (N, C_out, L_out).
    padding: int, (p,), ((lo, hi),), "same" or "valid". Sizes as ``conv2d``'s per axis."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, data_format,
                 input_dilation)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
           data_format: str = "channels_first", input_dilation: Any = 1) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    input (N, C_in, H, W) or unbatched (C_in, H, W) — (N, H, W, C_in) with
    ``data_format="channels_last"``; weight (C_out, C_in/groups, kh, kw); bias (C_out,).
    padding: int, (ph, pw), ((top, bottom), (left, right)), "same" or "valid".
    input_dilation (keyword-only; brainstate's / JAX's lhs_dilation): input_dilation - 1 zeros
    between input pixels, so the input is (H - 1) * input_dilation + 1 high before it is padded.
    Output (N, C_out, H_out, W_out) with
    H_out = ((H - 1) * input_dilation + 1 + top + bottom - d*(kh-1) - 1) // stride + 1.
    """
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, data_format,
                 input_dilation)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
           data_format: str = "channels_first", input_dilation: Any = 1) -> Tensor:
    """3-D cross-correlation, as ``torch.nn.functional.conv3d``: input (N, C_in, D, H, W) or
    (C_in, D, H, W) — (N, D, H, W, C_in) channels-last; weight (C_out, C_in/groups, kd, kh, kw).
    padding: int, (pd, ph, pw), three (lo, hi) pairs, "same" or "valid"."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, data_format,
                 input_dilation)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1, *, data_format: str = "channels_first") -> Tensor:
    """1-D transposed convolution, as PyTorch's: weight (C_in, C_out/groups, k);
    L_out = (L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1."""
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, data_format)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1, *, data_format: str = "channels_first") -> Tensor:
    """2-D transposed convolution (the gradient of conv2d w.r.t. its input), as PyTorch's.

    input (N, C_in, H, W); weight (C_in, C_out/groups, kh, kw); output (N, C_out, H_out, W_out)
    with H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1.
    """
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, data_format)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1, *, data_format: str = "channels_first") -> Tensor:
    """3-D transposed convolution, as PyTorch's: weight (C_in, C_out/groups, kd, kh, kw)."""
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, data_format)

"""Convolution and transposed convolution (NCHW / OIHW like PyTorch; channels-last on request)."""

from __future__ import annotations

from typing import Any

from lucid.backends.contract import conv_output_size, conv_transpose_output_size, dilated_size
from lucid.nn import conv_args as A
from lucid.ops import conv as C
from lucid.tensor import Tensor, apply


def _check_conv_input(x: Tensor, weight: Tensor, groups: int, channels_last: bool,
                      transposed: bool) -> tuple[Tensor, bool]:
    """Validate ranks, channels and groups; returns the batched input and whether a batch was
    added. groups is already a positive int."""
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("conv input and weight must be lucid Tensors")
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (out, in/groups, kh, kw), got shape {weight.shape}")
    if x.ndim not in (3, 4):
        layout = "(N, H, W, C) or (H, W, C)" if channels_last else "(N, C, H, W) or (C, H, W)"
        raise ValueError(f"expected a 3-D or 4-D input {layout}, got shape {x.shape}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    c = x.shape[3] if channels_last else x.shape[1]
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if c != expected:
        raise ValueError(f"expected input with {expected} channels (weight {weight.shape}, "
                         f"groups={groups}), got input of shape {x.shape}")
    if transposed:
        A.groups(groups, weight.shape[0], weight.shape[1] * groups)
    else:
        A.groups(groups, c, weight.shape[0])
    return x, unbatched


def _add_bias(y: Tensor, bias: Tensor | None, channels_last: bool, out_ch: int) -> Tensor:
    if bias is None:
        return y
    if bias.shape != (out_ch,):
        raise ValueError(f"bias must have shape ({out_ch},), got {bias.shape}")
    return y + (bias if channels_last else bias.reshape(out_ch, 1, 1))


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
    last = A.data_format(data_format)
    groups = A.positive_int(groups, "groups")
    stride, dilation = A.pair(stride, "stride"), A.pair(dilation, "dilation")
    in_dil = A.pair(input_dilation, "input_dilation")
    x, unbatched = _check_conv_input(input, weight, groups, last, transposed=False)
    k = (weight.shape[2], weight.shape[3])
    lo, hi = A.resolve_padding(padding, k, dilation, stride)
    hw = (x.shape[1], x.shape[2]) if last else (x.shape[2], x.shape[3])
    for n, lo_, hi_, kk, d, di in zip(hw, lo, hi, k, dilation, in_dil):
        if conv_output_size(n, kk, 1, lo_, hi_, d, di) < 1:
            dilated = f" dilated to {dilated_size(n, di)} and" if di > 1 else ""
            raise ValueError(f"input of shape {input.shape}{dilated} padded to "
                             f"{dilated_size(n, di) + lo_ + hi_} is smaller than the dilated "
                             f"kernel ({d * (kk - 1) + 1}) of weight {weight.shape} with "
                             f"dilation {dilation}")
    w = weight.astype(x.dtype) if weight.dtype != x.dtype else weight
    y = apply(C.Conv2d, x, w, stride=stride, lo=lo, hi=hi, dilation=dilation, groups=groups,
              channels_last=last, input_dilation=in_dil)
    y = _add_bias(y, bias, last, weight.shape[0])
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1, *, data_format: str = "channels_first") -> Tensor:
    """2-D transposed convolution (the gradient of conv2d w.r.t. its input), as PyTorch's.

    input (N, C_in, H, W); weight (C_in, C_out/groups, kh, kw); output (N, C_out, H_out, W_out)
    with H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1.
    """
    last = A.data_format(data_format)
    groups = A.positive_int(groups, "groups")
    stride, dilation = A.pair(stride, "stride"), A.pair(dilation, "dilation")
    padding = A.pair(padding, "padding", minimum=0)
    output_padding = A.output_padding(output_padding, stride, dilation)
    x, unbatched = _check_conv_input(input, weight, groups, last, transposed=True)
    hw = (x.shape[1], x.shape[2]) if last else (x.shape[2], x.shape[3])
    k = (weight.shape[2], weight.shape[3])
    for n, kk, s, p, q, d in zip(hw, k, stride, padding, output_padding, dilation):
        if conv_transpose_output_size(n, kk, s, p, q, d) <= 0:
            raise ValueError(f"padding {padding} is too large for input {input.shape} and weight "
                             f"{weight.shape}: the output would be empty")
    w = weight.astype(x.dtype) if weight.dtype != x.dtype else weight
    y = apply(C.ConvTranspose2d, x, w, stride=stride, padding=padding,
              output_padding=output_padding, dilation=dilation, groups=groups, channels_last=last)
    y = _add_bias(y, bias, last, weight.shape[1] * groups)
    return y.squeeze(0) if unbatched else y

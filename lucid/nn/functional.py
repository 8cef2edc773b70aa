"""Stateless functions over Tensors: convolution, padding, activations, pooling, losses."""

from __future__ import annotations

from typing import Any

from lucid import random as _random
from lucid.nn import conv_args as A
from lucid.ops import conv as C
from lucid.tensor import Tensor, apply, concatenate, minimum, where
from lucid.ops import movement as M

# ---------------------------------------------------------------------------------------------
# convolution


def _check_conv_input(x: Tensor, weight: Tensor, groups: int, channels_last: bool,
                      transposed: bool) -> tuple[Tensor, bool]:
    """Validate ranks and channels; returns the batched input and whether a batch was added."""
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
    if not transposed and weight.shape[0] % groups:
        raise ValueError(f"weight out-channels {weight.shape[0]} not divisible by groups={groups}")
    return x, unbatched


def _add_bias(y: Tensor, bias: Tensor | None, channels_last: bool, out_ch: int) -> Tensor:
    if bias is None:
        return y
    if bias.shape != (out_ch,):
        raise ValueError(f"bias must have shape ({out_ch},), got {bias.shape}")
    return y + (bias if channels_last else bias.reshape(out_ch, 1, 1))


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
           data_format: str = "channels_first") -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    input (N, C_in, H, W) or unbatched (C_in, H, W) — (N, H, W, C_in) with
    ``data_format="channels_last"``; weight (C_out, C_in/groups, kh, kw); bias (C_out,).
    padding: int, (ph, pw), ((top, bottom), (left, right)), "same" or "valid".
    Output (N, C_out, H_out, W_out) with H_out = (H + top + bottom - d*(kh-1) - 1)//stride + 1.
    """
    last = A.data_format(data_format)
    groups = A.positive_int(groups, "groups")
    stride, dilation = A.pair(stride, "stride"), A.pair(dilation, "dilation")
    x, unbatched = _check_conv_input(input, weight, groups, last, transposed=False)
    k = (weight.shape[2], weight.shape[3])
    lo, hi = A.resolve_padding(padding, k, dilation, stride)
    hw = (x.shape[1], x.shape[2]) if last else (x.shape[2], x.shape[3])
    for n, lo_, hi_, kk, d in zip(hw, lo, hi, k, dilation):
        if n + lo_ + hi_ < d * (kk - 1) + 1:
            raise ValueError(f"input of shape {input.shape} padded to {n + lo_ + hi_} is smaller "
                             f"than the dilated kernel ({d * (kk - 1) + 1}) of weight "
                             f"{weight.shape} with dilation {dilation}")
    w = weight.astype(x.dtype) if weight.dtype != x.dtype else weight
    y = apply(C.Conv2d, x, w, stride=stride, lo=lo, hi=hi, dilation=dilation, groups=groups,
              channels_last=last)
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
    if weight.shape[0] % groups:
        raise ValueError(f"weight in-channels {weight.shape[0]} not divisible by groups={groups}")
    hw = (x.shape[1], x.shape[2]) if last else (x.shape[2], x.shape[3])
    k = (weight.shape[2], weight.shape[3])
    for n, s, p, d, kk, q in zip(hw, stride, padding, dilation, k, output_padding):
        if (n - 1) * s - 2 * p + d * (kk - 1) + q + 1 <= 0:
            raise ValueError(f"padding {padding} is too large for input {input.shape} and weight "
                             f"{weight.shape}: the output would be empty")
    w = weight.astype(x.dtype) if weight.dtype != x.dtype else weight
    y = apply(C.ConvTranspose2d, x, w, stride=stride, padding=padding,
              output_padding=output_padding, dilation=dilation, groups=groups, channels_last=last)
    y = _add_bias(y, bias, last, weight.shape[1] * groups)
    return y.squeeze(0) if unbatched else y


# ---------------------------------------------------------------------------------------------
# padding


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` axes, PyTorch-style: ``pad = (left, right, top, bottom, ...)``
    starting from the last axis. Modes: constant (negative pads crop), reflect (pad < size),
    replicate, circular (pad <= size)."""
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad must be a flat sequence of (lo, hi) pairs for at most {input.ndim} "
                         f"axes, got {pad!r}")
    if mode not in ("constant", "zeros", "reflect", "replicate", "circular"):
        raise ValueError(f"pad mode must be constant, reflect, replicate or circular, got {mode!r}")
    x = input
    for i in range(len(pad) // 2):
        axis = input.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        x = _pad_axis(x, axis, lo, hi, mode, value)
    return x


def _take(x: Tensor, axis: int, sl: slice) -> Tensor:
    return x[(slice(None),) * axis + (sl,)]


def _pad_axis(x: Tensor, axis: int, lo: int, hi: int, mode: str, value: float) -> Tensor:
    n = x.shape[axis]
    if mode in ("constant", "zeros"):
        if lo < 0 or hi < 0:
            x = _take(x, axis, slice(max(0, -lo), n - max(0, -hi)))
            lo, hi = max(0, lo), max(0, hi)
        if lo == 0 and hi == 0:
            return x
        widths = tuple((lo, hi) if a == axis else (0, 0) for a in range(x.ndim))
        return apply(M.Pad, x, widths=widths, value=value)
    if lo < 0 or hi < 0:
        raise ValueError(f"{mode} padding must be >= 0, got ({lo}, {hi}) on axis {axis}")
    if mode == "reflect" and (lo >= n or hi >= n):
        raise ValueError(f"reflect padding ({lo}, {hi}) must be less than the input size {n} on "
                         f"axis {axis} (input shape {x.shape})")
    if mode == "circular" and (lo > n or hi > n):
        raise ValueError(f"circular padding ({lo}, {hi}) must be at most the input size {n} on "
                         f"axis {axis} (input shape {x.shape})")
    parts = []
    if lo:
        if mode == "reflect":
            parts.append(_take(x, axis, slice(lo, 0, -1)))
        elif mode == "replicate":
            parts.append(_take(x, axis, slice(0, 1)).broadcast_to(_with(x.shape, axis, lo)))
        else:
            parts.append(_take(x, axis, slice(n - lo, n)))
    parts.append(x)
    if hi:
        if mode == "reflect":
            stop = n - 2 - hi
            parts.append(_take(x, axis, slice(n - 2, stop if stop >= 0 else None, -1)))
        elif mode == "replicate":
            parts.append(_take(x, axis, slice(n - 1, n)).broadcast_to(_with(x.shape, axis, hi)))
        else:
            parts.append(_take(x, axis, slice(0, hi)))
    return concatenate(parts, axis) if len(parts) > 1 else x


def _with(shape: tuple, axis: int, size: int) -> tuple:
    return shape[:axis] + (size,) + shape[axis + 1:]


# ---------------------------------------------------------------------------------------------
# activations


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return where(x > 0, x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha·(exp(x) − 1) otherwise (exp of min(x, 0), so large x never overflows)."""
    return where(x > 0, x, (minimum(x, 0.0).exp() - 1.0) * alpha)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Φ(x); ``approximate="tanh"`` uses PyTorch's tanh approximation."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.7978845608028654).tanh())
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + (x * 0.7071067811865476).erf())


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return x.log_softmax(dim)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., in) @ weight (out, in).T + bias (out,)."""
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input features {x.shape[-1]} (shape {x.shape}) do not match "
                         f"weight {weight.shape}")
    y = x @ weight.T
    return y if bias is None else y + bias


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p (mask from ``lucid.random``), scale the rest 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    mask = _random.bernoulli_mask(x.shape, 1.0 - p, device=x.backend)
    return x * (mask * (1.0 / (1.0 - p))).astype(x.dtype)


# ---------------------------------------------------------------------------------------------
# pooling (strided window taps, then a max or a sum over them)


def _pool_geometry(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, int]:
    """(output size, extra high-side padding) along one axis, PyTorch's rule for ceil_mode: the
    last window must start inside the input or the low padding."""
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise ValueError(f"pooling window {k} (dilation {d}) is larger than the padded input "
                         f"{n + 2 * p}")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
    return out, extra


def _taps(x: Tensor, k, s, d, out) -> Tensor:
    """Stack of the kh*kw strided views: (kh*kw, N, C, Ho, Wo)."""
    views = []
    for a in range(k[0]):
        for b in range(k[1]):
            r, c = a * d[0], b * d[1]
            views.append(x[..., r:r + s[0] * (out[0] - 1) + 1:s[0],
                           c:c + s[1] * (out[1] - 1) + 1:s[1]])
    return concatenate([v.unsqueeze(0) for v in views], 0)


def _pool_args(x, kernel_size, stride, padding, dilation):
    k = A.pair(kernel_size, "kernel_size")
    s = k if stride is None else A.pair(stride, "stride")
    p = A.pair(padding, "padding", minimum=0)
    d = A.pair(dilation, "dilation")
    for pp, kk in zip(p, k):
        if pp > kk // 2:
            raise ValueError(f"pad {p} should be at most half of the kernel size {k}")
    if x.ndim not in (3, 4):
        raise ValueError(f"pooling expects (N, C, H, W) or (C, H, W) input, got shape {x.shape}")
    return k, s, p, d


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max over windows of (N, C, H, W); padding counts as -inf; the gradient goes to one maximum
    per window."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, dilation)
    (ho, eh), (wo, ew) = (_pool_geometry(n, kk, ss, pp, dd, ceil_mode) for n, kk, ss, pp, dd in
                          zip(x.shape[-2:], k, s, p, d))
    xp = pad(x, (p[1], p[1] + ew, p[0], p[0] + eh), value=float("-inf"))
    from lucid.ops.pool import MaxOverTaps
    return apply(MaxOverTaps, _taps(xp, k, s, d, (ho, wo)))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, H, W). The divisor counts zero padding when count_include_pad;
    window parts beyond the padded input (ceil_mode) never count."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, 1)
    (ho, eh), (wo, ew) = (_pool_geometry(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in
                          zip(x.shape[-2:], k, s, p))
    xp = pad(x, (p[1], p[1] + ew, p[0], p[0] + eh))
    total = _taps(xp, k, s, d, (ho, wo)).sum(axis=0)
    if not (eh or ew or (not count_include_pad and any(p))):
        return total / float(k[0] * k[1])
    from lucid.creation import ones
    h, w = x.shape[-2:]
    if count_include_pad:
        mask = pad(ones(h + 2 * p[0], w + 2 * p[1], device=x.backend, dtype=x.dtype), (0, ew, 0, eh))
    else:
        mask = pad(ones(h, w, device=x.backend, dtype=x.dtype), (p[1], p[1] + ew, p[0], p[0] + eh))
    count = _taps(mask, k, s, d, (ho, wo)).sum(axis=0)
    return total / count


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over the adaptive bins start = floor(i*H/out), end = ceil((i+1)*H/out) (PyTorch)."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    h, w = x.shape[-2:]
    oh, ow = (h if o is None else o for o in output_size)
    if h % oh == 0 and w % ow == 0:
        lead = x.shape[:-2]
        return x.reshape(lead + (oh, h // oh, ow, w // ow)).mean(axis=(-3, -1))
    rows = []
    for i in range(oh):
        r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        cols = [x[..., r0:r1, (j * w) // ow:-(-((j + 1) * w) // ow)].mean(axis=(-2, -1))
                for j in range(ow)]
        rows.append(concatenate([c.unsqueeze(-1) for c in cols], -1).unsqueeze(-2))
    return concatenate(rows, -2)


# ---------------------------------------------------------------------------------------------
# normalisation


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) per channel. Training: batch statistics (biased variance) and, when
    running buffers are given, running = (1 - momentum)*running + momentum*batch (unbiased var)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        n = x.numel() // x.shape[1]
        if n < 2:
            raise ValueError(f"batch_norm in training needs more than 1 value per channel, got "
                             f"input of shape {x.shape}")
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) * (x - mean)).mean(axis=axes, keepdims=True)
        if running_mean is not None:
            from lucid.autograd import no_grad
            with no_grad():
                m = mean.detach().reshape(-1)
                v = var.detach().reshape(-1) * (n / (n - 1))
                running_mean.copy_(running_mean * (1 - momentum) + m * momentum)
                running_var.copy_(running_var * (1 - momentum) + v * momentum)
    else:
        if running_mean is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


# ---------------------------------------------------------------------------------------------
# losses

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy of logits (N, C) with integer class targets (N,), via a stable log-softmax.
    With label_smoothing ε: (1-ε)·(-log p_target) + ε·mean_c(-log p_c)."""
    if input.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {input.shape}")
    if not isinstance(target, Tensor):
        target = Tensor(target, device=input.backend)
    if target.dtype.is_floating or target.shape != (input.shape[0],):
        raise ValueError(f"cross_entropy expects integer targets of shape ({input.shape[0]},), "
                         f"got {target.dtype} {target.shape}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    logp = input.log_softmax(-1)
    from lucid.creation import arange
    nll = -logp[arange(input.shape[0], device=input.backend), target]
    if label_smoothing:
        nll = nll * (1.0 - label_smoothing) - logp.mean(axis=-1) * label_smoothing
    return _reduce(nll, reduction)


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    from lucid.creation import arange
    return _reduce(-input[arange(input.shape[0], device=input.backend), target], reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    if input.shape != target.shape:
        raise ValueError(f"mse_loss needs equal shapes, got {input.shape} and {target.shape}")
    d = input - target
    return _reduce(d * d, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Stable form: max(x, 0) - x*y + log(1 + exp(-|x|)) (with pos_weight p: the log term of
    the positive part is scaled by p)."""
    if input.shape != target.shape:
        raise ValueError(f"target shape {target.shape} must equal input shape {input.shape}")
    softplus_neg = (1.0 + (-input.abs()).exp()).log() + (-input).relu()   # log(1 + exp(-x))
    if pos_weight is None:
        loss = (1.0 - target) * input + softplus_neg
    else:
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * softplus_neg
    return _reduce(loss, reduction)

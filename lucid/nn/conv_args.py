"""Normalising and validating convolution arguments, shared by ``functional`` and the layers.

Every check raises before any work: ``TypeError`` for a wrong type, ``ValueError`` for a bad
value, each naming the value and the rule.
"""

from __future__ import annotations

import numbers
from typing import Any

Pair = tuple[int, int]
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
DATA_FORMATS = {"channels_first": False, "nchw": False, "channels_last": True, "nhwc": True}


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def positive_int(v: Any, name: str) -> int:
    if not _is_int(v):
        raise TypeError(f"{name} must be an int, got {v!r} ({type(v).__name__})")
    if v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return int(v)


def pair(v: Any, name: str, minimum: int = 1) -> Pair:
    """An int or a 2-sequence of ints, each >= minimum -> (h, w)."""
    if _is_int(v):
        v = (v, v)
    elif isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair (length 2), got {len(v)} "
                             f"values: {v!r}")
        if not all(_is_int(x) for x in v):
            raise TypeError(f"{name} must contain ints, got {v!r}")
    else:
        raise TypeError(f"{name} must be an int or a tuple of 2 ints, got {v!r}")
    if any(x < minimum for x in v):
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {rule}, got {tuple(v)}")
    return (int(v[0]), int(v[1]))


def groups(value: Any, in_channels: int, out_channels: int) -> int:
    """groups: a positive int that divides both channel counts."""
    g = positive_int(value, "groups")
    for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if n % g:
            raise ValueError(f"{name}={n} must be divisible by groups={g}")
    return g


def padding_spec(padding: Any, stride: Pair = (1, 1)) -> str | tuple[Pair, Pair]:
    """Validate a padding argument without the kernel: returns "same"/"valid" or (lo, hi).
    "same" needs stride 1 (PyTorch's rule; ``same_padding`` gives TF/Keras's strided 'SAME')."""
    if isinstance(padding, str):
        key = padding.lower()
        if key not in ("same", "valid"):
            raise ValueError(f"padding string must be 'same' or 'valid', got {padding!r}")
        if key == "same" and tuple(stride) != (1, 1):
            raise ValueError(
                f"padding='same' needs stride 1, got stride {tuple(stride)} (PyTorch's rule). For "
                "TF/Keras/JAX 'SAME' with a stride (output ceil(H / stride), the extra pixel "
                "bottom/right) pass padding=lucid.nn.utils.same_padding((H, W), kernel_size, "
                "stride, dilation)")
        return key
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        return (padding, padding), (padding, padding)
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must have length 2, (ph, pw) or ((top, bottom), "
                             f"(left, right)), got {len(padding)} values: {padding!r}")
        if all(_is_int(p) for p in padding):
            p = pair(padding, "padding", minimum=0)
            return p, p
        if all(isinstance(p, (tuple, list)) for p in padding):
            (top, bottom), (left, right) = (pair(p, "padding per side", 0) for p in padding)
            return (top, left), (bottom, right)
    raise TypeError(f"padding must be an int, (ph, pw), ((top, bottom), (left, right)), 'same' "
                    f"or 'valid', got {padding!r}")


def resolve_padding(padding: Any, kernel: Pair, dilation: Pair, stride: Pair) -> tuple[Pair, Pair]:
    """(lo, hi) per spatial axis for a user padding argument. "same" pads d*(k-1) in total with the
    extra pixel at the bottom/right (PyTorch's rule) and needs stride 1."""
    spec = padding_spec(padding, stride)
    if spec == "valid":
        return (0, 0), (0, 0)
    if spec == "same":
        th, tw = (d * (k - 1) for d, k in zip(dilation, kernel))
        return (th // 2, tw // 2), (th - th // 2, tw - tw // 2)
    assert not isinstance(spec, str)
    return spec


def same_padding(input_size: Any, kernel_size: Any, stride: Any = 1,
                 dilation: Any = 1) -> tuple[Pair, Pair]:
    """TF/Keras/JAX 'SAME' padding for an input of ``input_size`` (H, W) (or one int for both):
    ((top, bottom), (left, right)), usable as ``padding=``. The output is ceil(H / stride); the
    total pad max((ceil(H / s) - 1) * s + d * (k - 1) + 1 - H, 0) puts its extra pixel at the
    bottom/right. With stride 1 it equals padding="same"."""
    size = pair(input_size, "input_size")
    k, s, d = pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(dilation, "dilation")
    sides = []
    for n, kk, ss, dd in zip(size, k, s, d):
        total = max((-(-n // ss) - 1) * ss + dd * (kk - 1) + 1 - n, 0)
        sides.append((total // 2, total - total // 2))
    return sides[0], sides[1]


def padding_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode.lower() not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    return mode.lower()


def data_format(fmt: Any) -> bool:
    """True for channels-last input."""
    if not isinstance(fmt, str) or fmt.lower() not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got {fmt!r}")
    return DATA_FORMATS[fmt.lower()]


def output_padding(value: Any, stride: Pair, dilation: Pair) -> Pair:
    """A transposed conv's output_padding: >= 0 and smaller than stride or dilation (PyTorch)."""
    op = pair(value, "output_padding", minimum=0)
    for q, s, d in zip(op, stride, dilation):
        if q >= max(s, d):
            raise ValueError(f"output_padding {op} must be smaller than stride {stride} or "
                             f"dilation {dilation}")
    return op

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
            raise ValueError(f"{name} must be an int or a pair (h, w), got {len(v)} values: {v!r}")
        if not all(_is_int(x) for x in v):
            raise TypeError(f"{name} must contain ints, got {v!r}")
    else:
        raise TypeError(f"{name} must be an int or a tuple of 2 ints, got {v!r}")
    if any(x < minimum for x in v):
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {rule}, got {tuple(v)}")
    return (int(v[0]), int(v[1]))


def padding_spec(padding: Any) -> str | tuple[Pair, Pair]:
    """Validate a padding argument without the kernel: returns "same"/"valid" or (lo, hi)."""
    if isinstance(padding, str):
        key = padding.lower()
        if key not in ("same", "valid"):
            raise ValueError(f"padding string must be 'same' or 'valid', got {padding!r}")
        return key
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        return (padding, padding), (padding, padding)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
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
    spec = padding_spec(padding)
    if spec == "valid":
        return (0, 0), (0, 0)
    if spec == "same":
        if stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        lo = tuple(t // 2 for t in total)
        return lo, tuple(t - low for t, low in zip(total, lo))
    return spec


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

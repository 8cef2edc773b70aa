"""Convolution arguments, normalised once: the geometry record every convolution reads.

``ConvGeometry`` holds one convolution's geometry for a given rank (1, 2 or 3 spatial axes):
kernel, stride, per-side padding, dilation, input dilation, groups, output padding, padding mode
and layout. A layer makes it once, at construction; a functional call makes it from its
arguments and the weight's kernel; the output-size formulas (``backends.contract``) and the ops
read it. Every check raises before any work: ``TypeError`` for a wrong type, ``ValueError`` for a
bad value, each naming the argument, the value and the rule (for a tuple, the rank's length).
"""

from __future__ import annotations

import numbers
from typing import Any

from lucid.backends.contract import ConvGeometry

Pair = tuple[int, int]
Ints = tuple[int, ...]
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
DATA_FORMATS = {"channels_first": False, "nchw": False, "ncl": False, "ncdhw": False,
                "channels_last": True, "nhwc": True, "nlc": True, "ndhwc": True}
_WORD = {1: "1-tuple", 2: "pair", 3: "triple"}
# The input layouts per rank, for error messages.
_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def layout(rank: int, channels_last: bool) -> str:
    """The input layouts a rank-``rank`` conv takes, e.g. ``(N, C, L) or (C, L)``."""
    sp = ", ".join(_SPATIAL[rank])
    if channels_last:
        return f"(N, {sp}, C) or ({sp}, C)"
    return f"(N, C, {sp}) or (C, {sp})"


def positive_int(v: Any, name: str) -> int:
    if not _is_int(v):
        raise TypeError(f"{name} must be an int, got {v!r} ({type(v).__name__})")
    if v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return int(v)


def ntuple(v: Any, name: str, rank: int, minimum: int = 1) -> Ints:
    """An int or a ``rank``-sequence of ints, each >= minimum -> a ``rank``-tuple."""
    word = _WORD.get(rank, f"{rank}-tuple")
    if _is_int(v):
        v = (v,) * rank
    elif isinstance(v, (tuple, list)):
        if len(v) != rank:
            raise ValueError(f"{name} must be an int or a {word} (length {rank}), got {len(v)} "
                             f"values: {v!r}")
        if not all(_is_int(x) for x in v):
            raise TypeError(f"{name} must contain ints, got {v!r}")
    else:
        raise TypeError(f"{name} must be an int or a tuple of {rank} ints, got {v!r}")
    if any(x < minimum for x in v):
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {rule}, got {tuple(v)}")
    return tuple(int(x) for x in v)


def pair(v: Any, name: str, minimum: int = 1) -> Pair:
    """An int or a 2-sequence of ints, each >= minimum -> (h, w)."""
    h, w = ntuple(v, name, 2, minimum)
    return h, w


def groups(value: Any, in_channels: int, out_channels: int) -> int:
    """groups: a positive int that divides both channel counts."""
    g = positive_int(value, "groups")
    for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if n % g:
            raise ValueError(f"{name}={n} must be divisible by groups={g}")
    return g


def padding_spec(padding: Any, stride: Ints = (1, 1), rank: int = 2) -> str | tuple[Ints, Ints]:
    """Validate a padding argument without the kernel: returns "same"/"valid" or (lo, hi), one
    entry per spatial axis. Forms: an int, ``rank`` ints, ``rank`` (lo, hi) pairs, "same" (needs
    stride 1, PyTorch's rule; ``same_padding`` gives TF/Keras's strided 'SAME') or "valid"."""
    if isinstance(padding, str):
        key = padding.lower()
        if key not in ("same", "valid"):
            raise ValueError(f"padding string must be 'same' or 'valid', got {padding!r}")
        if key == "same" and any(s != 1 for s in stride):
            sizes = ", ".join(_SPATIAL[rank]) if rank in _SPATIAL else "sizes"
            raise ValueError(
                f"padding='same' needs stride 1, got stride {tuple(stride)} (PyTorch's rule). For "
                f"TF/Keras/JAX 'SAME' with a stride (output ceil(size / stride), the extra pixel "
                f"at the high end) pass padding=lucid.nn.utils.same_padding(({sizes}), "
                f"kernel_size, stride, dilation)")
        return key
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        return (int(padding),) * rank, (int(padding),) * rank
    if isinstance(padding, (tuple, list)):
        per_side = "((top, bottom), (left, right))" if rank == 2 else \
            "((lo, hi),)" if rank == 1 else f"{rank} (lo, hi) pairs"
        if len(padding) != rank:
            ints = "(ph, pw)" if rank == 2 else f"{rank} ints"
            raise ValueError(f"padding must have length {rank}, {ints} or {per_side}, got "
                             f"{len(padding)} values: {padding!r}")
        if all(_is_int(p) for p in padding):
            p = ntuple(padding, "padding", rank, minimum=0)
            return p, p
        if all(isinstance(p, (tuple, list)) for p in padding):
            sides = [pair(p, "padding per side", 0) for p in padding]
            return tuple(s[0] for s in sides), tuple(s[1] for s in sides)
    ints = "(ph, pw)" if rank == 2 else f"{rank} ints"
    raise TypeError(f"padding must be an int, {ints}, per-side pairs, 'same' or 'valid', got "
                    f"{padding!r}")


def resolve_padding(padding: Any, kernel: Ints, dilation: Ints, stride: Ints) -> tuple[Ints, Ints]:
    """(lo, hi) per spatial axis for a user padding argument. "same" pads d*(k-1) in total with the
    extra pixel at the high end (PyTorch's rule) and needs stride 1."""
    return _resolved(padding_spec(padding, stride, len(kernel)), kernel, dilation)


def _resolved(spec: str | tuple[Ints, Ints], kernel: Ints,
              dilation: Ints) -> tuple[Ints, Ints]:
    rank = len(kernel)
    if spec == "valid":
        return (0,) * rank, (0,) * rank
    if spec == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    assert not isinstance(spec, str)
    return spec


def same_padding(input_size: Any, kernel_size: Any, stride: Any = 1, dilation: Any = 1, *,
                 rank: int = 2) -> tuple[Pair, ...]:
    """TF/Keras/JAX 'SAME' padding for an input of ``input_size`` ((H, W), or one int for every
    axis; ``rank=1`` takes (L,), ``rank=3`` (D, H, W)): ((lo, hi), ...) one pair per axis, usable
    as ``padding=``. The output is ceil(size / stride); the total pad
    max((ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0) puts its extra pixel at the high end.
    With stride 1 it equals padding="same"."""
    size = ntuple(input_size, "input_size", rank)
    k, s = ntuple(kernel_size, "kernel_size", rank), ntuple(stride, "stride", rank)
    d = ntuple(dilation, "dilation", rank)
    sides = []
    for n, kk, ss, dd in zip(size, k, s, d):
        total = max((-(-n // ss) - 1) * ss + dd * (kk - 1) + 1 - n, 0)
        sides.append((total // 2, total - total // 2))
    return tuple(sides)


def padding_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode.lower() not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    return mode.lower()


def data_format(fmt: Any) -> bool:
    """True for channels-last input."""
    if not isinstance(fmt, str) or fmt.lower() not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got {fmt!r}")
    return DATA_FORMATS[fmt.lower()]


def output_padding(value: Any, stride: Ints, dilation: Ints) -> Ints:
    """A transposed conv's output_padding: >= 0 and smaller than stride or dilation (PyTorch)."""
    op = ntuple(value, "output_padding", len(stride), minimum=0)
    for q, s, d in zip(op, stride, dilation):
        if q >= max(s, d):
            raise ValueError(f"output_padding {op} must be smaller than stride {stride} or "
                             f"dilation {dilation}")
    return op


# The checks under names the geometry's fields do not shadow.
_check_mode, _check_format, _check_output_padding = padding_mode, data_format, output_padding


def _shown_padding(padding: Any, spec: Any) -> Any:
    """The padding as the user gave it (lower-cased strings, tuples for sequences): for repr."""
    if isinstance(spec, str):
        return spec
    if _is_int(padding):
        return int(padding)
    return tuple(tuple(p) if isinstance(p, (tuple, list)) else p for p in padding)


def conv_geometry(rank: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                  dilation: Any = 1, groups: Any = 1, *, input_dilation: Any = 1,
                  padding_mode: Any = "zeros",
                  data_format: Any = "channels_first") -> ConvGeometry:
    """A convolution's geometry from PyTorch-style arguments (groups checked positive here,
    against the channels by the caller)."""
    k = ntuple(kernel_size, "kernel_size", rank)
    s = ntuple(stride, "stride", rank)
    d = ntuple(dilation, "dilation", rank)
    di = ntuple(input_dilation, "input_dilation", rank)
    g = positive_int(groups, "groups")
    spec = padding_spec(padding, s, rank)
    lo, hi = _resolved(spec, k, d)
    mode = _check_mode(padding_mode)
    if di != (1,) * rank and mode != "zeros":
        # Reflecting or wrapping the zeros of a dilated input has no agreed meaning.
        raise ValueError(f"input_dilation {di} needs padding_mode='zeros', got {mode!r}")
    last = _check_format(data_format)
    return ConvGeometry(rank, k, s, lo, hi, d, di, g, (0,) * rank, mode, last, False,
                        _shown_padding(padding, spec))


def transpose_geometry(rank: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                       output_padding: Any = 0, groups: Any = 1, dilation: Any = 1, *,
                       padding_mode: Any = "zeros", data_format: Any = "channels_first",
                       name: str = "ConvTranspose") -> ConvGeometry:
    """A transposed convolution's geometry (PyTorch's arguments; padding ints only)."""
    k = ntuple(kernel_size, "kernel_size", rank)
    s = ntuple(stride, "stride", rank)
    d = ntuple(dilation, "dilation", rank)
    g = positive_int(groups, "groups")
    if isinstance(padding, str):            # a ValueError, as Conv2d's bad padding strings
        ints = "(ph, pw)" if rank == 2 else f"{rank} ints"
        msg = f"{name}{rank}d does not take padding={padding!r}; give an int or {ints}"
        raise ValueError(msg)  # noqa: TRY004
    p = ntuple(padding, "padding", rank, minimum=0)
    op = _check_output_padding(output_padding, s, d)
    mode = _check_mode(padding_mode)
    if mode != "zeros":
        raise ValueError(f"{name}{rank}d supports only padding_mode='zeros', got {mode!r}")
    last = _check_format(data_format)
    return ConvGeometry(rank, k, s, p, p, d, (1,) * rank, g, op, mode, last, True,
                        _shown_padding(padding, p))

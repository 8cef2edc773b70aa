"""Channel dropout layers, Unflatten and constant 2-D padding layers."""

from __future__ import annotations

from collections.abc import Sequence

from lucid.nn.functional import channel_dropout as CD
from lucid.nn.functional.activation import check_dropout_p
from lucid.nn.functional.padding import pad
from lucid.nn.module import Module
from lucid.tensor import Tensor


class _DropoutNd(Module):
    spatial = 1

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_dropout_p(p)

    def forward(self, x: Tensor) -> Tensor:
        return CD._channel_dropout(x, self.p, self.training, self.spatial)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of (N, C, L) or (C, L) with probability p in training."""

    spatial = 1


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) (or, as PyTorch, (N, C, L)) with probability p in
    training: Keras's SpatialDropout2D."""

    spatial = 2


class Dropout3d(_DropoutNd):
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) with probability p in
    training."""

    spatial = 3


class Unflatten(Module):
    """Axis ``dim`` of the input becomes ``unflattened_size`` (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        size = tuple(unflattened_size)
        if not size or any(isinstance(s, bool) or not isinstance(s, int) for s in size) or \
                sum(s == -1 for s in size) > 1 or any(s < -1 or s == 0 for s in size):
            raise ValueError(f"unflattened_size must be positive ints (one may be -1), got "
                             f"{unflattened_size!r}")
        self.dim, self.unflattened_size = int(dim), size

    def forward(self, x: Tensor) -> Tensor:
        if not -x.ndim <= self.dim < x.ndim:
            raise IndexError(f"Unflatten dim {self.dim} is out of range for a {x.ndim}-D input")
        d = self.dim % x.ndim
        size, n = list(self.unflattened_size), x.shape[d]
        known = 1
        for s in size:
            known *= s if s != -1 else 1
        if -1 in size and n % known == 0:
            size[size.index(-1)] = n // known
        total = 1
        for s in size:
            total *= s
        if total != n or -1 in size:
            raise ValueError(f"unflattened_size {self.unflattened_size} does not multiply to "
                             f"the size {n} of axis {self.dim} (input shape {x.shape})")
        return x.reshape(x.shape[:d] + tuple(size) + x.shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class ConstantPad2d(Module):
    """Pads the last two axes with ``value``: ``padding`` an int (all four sides) or
    (left, right, top, bottom); negative pads crop, as in PyTorch."""

    def __init__(self, padding: int | Sequence[int], value: float) -> None:
        super().__init__()
        pads: tuple = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
        if len(pads) != 4 or any(isinstance(p, bool) or not isinstance(p, int) for p in pads):
            raise ValueError(f"padding must be an int or 4 ints (left, right, top, bottom), "
                             f"got {padding!r}")
        self.padding, self.value = pads, float(value)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__} expects (N, C, H, W) or (C, H, W) input, "
                             f"got shape {x.shape}")
        return pad(x, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two axes with zeros (see ConstantPad2d)."""

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"

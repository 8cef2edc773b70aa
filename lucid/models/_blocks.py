"""Small parameter-free modules and helpers shared by the model zoo.

They reproduce the pieces braindecode builds its EEG models from (``Ensure4d``, einops
``Rearrange`` permutations, ``SqueezeFinalOutput``, ``Square``, ``SafeLog``, ``CombinedConv``,
``torch.renorm`` max-norm), so lucid's models have braindecode's submodule names and state-dict
keys and compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lucid import functions
from lucid.nn import functional as F
from lucid.nn.layers.conv import Conv2d
from lucid.nn.module import Module
from lucid.tensor import Tensor


class Ensure4d(Module):
    """Appends trailing singleton axes until the input has 4: (N, C, T) -> (N, C, T, 1)."""

    def forward(self, x: Tensor) -> Tensor:
        while x.ndim < 4:
            x = x.unsqueeze(-1)
        return x


class Permute(Module):
    """``x.permute(*dims)`` as a module (braindecode writes these as einops ``Rearrange``)."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != len(self.dims):
            raise ValueError(f"{type(self).__name__}{self.dims} expects a {len(self.dims)}-D "
                             f"input, got shape {x.shape}")
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class SqueezeFinalOutput(Module):
    """(N, C, T, 1) -> (N, C, T), and (N, C) when T == 1 (never the batch axis)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-1] != 1:
            raise ValueError(f"SqueezeFinalOutput expects (N, C, T, 1), got shape {x.shape}")
        x = x.squeeze(-1)
        return x.squeeze(-1) if x.shape[-1] == 1 else x


class Square(Module):
    """x * x."""

    def forward(self, x: Tensor) -> Tensor:
        return x * x


class SafeLog(Module):
    """log(max(x, epsilon))."""

    def __init__(self, epsilon: float = 1e-6) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x: Tensor) -> Tensor:
        return x.clip(min=self.epsilon).log()

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"


class Expression(Module):
    """Wraps a function Tensor -> Tensor as a module."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return f"fn={getattr(self.fn, '__name__', repr(self.fn))}"


def as_module(nonlin: Any, name: str) -> Module:
    """A Module class (instantiated without arguments) or a callable (wrapped in Expression)."""
    if isinstance(nonlin, type) and issubclass(nonlin, Module):
        return nonlin()
    if callable(nonlin):
        return Expression(nonlin)
    raise TypeError(f"{name} must be a Module class or a callable, got {nonlin!r}")


class Renorm:
    """Max-norm as ``torch.renorm(w, p=2, dim=0, maxnorm)``, braindecode's parametrization: every
    slice ``w[i]`` whose L2 norm exceeds ``max_norm`` is scaled by max_norm / (norm + 1e-7); the
    others are left exactly as they are (Keras's MaxNorm instead always scales by
    norm / (norm + eps)). Differentiable; used with ``register_parametrization``."""

    def __init__(self, max_norm: float) -> None:
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}")
        self.max_norm = float(max_norm)

    def __call__(self, w: Tensor) -> Tensor:
        sq = (w * w).sum(axis=tuple(range(1, w.ndim)), keepdims=True)
        over = sq > self.max_norm ** 2
        # sqrt only of values above the bound (or 1): a zero slice must not give sqrt'(0) = inf
        norm = functions.where(over, sq, 1.0).sqrt()
        return w * functions.where(over, self.max_norm / (norm + 1e-7), 1.0)

    def __repr__(self) -> str:
        return f"Renorm(max_norm={self.max_norm})"


class CombinedConv(Module):
    """braindecode's merged temporal + spatial convolution of Deep4Net and ShallowFBCSPNet.

    Holds ``conv_time`` (n_filters_time, 1, filter_time_length, 1) and ``conv_spat``
    (n_filters_spat, n_filters_time, 1, in_chans) and convolves (N, 1, T, in_chans) input once
    with their product, (n_filters_spat, 1, filter_time_length, in_chans): the same result as
    the two convolutions in a row, in one. The time bias is carried through the spatial weights.
    Output (N, n_filters_spat, T - filter_time_length + 1, 1)."""

    def __init__(self, in_chans: int, n_filters_time: int = 40, n_filters_spat: int = 40,
                 filter_time_length: int = 25, bias_time: bool = True,
                 bias_spat: bool = True) -> None:
        super().__init__()
        self.bias_time, self.bias_spat = bias_time, bias_spat
        self.conv_time = Conv2d(1, n_filters_time, (filter_time_length, 1), bias=bias_time)
        self.conv_spat = Conv2d(n_filters_time, n_filters_spat, (1, in_chans), bias=bias_spat)

    def forward(self, x: Tensor) -> Tensor:
        wt, ws = self.conv_time.weight, self.conv_spat.weight
        # (F_t, 1, L, 1) * (F_t, F_s, 1, C) summed over F_t -> (F_s, L, C) -> (F_s, 1, L, C)
        weight = (wt * ws.permute(1, 0, 2, 3)).sum(axis=0).unsqueeze(1)
        bias = None
        if self.bias_time:
            # the time bias b_t passes through the spatial conv: sum_{t, c} W_s[s, t, 0, c] b_t[t]
            bias = ws.sum(axis=(2, 3)) @ self.conv_time.bias
        if self.bias_spat:
            bias = self.conv_spat.bias if bias is None else bias + self.conv_spat.bias
        return F.conv2d(x, weight, bias)


def output_shape(module: Module, n_chans: int, n_times: int) -> tuple[int, ...]:
    """The shape ``module`` gives a (1, n_chans, n_times) input of zeros, as braindecode probes it
    (in the module's current mode: a BatchNorm in training mode updates its running statistics
    from the probe, as braindecode's do)."""
    from lucid.autograd import no_grad
    from lucid.creation import zeros
    param = next(iter(module.parameters()))
    with no_grad():
        return tuple(module(zeros((1, n_chans, n_times), dtype=param.dtype,
                                  device=param.backend)).shape)

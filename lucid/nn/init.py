"""In-place parameter initialisers (PyTorch names and formulas), drawn from ``lucid.random``.

Each writes into the given tensor under no_grad (the Parameter object is kept) and returns it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lucid import random
from lucid.autograd import no_grad
from lucid.tensor import Tensor

_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv_transpose2d": 1.0, "sigmoid": 1.0,
          "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain for a nonlinearity (``leaky_relu``: its slope as ``param``)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose one of "
                         f"{sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    """fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (PyTorch)."""
    if t.ndim < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dims, got shape {t.shape}")
    rf = 1
    for s in t.shape[2:]:
        rf *= s
    return t.shape[1] * rf, t.shape[0] * rf


def _fan(t: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fi, fo = fan_in_and_fan_out(t)
    return fi if mode == "fan_in" else fo


@no_grad()
def _write(t: Tensor, values: Tensor) -> Tensor:
    return t._set_data(t._be.asarray(values.numpy(), t._be.dtype_name(t.data)))


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fills ``t`` in place from U(a, b); returns ``t``."""
    return _write(t, random.uniform(a, b, t.shape, device="numpy"))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fills ``t`` in place from N(mean, std²); returns ``t``."""
    return _write(t, random.normal(mean, std, t.shape, device="numpy"))


def trunc_normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0) -> Tensor:
    """Fills ``t`` in place from N(mean, std²) truncated to [a, b]; returns ``t``."""
    return _write(t, random.truncated_normal(mean, std, a, b, t.shape, device="numpy"))


def constant_(t: Tensor, val: float) -> Tensor:
    """Fills ``t`` in place with ``val``; returns ``t``."""
    with no_grad():
        return t.fill_(val)


def zeros_(t: Tensor) -> Tensor:
    """Fills ``t`` in place with zeros; returns ``t``."""
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    """Fills ``t`` in place with ones; returns ``t``."""
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: U(±gain·sqrt(6 / (fan_in + fan_out))), in place; returns ``t``."""
    fi, fo = fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fi + fo))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: N(0, gain²·2 / (fan_in + fan_out)), in place; returns ``t``."""
    fi, fo = fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fi + fo)))


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """He uniform: U(±gain·sqrt(3 / fan)), gain from ``nonlinearity`` and ``a``, in place; returns
    ``t``."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """He normal: N(0, gain² / fan), gain from ``nonlinearity`` and ``a``, in place; returns
    ``t``."""
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode)))


# -- weight_init= / bias_init= arguments of the layers ---------------------------------------

def check_initializer(value: Any, name: str, shape: tuple) -> Any:
    """Check a ``weight_init`` / ``bias_init`` argument before any parameter exists: None (the
    layer's default), a callable ``init(tensor)`` that fills the tensor in place as
    ``lucid.nn.init``'s functions do, or an array/Tensor of exactly ``shape``."""
    if value is None or callable(value):
        return value
    vshape = getattr(value, "shape", None)
    if vshape is None:
        raise TypeError(f"{name} must be a callable init(tensor) or an array/Tensor of shape "
                        f"{shape}, got {value!r} ({type(value).__name__})")
    if tuple(vshape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(vshape)}, but the parameter it initialises "
                         f"has shape {tuple(shape)}")
    return value


@no_grad()
def apply_initializer(param: Tensor, value: Any, name: str,
                      default: Callable[[Tensor], Any]) -> None:
    """Fill ``param`` in place from a ``check_initializer`` value, or with ``default`` when
    None."""
    if value is None:
        default(param)
    elif callable(value):
        shape, dtype = param.shape, param.dtype
        value(param)
        if (param.shape, param.dtype) != (shape, dtype):
            raise ValueError(f"{name} must fill the parameter in place, keeping its shape {shape} "
                             f"and dtype {dtype}; it left shape {param.shape}, dtype {param.dtype}")
    elif isinstance(value, Tensor):
        param.copy_(value.astype(param.dtype).to(param.backend))    # cast first: MLX has no f64
    else:
        param.copy_(Tensor(value, dtype=param.dtype, device=param.backend))

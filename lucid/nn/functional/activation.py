"""Activations, softmax, linear and dropout."""

from __future__ import annotations

from lucid import precision
from lucid import random as _random
from lucid.functions import minimum, where
from lucid.ops import linalg as L
from lucid.tensor import Tensor, apply, promote


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)`` elementwise."""
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    return where(x > 0, x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha·(exp(x) − 1) otherwise (exp of min(x, 0), so large x never overflows)."""
    return where(x > 0, x, (minimum(x, 0.0).exp() - 1.0) * alpha)


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))`` elementwise."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` elementwise."""
    return x.tanh()


def check_gelu_approximate(approximate: str) -> str:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Φ(x); ``approximate="tanh"`` uses PyTorch's tanh approximation."""
    if check_gelu_approximate(approximate) == "tanh":
        return 0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.7978845608028654).tanh())
    return 0.5 * x * (1.0 + (x * 0.7071067811865476).erf())


def silu(x: Tensor) -> Tensor:
    """x · sigmoid(x) (also called swish)."""
    return x * x.sigmoid()


def check_softplus(beta: float, threshold: float) -> tuple[float, float]:
    for name, v in (("beta", beta), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"softplus {name} must be a number, got {type(v).__name__}")
    if beta == 0:
        raise ValueError("softplus beta must be nonzero (it divides)")
    return float(beta), float(threshold)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta·x)) / beta, and x itself where beta·x > threshold (PyTorch's rule).
    The exp sees min(beta·x, threshold), so the branch not taken never overflows (an inf
    there would make its zero gradient NaN)."""
    beta, threshold = check_softplus(beta, threshold)
    bx = x * beta
    smooth = (minimum(bx, threshold).exp() + 1.0).log() * (1.0 / beta)
    return where(bx > threshold, x, smooth)


def check_hardtanh(min_val: float, max_val: float) -> tuple[float, float]:
    if not min_val < max_val:
        raise ValueError(f"hardtanh needs min_val < max_val, got {min_val} and {max_val}")
    return float(min_val), float(max_val)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val]."""
    min_val, max_val = check_hardtanh(min_val, max_val)
    return x.clip(min_val, max_val)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax along ``dim``."""
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Log of the softmax along ``dim``, computed stably."""
    return x.log_softmax(dim)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., in) @ weight (out, in).T + bias (out,); in the autocast dtype under
    ``lucid.autocast``."""
    x, weight, bias = precision.cast("linear", x, weight, bias)
    xs, ws = x.data.shape, weight.data.shape       # (the arrays' own shapes: read once)
    if len(ws) != 2 or not xs or xs[-1] != ws[-1]:
        raise ValueError(f"linear: input features {x.shape[-1] if x.ndim else None} (shape "
                         f"{x.shape}) do not match weight {weight.shape} (out, in)")
    if bias is not None and tuple(bias.data.shape) != (ws[0],):
        raise ValueError(f"linear: bias must have shape ({ws[0]},), got {bias.shape}")
    if bias is None:
        return apply(L.Linear, *promote(x, weight))
    if x.data.dtype == weight.data.dtype == bias.data.dtype:    # the usual case, inline
        return apply(L.Linear, x, weight, bias)
    return apply(L.Linear, *promote(x, weight, bias))


def check_dropout_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p (mask from ``lucid.random``), scale the rest 1/(1-p)."""
    check_dropout_p(p)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    mask = _random.bernoulli_mask(x.shape, 1.0 - p, device=x.backend)
    return x * (mask * (1.0 / (1.0 - p))).astype(x.dtype)

"""Gradient clipping (PyTorch's ``clip_grad_norm_`` and ``clip_grad_value_``), in place on each
parameter's ``.grad``.

Neither reads a value on the host: the clip factor is an array, so both run lazily on MLX and
inside ``lucid.compile``. The one exception is ``error_if_nonfinite=True``, which must look at
the norm to decide whether to raise (inside ``lucid.compile`` that read is a RuntimeError)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from lucid import autograd, tracing
from lucid.functions import maximum, minimum, stack
from lucid.tensor import Tensor


def _params(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"gradient clipping takes Tensors (parameters), got "
                            f"{type(p).__name__}")
    return params


def _grads(params: list[Tensor]) -> list[Tensor]:
    return [p.grad for p in params if p.grad is not None]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    return float(value)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale every gradient by ``min(1, max_norm / (total + 1e-6))``, where ``total`` is the
    ``norm_type``-norm of all gradients taken together (``inf``: the largest |g|). Returns
    ``total`` as a 0-d Tensor (of the gradients' dtype; 0.0 when no parameter has a gradient).

    ``error_if_nonfinite=True`` raises RuntimeError, before scaling anything, when ``total``
    is NaN or inf; that check reads ``total`` on the host (one sync; refused inside
    ``lucid.compile``). Otherwise nothing is read and a non-finite norm gives NaN gradients,
    as in PyTorch."""
    max_norm = _number(max_norm, "max_norm")
    norm_type = _number(norm_type, "norm_type")
    params = _params(parameters)
    grads = _grads(params)
    if not grads:                     # on the parameters' backend when there are any
        return Tensor(0.0, device=params[0].backend if params else None)
    with autograd.no_grad():
        if math.isinf(norm_type) and norm_type > 0:
            norms = [g.abs().max() for g in grads]
            total = norms[0] if len(norms) == 1 else stack(norms).max()
        elif norm_type == 2.0:
            total = _sum([(g * g).sum() for g in grads]).sqrt()
        elif norm_type > 0:
            total = _sum([(g.abs() ** norm_type).sum() for g in grads]) ** (1.0 / norm_type)
        else:
            raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
        if error_if_nonfinite:
            tracing.forbid_host_read("clip_grad_norm_(error_if_nonfinite=True) (it reads the "
                                     "norm to decide; use error_if_nonfinite=False inside "
                                     "lucid.compile)")
            value = total.item()
            if not math.isfinite(value):
                raise RuntimeError(f"the total norm of order {norm_type} of the gradients is "
                                   f"{value}, so they cannot be clipped; set "
                                   f"error_if_nonfinite=False to scale them anyway")
        coef = minimum(max_norm / (total + 1e-6), 1.0)
        for g in grads:
            g._set_data(g._be.multiply(g.data, coef.astype(g.dtype).data))
    return total


def _sum(values: list[Tensor]) -> Tensor:
    total = values[0]
    for v in values[1:]:
        total = total + v.astype(total.dtype)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient elementwise to [-clip_value, clip_value], in place."""
    clip_value = _number(clip_value, "clip_value")
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    with autograd.no_grad():
        for g in _grads(_params(parameters)):
            g._set_data(maximum(minimum(g, clip_value), -clip_value).astype(g.dtype).data)

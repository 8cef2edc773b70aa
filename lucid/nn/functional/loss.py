"""Losses."""

from __future__ import annotations

from lucid.creation import arange
from lucid.tensor import Tensor

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
    nll = -logp[arange(input.shape[0], device=input.backend), target]
    if label_smoothing:
        nll = nll * (1.0 - label_smoothing) - logp.mean(axis=-1) * label_smoothing
    return _reduce(nll, reduction)


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
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

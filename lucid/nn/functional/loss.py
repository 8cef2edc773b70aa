"""Losses. Class-index losses check their targets against the number of classes C (see
``_class_nll``); every argument check lives here and the loss modules reuse it."""

from __future__ import annotations

from typing import Any

from lucid import precision
from lucid.functions import where
from lucid.ops import loss as Fn
from lucid.tensor import Tensor, apply

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_label_smoothing(value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {value!r}")
    return float(value)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    check_reduction(reduction)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _class_nll(logp: Tensor, target: object, ignore_index: int, label_smoothing: float,
               reduction: str, name: str, from_logits: bool = False) -> Tensor:
    """The loss of logits (``from_logits``) or log-probabilities logp (N, C) at integer class
    targets (N,), as one ``ClassLoss`` node.

    Targets must lie in [0, C) or equal ``ignore_index`` (excluded from the loss and from the
    mean's count, as in PyTorch). Targets whose values can be read without evaluating anything
    (host data, the NumPy backend) are checked here: an IndexError names the bad target and C.
    Targets that are still a lazy graph (an MLX result, or inside ``lucid.compile``) cannot be
    read; an out-of-range one then makes the loss NaN, never a finite number. The target's class
    is picked with a one-hot product (no gather), so a bad target never reads out of bounds.
    """
    check_reduction(reduction)
    if logp.ndim != 2:
        raise ValueError(f"{name} expects (N, C) inputs, got shape {logp.shape}")
    n, c = logp.shape
    if not isinstance(target, Tensor):
        target = Tensor(target, device=logp.backend)
    if target._be.dtype_name(target.data) not in ("int32", "int64") or target.shape != (n,):
        raise ValueError(f"{name} expects integer targets (class indices) of shape ({n},), got "
                         f"{target.dtype} {target.shape}")
    values = target._host_values(as_list=n <= _LIST_CHECK)
    bad: object = None
    count: object = n
    if values is None:                          # a lazy graph: checked inside the loss
        bad = ((target < 0) | (target >= c)) & (target != ignore_index)
        ignored = True
        count = (target != ignore_index).sum().astype(logp.dtype)
    else:
        lo, hi, kept = _kept_range(values, ignore_index)
        if kept and (lo < 0 or hi >= c):
            raise IndexError(f"Target {lo if lo < 0 else hi} is out of bounds: {name} needs "
                             f"class targets in [0, {c}) for {c} classes (or "
                             f"ignore_index={ignore_index})")
        ignored = kept != n
        if ignored:
            count = float(kept)
    return apply(Fn.ClassLoss, logp, target, smoothing=label_smoothing,
                 ignore_index=ignore_index if ignored else None, reduction=reduction,
                 count=count, bad=bad, from_logits=from_logits)


# Up to this many targets the range check reads them as a Python list: in a training loop
# (caches cold after each step's evaluation) NumPy's min and max of 16 targets took ~10 µs,
# a list's ~1 µs, and an MLX array's tolist() skips the NumPy copy.
_LIST_CHECK = 1024


def _kept_range(values: Any, ignore_index: int) -> tuple[int, int, int]:
    """(smallest, largest, number) of the class targets other than ``ignore_index``, from a
    list or a NumPy array of them; (0, -1, 0) when there are none."""
    if isinstance(values, list):
        if ignore_index in values:
            values = [v for v in values if v != ignore_index]
        return (min(values), max(values), len(values)) if values else (0, -1, 0)
    if values.size and values.min() <= ignore_index <= values.max():
        values = values[values != ignore_index]
    if not values.size:
        return 0, -1, 0
    return int(values.min()), int(values.max()), int(values.size)


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, ignore_index: int = -100) -> Tensor:
    """Cross entropy of logits (N, C) with integer class targets (N,), via a stable log-softmax.
    With label_smoothing ε: (1-ε)·(-log p_target) + ε·mean_c(-log p_c). Targets equal to
    ``ignore_index`` do not count; any other target outside [0, C) is an IndexError (or, when
    the targets are a lazy graph, a NaN loss; see ``_class_nll``)."""
    input, = precision.cast("cross_entropy", input)   # float32 under autocast
    check_label_smoothing(label_smoothing)
    if input.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {input.shape}")
    return _class_nll(input, target, ignore_index, label_smoothing, reduction, "cross_entropy",
                      from_logits=True)


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean", *,
             ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) at integer class targets (N,)."""
    input, = precision.cast("nll_loss", input)   # float32 under autocast
    return _class_nll(input, target, ignore_index, 0.0, reduction, "nll_loss")


def _pair(input: Tensor, target: object, name: str) -> Tensor:
    """The target as a Tensor on input's backend, of input's shape (PyTorch broadcasts with a
    warning; lucid refuses, since a silently broadcast target is almost always a bug)."""
    if not isinstance(target, Tensor):
        target = Tensor(target, device=input.backend, dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"{name} needs a target of the input's shape {input.shape}, got "
                         f"{target.shape}")
    if not input.dtype.is_floating:
        raise TypeError(f"{name} needs a floating-point input, got {input.dtype}")
    return target.astype(input.dtype)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """−w·(t·log x + (1 − t)·log(1 − x)) of probabilities x in [0, 1], each log clamped at
    −100 as in PyTorch (so x = 0 or 1 is finite). Inputs outside [0, 1] that can be read
    without evaluating anything are a ValueError. ``weight`` broadcasts against the input."""
    input, = precision.cast("binary_cross_entropy", input)   # float32 under autocast
    check_reduction(reduction)
    target = _pair(input, target, "binary_cross_entropy")
    host = input._host_values()
    if host is not None and host.size and not ((host >= 0) & (host <= 1)).all():
        raise ValueError(f"binary_cross_entropy needs input probabilities in [0, 1], got "
                         f"values in [{host.min()}, {host.max()}]; for logits use "
                         f"binary_cross_entropy_with_logits")
    loss = apply(Fn.BinaryCrossEntropy, input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """|x − t|, reduced."""
    input, = precision.cast("l1_loss", input)   # float32 under autocast
    return _reduce((input - _pair(input, target, "l1_loss")).abs(), reduction)


def _check_nonneg(value: float, name: str, fn: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{fn}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5·d²/beta where |d| < beta, else |d| − 0.5·beta (d = x − t); beta = 0 is L1."""
    input, = precision.cast("smooth_l1_loss", input)   # float32 under autocast
    check_reduction(reduction)
    beta = _check_nonneg(beta, "beta", "smooth_l1_loss")
    d = (input - _pair(input, target, "smooth_l1_loss")).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta) (d = x − t)."""
    input, = precision.cast("huber_loss", input)   # float32 under autocast
    check_reduction(reduction)
    delta = _check_nonneg(delta, "delta", "huber_loss")
    if delta == 0:
        raise ValueError("huber_loss: delta must be > 0, got 0")
    d = (input - _pair(input, target, "huber_loss")).abs()
    return _reduce(where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta), reduction)


KL_REDUCTIONS = ("mean", "sum", "none", "batchmean")


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target ‖ exp(input)) pointwise: t·(log t − x) for log-probabilities x, with 0 where
    t = 0 (selected, so a −inf input there stays 0, not 0·inf); ``log_target``: t is given
    as log t, exp(t)·(t − x). ``reduction="batchmean"`` divides the sum by the batch size
    (the KL divergence); "mean" divides by the number of elements, as PyTorch."""
    input, = precision.cast("kl_div", input)   # float32 under autocast
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"reduction must be one of {KL_REDUCTIONS}, got {reduction!r}")
    target = _pair(input, target, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = target > 0                    # both sides selected: no 0·log 0, no 0·(−inf)
        loss = where(pos, target * (where(pos, target, 1.0).log() - where(pos, input, 0.0)),
                     0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error; ``reduction`` ``"mean"``, ``"sum"`` or ``"none"``."""
    input, target = precision.cast("mse_loss", input, target)   # float32 under autocast
    if input.shape != target.shape:
        raise ValueError(f"mse_loss needs equal shapes, got {input.shape} and {target.shape}")
    d = input - target
    return _reduce(d * d, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Stable form: max(x, 0) - x*y + log(1 + exp(-|x|)) (with pos_weight p: the log term of
    the positive part is scaled by p)."""
    # float32 under autocast
    input, target = precision.cast("binary_cross_entropy_with_logits", input, target)
    if input.shape != target.shape:
        raise ValueError(f"target shape {target.shape} must equal input shape {input.shape}")
    softplus_neg = (1.0 + (-input.abs()).exp()).log() + (-input).relu()   # log(1 + exp(-x))
    if pos_weight is None:
        loss = (1.0 - target) * input + softplus_neg
    else:
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * softplus_neg
    return _reduce(loss, reduction)

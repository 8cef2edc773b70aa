"""Loss modules."""

from __future__ import annotations

from lucid.nn import functional as F
from lucid.nn.functional import loss as L
from lucid.nn.module import Module
from lucid.tensor import Tensor


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = L.check_reduction(reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    """Logits (N, C), integer targets (N,) in [0, C) or ``ignore_index``; optional label
    smoothing (see ``F.cross_entropy``)."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0, *,
                 ignore_index: int = -100) -> None:
        super().__init__(reduction)
        self.label_smoothing = L.check_label_smoothing(label_smoothing)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, self.reduction, self.label_smoothing,
                               ignore_index=self.ignore_index)


class MSELoss(_Loss):
    """Mean squared error; ``reduction`` ``"mean"``, ``"sum"`` or ``"none"``."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy on logits (the sigmoid inside, computed stably); optional
    ``pos_weight``."""

    def __init__(self, reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.reduction, self.pos_weight)


class NLLLoss(_Loss):
    """Log-probabilities (N, C), integer targets (N,) in [0, C) or ``ignore_index``."""

    def __init__(self, reduction: str = "mean", *, ignore_index: int = -100) -> None:
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, self.reduction, ignore_index=self.ignore_index)


class BCELoss(_Loss):
    """Binary cross entropy of probabilities in [0, 1] (logs clamped at -100, as PyTorch);
    ``weight`` broadcasts against the input. Prefer BCEWithLogitsLoss on logits."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error; ``reduction`` ``"mean"``, ``"sum"`` or ``"none"``."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below ``beta``, absolute error above (PyTorch's formula)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = L._check_nonneg(beta, "beta", "SmoothL1Loss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """Squared error below ``delta``, linear above (PyTorch's formula)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = L._check_nonneg(delta, "delta", "HuberLoss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class KLDivLoss(Module):
    """Pointwise KL divergence of log-probability inputs from targets (probabilities, or log
    ones with ``log_target``); ``reduction="batchmean"`` gives the KL divergence per sample."""

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__()
        if reduction not in L.KL_REDUCTIONS:
            raise ValueError(f"reduction must be one of {L.KL_REDUCTIONS}, got {reduction!r}")
        self.reduction, self.log_target = reduction, bool(log_target)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, self.reduction, self.log_target)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, log_target={self.log_target}"

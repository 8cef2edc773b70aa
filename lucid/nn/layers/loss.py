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
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.reduction, self.pos_weight)

"""Automatic mixed precision (PyTorch's ``torch.amp``): ``autocast`` (also ``lucid.autocast``;
its op lists live in ``lucid.precision``) and ``GradScaler`` (loss scaling for float16)."""

from lucid.amp.grad_scaler import GradScaler
from lucid.precision import autocast

__all__ = ["GradScaler", "autocast"]

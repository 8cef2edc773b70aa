"""Channel dropout (``dropout1d/2d/3d``): whole channels of a sample zeroed together, over
Tensors."""

from __future__ import annotations

from lucid import random as _random
from lucid.nn.functional.activation import check_dropout_p
from lucid.tensor import Tensor

# the input ranks each accepts: batched (N, C, *spatial), unbatched (C, *spatial)
_RANKS = {1: (3, 2), 2: (4, 3), 3: (5, 4)}


def _channel_dropout(x: Tensor, p: float, training: bool, spatial: int) -> Tensor:
    check_dropout_p(p)
    name = f"dropout{spatial}d"
    if x.ndim not in _RANKS[spatial]:
        batched, unbatched = _RANKS[spatial]
        raise ValueError(f"{name} expects a {batched}-D (batched) or {unbatched}-D (unbatched) "
                         f"input, got shape {x.shape}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    # one draw per (sample, channel): every value of a channel is kept or zeroed together.
    # dropout2d of a 3-D input works on (N, C, L), as PyTorch documents
    lead = 2 if spatial == 2 and x.ndim == 3 else x.ndim - spatial
    shape = x.shape[:lead] + (1,) * (x.ndim - lead)
    mask = _random.bernoulli_mask(shape, 1.0 - p, device=x.backend)
    return x * (mask * (1.0 / (1.0 - p))).astype(x.dtype)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) with probability p, scale the rest
    1/(1 − p)."""
    return _channel_dropout(input, p, training, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels of (N, C, H, W) with probability p, scale the rest 1/(1 − p); a
    3-D input is taken as (N, C, L), as in PyTorch."""
    return _channel_dropout(input, p, training, 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability p, scale the
    rest 1/(1 − p)."""
    return _channel_dropout(input, p, training, 3)

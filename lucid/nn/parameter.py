"""Parameter: a Tensor that a Module registers as learnable."""

from __future__ import annotations

from typing import Any

from lucid.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` that Modules list in ``parameters()``.

    ``Parameter(t)`` shares t's array (arrays are never mutated in place, so this is safe)."""

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        src = data if isinstance(data, Tensor) else Tensor(data if data is not None else [])
        self._init(src.data, src._be, requires_grad, None)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

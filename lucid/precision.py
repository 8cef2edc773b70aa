"""Autocast: the op lists and the state of ``lucid.autocast`` (exported as ``lucid.autocast`` and
``lucid.amp.autocast``).

Inside ``with lucid.autocast(dtype=lucid.bfloat16):`` an op on this module's lists casts its
floating inputs before it runs:

- ``LOWER``: convolutions of every rank, ``linear`` and ``matmul`` run in the autocast dtype
  (the ops whose cost is the multiply-accumulate, and whose half kernels accumulate in float32);
- ``FLOAT32``: softmax, log_softmax, every loss, ``sum``/``mean``, ``exp``/``log``/``pow`` and
  the normalisations (batch, layer, group, instance) run in, and return, float32;
- every other op takes the widest of its inputs' dtypes (ordinary promotion).

These follow PyTorch's CUDA autocast lists (``autocast_mode.cpp``) for the ops lucid has; its CPU
list keeps softmax and batch_norm in bfloat16, which is not what a GPU user wants. float64 is
never cast (as in PyTorch). Casts are differentiable ``astype`` ops, so a float32 Parameter
used in a bfloat16 conv stays float32 (the master weight) and gets a float32 gradient.

The state is one module variable, read by every listed op: ``None`` outside autocast, else the
dtype name. ``lucid.compile`` puts ``state()`` into its trace key."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from lucid import dtypes

LOWER = "lower"
FLOAT32 = "float32"

# The one list: op name -> class. An op not named here follows its inputs.
OPS: dict[str, str] = {
    **dict.fromkeys(("conv", "conv_transpose", "linear", "matmul"), LOWER),
    **dict.fromkeys(("softmax", "log_softmax", "sum", "mean", "exp", "log", "pow",
                     "batch_norm", "layer_norm", "group_norm", "instance_norm",
                     "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
                     "huber_loss", "kl_div", "binary_cross_entropy",
                     "binary_cross_entropy_with_logits"), FLOAT32),
}

_active: str | None = None          # the autocast dtype name, None when autocast is off

_DEVICE_TYPES = ("cpu", "cuda", "mps", "gpu", "mlx", "numpy", "xpu")
F = TypeVar("F", bound=Callable[..., Any])


def state() -> str | None:
    """The autocast dtype name in force (``"bfloat16"``, ``"float16"``), or None."""
    return _active


def cast(op: str, *tensors: Any) -> tuple[Any, ...]:
    """``tensors`` as op ``op`` computes on them under the current autocast state: unchanged
    outside autocast, for ops on no list, and for None, integer, bool and float64 entries."""
    if _active is None:
        return tensors
    kind = OPS[op]                   # KeyError: an op asked for a class it was not given
    target = _active if kind == LOWER else "float32"
    return tuple(_to(t, target) for t in tensors)


def _to(t: Any, target: str) -> Any:
    if t is None:
        return t
    name = t.dtype.name
    if name == target or not dtypes.is_floating(name) or name == "float64":
        return t
    return t.astype(target)


class autocast:
    """Mixed precision for the ops on ``lucid.precision``'s lists: a context manager and a
    decorator.

        with lucid.autocast(dtype=lucid.bfloat16):
            loss = loss_fn(model(x), y)        # convs in bfloat16, the loss in float32
        loss.backward()                        # float32 gradients for float32 parameters

    ``device_type`` (PyTorch's first argument, ``"cpu"``, ``"cuda"``, ``"mps"``...) is accepted
    and ignored, so ``autocast("cuda", dtype=torch.bfloat16)`` code ports unchanged; ``dtype``
    must be ``lucid.bfloat16`` or ``lucid.float16``. ``enabled=False`` turns autocast off inside
    an enabled region. Leaving the block (normally or by an exception) restores the state that
    was in force when it was entered."""

    def __init__(self, device_type: Any = None, dtype: Any = dtypes.bfloat16,
                 enabled: bool = True, cache_enabled: bool | None = None) -> None:
        if device_type is not None and not isinstance(device_type, str):
            dtype, device_type = device_type, None     # autocast(lucid.bfloat16)
        if device_type is not None and device_type.split(":")[0] not in _DEVICE_TYPES:
            raise ValueError(f"autocast device_type {device_type!r} is not one of "
                             f"{_DEVICE_TYPES} (it is accepted for PyTorch code and ignored)")
        dt = dtypes.get(dtype)
        if dt is None or not dt.autocast_ok:
            raise ValueError(f"autocast dtype must be lucid.bfloat16 or lucid.float16, got "
                             f"{dtype!r}")
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast enabled must be a bool, got {type(enabled).__name__}")
        self.dtype, self.enabled = dt, enabled
        self._saved: list[str | None] = []

    def __enter__(self) -> autocast:  # noqa: PYI034 - typing.Self needs Python 3.11
        global _active
        self._saved.append(_active)
        _active = self.dtype.name if self.enabled else None
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = self._saved.pop()

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` so that every call runs under this autocast setting."""
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with autocast(dtype=self.dtype, enabled=self.enabled):
                return fn(*args, **kwargs)
        return run  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"lucid.autocast(dtype={self.dtype!r}, enabled={self.enabled})"

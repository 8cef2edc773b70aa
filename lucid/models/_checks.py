"""Argument checks shared by the model constructors: each raises before any layer is built."""

from __future__ import annotations

import numbers
from typing import Any


def positive(v: Any, name: str) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, got {v!r}")
    if v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return int(v)


def probability(p: Any, name: str) -> float:
    if not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_signal(n_chans: Any, n_outputs: Any, n_times: Any) -> None:
    """The signal's size: unlike braindecode, lucid takes no ``chs_info``/``sfreq`` form."""
    for name, v in (("n_chans", n_chans), ("n_outputs", n_outputs), ("n_times", n_times)):
        positive(v, name)

"""A faster path of the NumPy ``reshape``: the copy of a view whose last axis is short.

``numpy_backend.reshape`` is ``np.reshape``, the definition. When the reshape needs a copy,
NumPy copies the view in C order with the view's last axis as its inner loop. Where that axis
holds 2-4 values (the interleave of a 2x2 max pool's backward: (N, C, h, 2, w, 2) from phase
planes (2, 2, N, C, h, w)) the copy makes one inner-loop call per 2 values: 0.42 ms for the
digits CNN's (64, 32, 8, 8) gradient, 1.1 ms for the demo net's (32, 32, 24, 24). Copying the
view one last-axis index at a time (``out[..., k] = x[..., k]``) gives NumPy the next axis as
its inner loop instead: 0.17 and 0.31 ms (one thread, the project's 2-core x86 box).

``applies`` says when: a view that is not C-contiguous, whose last axis holds at most ``SHORT``
values and which has at least ``MIN_SIZE`` values, on NumPy 2.1 or later (whose
``reshape(copy=False)`` says whether the reshape needs a copy at all; a reshape that can be a
view stays one). tests/test_backends.py proves it taken and equal to ``np.reshape``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SHORT = 4           # a last axis of at most this many values makes NumPy's copy slow
MIN_SIZE = 4096     # below this the Python loop costs more than it saves
_VIEW_CHECK = np.lib.NumpyVersion(np.__version__) >= "2.1.0"   # reshape(copy=False)


def applies(x: Any) -> bool:
    """Whether a reshape of x may need the short-axis copy. (Runs on every ``reshape``: the
    cheapest tests first.)"""
    return (_VIEW_CHECK and not x.flags.c_contiguous and x.ndim > 1
            and x.shape[-1] <= SHORT and x.size >= MIN_SIZE)


def reshape(x: np.ndarray, shape: Any) -> np.ndarray:
    """np.reshape(x, shape) for an x that ``applies``: a view where one is possible, else the
    copy a last-axis index at a time, reshaped."""
    try:
        return x.reshape(shape, copy=False)
    except ValueError:                      # NumPy: "Unable to avoid creating a copy"
        pass
    out = np.empty(x.shape, dtype=x.dtype)
    for k in range(x.shape[-1]):
        out[..., k] = x[..., k]
    return out.reshape(shape)

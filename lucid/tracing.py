"""What lucid code must know while ``lucid.compile`` traces a function.

While a trace is active, tensors hold the tracer arrays of ``mx.compile`` and nothing may read
data on the host: there is no data yet, only a graph. This module holds the active trace and the
two rules every layer above it follows: refuse host reads (``forbid_host_read``) and report every
in-place write of a tensor (``note_write``) so that compile can check the written tensors were
declared as state. It also holds the op recording that ``lucid.export`` reads a forward with
(``recording``). It imports nothing of lucid, so every layer may use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class Trace:
    """One trace in progress. ``written`` maps id -> tensor for every tensor whose array was
    replaced; ``rng`` is the random stream's traced position (see ``lucid.random``)."""

    def __init__(self, be: Any, rng: Any) -> None:
        self.be = be
        self.rng = rng
        self.drawn = 0                     # random blocks consumed by this trace
        self.written: dict[int, Any] = {}  # id -> tensor whose array was replaced
        self.graded: dict[int, Any] = {}   # id -> leaf that received a gradient
        self.created: set[int] = set()     # ids of tensors made during the trace


_active: Trace | None = None


def active() -> Trace | None:
    """The trace in progress, or None when running eagerly."""
    return _active


@contextlib.contextmanager
def running(trace: Trace) -> Iterator[Trace]:
    """Make ``trace`` the active one for the block (traces do not nest)."""
    global _active
    if _active is not None:
        raise RuntimeError("lucid.compile: a compiled function called another one while it was "
                           "being traced; compile the outer function only")
    _active = trace
    try:
        yield trace
    finally:
        _active = None


def forbid_host_read(what: str) -> None:
    """Raise if a trace is active: ``what`` (e.g. "item()") needs data that does not exist yet."""
    if _active is not None:
        raise RuntimeError(
            f"{what} reads a tensor's data on the host, which is impossible inside a "
            "lucid.compile'd function: while it is traced there are no values yet, only a graph. "
            "Return the tensor from the function instead and read it after the call (e.g. "
            "loss = step(x, y); print(loss.item())).")


def note_write(tensor: Any) -> None:
    """Record that ``tensor``'s array was replaced in place during the active trace."""
    if _active is not None:
        _active.written[id(tensor)] = tensor


def note_grad(tensor: Any) -> None:
    """Record that the leaf ``tensor`` received a gradient during the active trace."""
    if _active is not None:
        _active.graded[id(tensor)] = tensor


def note_created(tensor: Any) -> None:
    """Record a tensor made during the active trace (writes to it are the function's own)."""
    if _active is not None:               # the callers test ``_active`` first (a hot path)
        _active.created.add(id(tensor))


# -- op recording (lucid.export) -----------------------------------------------------------------
# ``apply`` calls ``_recorder(fn, inputs, options, out)`` after every op while it is set: one
# module-global test per op when no export runs. Separate from ``Trace`` (compile's), because an
# export records eager ops and compile's trace forbids nothing an export needs.
_recorder: Callable[[Any, tuple, dict, Any], None] | None = None


@contextlib.contextmanager
def recording(callback: Callable[[Any, tuple, dict, Any], None]) -> Iterator[None]:
    """Call ``callback(function, inputs, options, output)`` for every op applied in the block:
    the Function instance (after its forward), the input Tensors, the options as the forward got
    them (Tensors replaced by their arrays) and the output Tensor. Recordings do not nest."""
    global _recorder
    if _recorder is not None:
        raise RuntimeError("an op recording (lucid.export) is already running; exports do not nest")
    _recorder = callback
    try:
        yield
    finally:
        _recorder = None

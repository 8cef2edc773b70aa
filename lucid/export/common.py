"""What both exporters share: argument checks, the eval-mode forward with the module's modes
restored afterwards, and the description of the inputs written next to the graph."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from lucid.autograd import no_grad
from lucid.nn.module import Module
from lucid.tensor import Tensor

# lucid's public layout by input rank (PyTorch's): batch first, then channels, then space
_LAYOUTS = {1: "N", 2: "NC", 3: "NCL", 4: "NCHW", 5: "NCDHW"}


def check_args(what: str, fn: Any, path: Any, inputs: tuple) -> str:
    """Refuse bad arguments before any work: a callable, a file path whose folder exists, at
    least one example input, every input a floating lucid Tensor with a batch axis, all on one
    backend. Returns the path as a str."""
    if not callable(fn):
        raise TypeError(f"{what}: expected a lucid Module or a function of Tensors, got "
                        f"{type(fn).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what}: the folder of path {path!r} does not exist")
    if not inputs:
        raise ValueError(f"{what}: give at least one example input (a Tensor shaped like the "
                         f"model's input, batch axis first)")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: example input {i} must be a lucid Tensor, got "
                            f"{type(t).__name__}")
        if t.ndim == 0:
            raise ValueError(f"{what}: example input {i} is 0-d; inputs need a batch axis first")
        if t.backend != inputs[0].backend:
            raise ValueError(f"{what}: example inputs on different backends: "
                             f"{inputs[0].backend!r} and {t.backend!r} (input {i})")
    return path


def module_tensors(fn: Any) -> list[Tensor]:
    """Every parameter and buffer of ``fn`` when it is a Module (each once), else []."""
    if not isinstance(fn, Module):
        return []
    seen: dict[int, Tensor] = {}
    for t in list(fn.parameters()) + list(fn.buffers()):
        seen.setdefault(id(t), t)
    return list(seen.values())


@contextlib.contextmanager
def eval_forward(fn: Any) -> Iterator[Callable[..., Any]]:
    """``fn`` in eval mode (dropout off, BatchNorm on its running statistics), called without
    grad; every submodule's training flag is restored on exit, whatever happened."""
    modes = [(m, m.training) for m in fn.modules()] if isinstance(fn, Module) else []
    if isinstance(fn, Module):
        fn.eval()
    try:
        def forward(*args: Tensor) -> Any:
            with no_grad():
                return fn(*args)
        yield forward
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)


def outputs_of(what: str, out: Any) -> tuple[Tensor, ...]:
    """The forward's result as a tuple of Tensors (one Tensor, or a tuple/list of them)."""
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for i, t in enumerate(outs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: the forward must return a Tensor or a tuple of Tensors; "
                            f"output {i} is a {type(t).__name__}")
    return outs


def describe_inputs(inputs: tuple, dynamic_batch: bool) -> list[dict[str, Any]]:
    """One record per input: shape (batch axis None when it may vary), dtype and layout."""
    return [{"name": f"input_{i}", "shape": [None if dynamic_batch and a == 0 else n
                                             for a, n in enumerate(t.shape)],
             "dtype": t.dtype.name, "layout": _LAYOUTS.get(t.ndim, "N...")}
            for i, t in enumerate(inputs)]

"""``lucid.compile(..., shapeless=True)``: one trace for every batch size, when that is right.

MLX's ``mx.compile(shapeless=True)`` replays a graph at new input shapes by re-inferring each
primitive's output shape. That is only correct when the graph does not depend on the shapes it
was traced at, and MLX cannot tell: measured on mlx 0.32, a ``reshape(x.shape[0], -1)``, an
``mx.full(x.shape, ...)``, an index built from ``arange(x.shape[0])`` or a mean written as
``sum * (1 / n)`` replay *silently wrong* at another batch size, while ``pad`` and slicing raise
("cannot infer output shapes"). lucid's Python reads shapes everywhere (Flatten, the losses'
means, broadcasting gradients), so lucid proves each shapeless trace before trusting it:

1. the trace records every backend primitive call with its non-array arguments (shapes, axes,
   scalars; arrays only as rank and dtype) — ``recording``;
2. right after the first call, the same Python runs again, eagerly (MLX builds the graph lazily
   and nothing is computed for the log), on the inputs widened by one row along dim 0
   (``widened``): the two logs must be equal, i.e. the Python made no decision and baked no
   constant from the batch size (``first_difference`` names the first call that differs);
3. the shapeless graph is replayed at the widened batch and must equal that eager graph's values
   (``mismatch``): MLX's own shape inference handled every primitive.

Only then is the trace kept for every batch size (its key has dim 0 of each input wildcarded,
``batchless``); otherwise ``lucid.compile`` warns once, naming the primitive, and traces per
input shape as without ``shapeless``. Step 2 and 3 cost one extra Python pass and one extra
graph run, once per trace, and read the two results on the host at the end of that first call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

# backend functions that only answer questions (no array is made): not worth a log entry
_QUERIES = frozenset({"dtype_name", "to_numpy", "eval", "compile"})
_LEAF = "<tensor>"


def batchless(template: Any) -> Any:
    """A call template (see ``compiler._flatten``) with dim 0 of every tensor wildcarded."""
    if not isinstance(template, tuple) or not template:
        return template
    if template[0] == _LEAF:
        _, shape, dtype, rg = template
        return (_LEAF, (None,) + tuple(shape[1:]) if shape else (), dtype, rg)
    if template[0] in ("tuple", "list"):
        return (template[0], tuple(batchless(v) for v in template[1]))
    if template[0] == "dict":
        return ("dict", tuple((k, batchless(v)) for k, v in template[1]))
    return template


def _sig(value: Any) -> Any:
    """A primitive's argument for the log: arrays as (rank, dtype), the rest as itself."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_sig(v) for v in value)
    if isinstance(value, slice):
        return ("slice", _sig(value.start), _sig(value.stop), _sig(value.step))
    if isinstance(value, dict):
        return tuple(sorted((k, _sig(v)) for k, v in value.items()))
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        if len(shape) == 0 and type(value).__module__.split(".")[0] == "numpy":
            return ("scalar", str(dtype), value.item())      # a NumPy scalar: a constant
        return ("array", len(shape), str(dtype))
    return type(value).__name__


@contextlib.contextmanager
def recording(be: Any, log: list | None) -> Iterator[None]:
    """While active, every public function of the backend module ``be`` appends (name, args)
    to ``log`` before it runs (nothing when ``log`` is None). The module's attributes are
    swapped and restored: only the thread tracing runs lucid code meanwhile."""
    if log is None:
        yield
        return
    saved = {name: f for name, f in vars(be).items()
             if callable(f) and not name.startswith("_") and not isinstance(f, type)
             and name not in _QUERIES and getattr(f, "__module__", None) is not None}

    def recorder(name: str, f: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            log.append((name, _sig(args), _sig(kwargs)))
            return f(*args, **kwargs)
        return call
    for name, f in saved.items():
        setattr(be, name, recorder(name, f))
    try:
        yield
    finally:
        for name, f in saved.items():
            setattr(be, name, f)


def widened(be: Any, arrays: list) -> list:
    """The argument arrays with one more row along dim 0 (a copy of row 0: class targets stay
    valid indices); 0-d arrays as they are."""
    return [be.concatenate([a, be.getitem(a, (slice(0, 1),))], 0) if len(a.shape) else a
            for a in arrays]


def first_difference(a: list, b: list) -> str | None:
    """None when two primitive logs are equal, else the first call that differs, in words."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            if x[0] != y[0]:
                return (f"its Python calls different primitives at different batch sizes "
                        f"(call {i}: {x[0]} vs {y[0]})")
            return (f"primitive {x[0]!r} takes arguments that depend on the batch size "
                    f"({_short(x[1:])} vs {_short(y[1:])})")
    if len(a) != len(b):
        return f"its Python makes {len(a)} primitive calls at one batch size, {len(b)} at another"
    return None


def _short(args: Any) -> str:
    text = repr(args)
    return text if len(text) <= 120 else text[:117] + "..."


def mismatch(be: Any, expected: list, got: list) -> str | None:
    """None when the shapeless replay equals the eager graph (shapes, and values to float32
    rounding of a differently fused graph), else what differs. Reads both on the host."""
    for i, (e, g) in enumerate(zip(expected, got)):
        if tuple(e.shape) != tuple(g.shape):
            return (f"MLX's shapeless replay gives output {i} the shape {tuple(g.shape)} "
                    f"instead of {tuple(e.shape)}")
        x, y = be.to_numpy(e), be.to_numpy(g)
        if x.dtype.kind in "fc":
            nan_x, nan_y = x != x, y != y      # noqa: PLR0124 - NaN tests without numpy
            bad = (nan_x != nan_y) | (abs(x - y) > 1e-4 * abs(x) + 1e-5)
        else:
            bad = x != y
        if bad.any():
            return f"MLX's shapeless replay computes output {i} wrongly at another batch size"
    return None

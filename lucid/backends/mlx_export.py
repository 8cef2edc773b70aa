"""Writing and reading ``.mlxfn`` files (``mx.export_function``): the one place ``lucid.export``
touches mlx, so that ``lucid/export/`` stays backend-agnostic. Imported only by an export (it
needs mlx; ``import lucid`` does not import it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from lucid.backends.contract import carried_axis


def row_major(values: Any) -> mx.array:
    """A fresh, evaluated, row-major MLX array of ``values`` (an ``mx.array`` or a NumPy array).

    Every array an exported function captures goes through this: MLX 0.32's exporter writes a
    captured array's memory as it lies, so a strided view (a transposed weight) would be read
    back in the wrong order, silently. The copy goes through the host (np.ascontiguousarray reads
    a strided buffer in logical order) rather than ``mx.contiguous``, which keeps no such
    promise for an array that is already evaluated and cannot itself be exported."""
    host = np.ascontiguousarray(np.asarray(values))
    out = mx.array(host)
    mx.eval(out)
    return out


def export_function(path: str, fn: Callable[..., Sequence[Any]], inputs: Sequence[Any],
                    shapeless: bool, metadata: str) -> None:
    """``mx.export_function(path, fn, *inputs, shapeless=..., metadata=...)``."""
    mx.export_function(path, fn, *inputs, shapeless=shapeless, metadata=metadata)


def import_function(path: str) -> tuple[Callable[..., Any], str]:
    """(the imported function, its metadata string) of an ``.mlxfn`` file."""
    fn, metadata = mx.import_function(path, return_metadata=True)  # type: ignore[misc]
    return fn, metadata


@contextlib.contextmanager
def batch_free_reshapes(batch: int) -> Iterator[None]:
    """Within the block, the mlx backend's ``reshape`` leaves the batch axis's size to MLX (-1)
    wherever the target carries an input axis of size ``batch`` unchanged (``carried_axis``):
    lucid computes every target shape from the example input's concrete shape, and a shapeless
    export replays a Reshape with its recorded shape, so a concrete batch there would pin the
    batch to the example's."""
    from lucid.backends import mlx_backend

    plain = mlx_backend.reshape

    def reshape(x: Any, shape: Any) -> Any:
        shape = tuple(shape)
        axis = carried_axis(tuple(x.shape), shape, batch) if -1 not in shape else None
        if axis is not None:
            shape = shape[:axis] + (-1,) + shape[axis + 1:]
        return plain(x, shape)

    mlx_backend.reshape = reshape
    try:
        yield
    finally:
        mlx_backend.reshape = plain


def close(got: mx.array, expected: Any) -> bool:
    """Whether an exported function's output matches a NumPy reference in shape and values
    (to float32 rounding of a differently ordered computation)."""
    host = np.asarray(got)
    return host.shape == expected.shape and bool(np.allclose(host, expected, rtol=1e-3,
                                                             atol=1e-4, equal_nan=True))

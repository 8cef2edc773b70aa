"""``to_mlxfn``: a lucid forward traced into MLX and written with ``mx.export_function``."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from typing import Any

from lucid import backends
from lucid.export import common as C
from lucid.functions import concatenate
from lucid.tensor import Tensor

FORMAT = "lucid.mlxfn/1"


def _mlx_export() -> Any:
    """lucid.backends.mlx_export, or ImportError naming mlx."""
    try:
        backends.load("mlx")
        return importlib.import_module("lucid.backends.mlx_export")
    except ImportError as e:
        raise ImportError(f"lucid.export.to_mlxfn needs mlx (the .mlxfn format is MLX's), which "
                          f"could not be imported: {e}") from e


def to_mlxfn(fn_or_module: Any, path: str | os.PathLike, *example_inputs: Tensor,
             shapeless: bool = False) -> None:
    """Write the eval-mode forward of ``fn_or_module`` to ``path`` as an ``.mlxfn`` file.

    The forward runs as in ``module.eval()`` (dropout off, BatchNorm on its running statistics,
    kernel constraints applied as the forward applies them) and without grad; every submodule's
    training flag is restored afterwards. Its ops are traced through lucid into MLX and written
    with ``mx.export_function``; ``mx.import_function(path)`` (Python, C++ or Swift, no lucid
    needed) returns a function of the input arrays that returns a tuple of the outputs.
    ``shapeless=True`` lets the batch axis vary. MLX 0.32 cannot replay every primitive at a
    new shape (slices and pads: pooling with padding or overlapping windows, padding modes), so
    the written file is run once at the example's batch size + 1 against lucid's own forward;
    where it fails or differs, the file is removed and ValueError says to export with
    ``shapeless=False`` (once per batch size needed).

    Backends: a module on the NumPy backend is exported through MLX: its parameters and buffers
    are copied to MLX arrays for the trace (float64 is refused, as MLX has none) and the module
    is left as it was. Without mlx installed the call raises ImportError naming mlx and writes no
    file. A plain function is called with MLX tensors; tensors it closes over must be on MLX.

    Every array the exported function captures (parameters, buffers) is a row-major copy, as MLX
    0.32's exporter writes a strided view's memory in the wrong order; the originals are put back
    afterwards, even when the forward projects weights in place (``enforce="pre_forward"``).

    The file's metadata (``mx.import_function(path, return_metadata=True)``) is a JSON object:
    ``format``, ``lucid_version``, ``inputs`` (name, shape with None for a varying batch axis,
    dtype, layout such as "NCHW") and ``shapeless``.

    example_inputs: Tensors shaped like the forward's inputs (batch axis first), on one backend.
    """
    what = "to_mlxfn"
    path = C.check_args(what, fn_or_module, path, example_inputs)
    if not isinstance(shapeless, bool):
        raise TypeError(f"{what}: shapeless must be a bool, got {shapeless!r}")
    swapped = C.module_tensors(fn_or_module)
    for t in (*example_inputs, *swapped):
        if t.dtype.name == "float64":
            raise ValueError(f"{what}: a float64 tensor of shape {t.shape} cannot be exported: "
                             f"MLX has no float64; convert the module and inputs with "
                             f".to(lucid.float32) first")
    mx_export = _mlx_export()
    be = backends.load("mlx")
    saved = [(t, t.data, t._be, t._ready) for t in swapped]
    existed = os.path.exists(path)
    inputs = [mx_export.row_major(t._be.to_numpy(t.data)) for t in example_inputs]
    from lucid import __version__
    metadata = json.dumps({"format": FORMAT, "lucid_version": __version__,
                           "inputs": C.describe_inputs(example_inputs, shapeless),
                           "shapeless": shapeless})
    try:
        for t, data, old_be, _ in saved:
            t.data, t._be, t._ready = mx_export.row_major(old_be.to_numpy(data)), be, True
        with C.eval_forward(fn_or_module) as forward:
            def traced(*arrays: Any) -> tuple[Any, ...]:
                outs = C.outputs_of(what, forward(*[Tensor._wrap(a, be) for a in arrays]))
                return tuple(t.data for t in outs)

            reshapes = (mx_export.batch_free_reshapes(example_inputs[0].shape[0]) if shapeless
                        else contextlib.nullcontext())
            with reshapes:
                mx_export.export_function(path, traced, inputs, shapeless, metadata)
    except BaseException:
        if not existed and os.path.exists(path):      # no half-written file left behind
            os.remove(path)
        raise
    finally:
        for t, data, old_be, ready in saved:
            t.data, t._be, t._ready = data, old_be, ready
    if shapeless:
        _check_other_batch(path, fn_or_module, example_inputs)


def _check_other_batch(path: str, fn_or_module: Any, example_inputs: tuple) -> None:
    """Run the written file at another batch size (the examples and their first row again)
    against lucid's own eval forward: MLX 0.32 replays only some primitives at a new shape (not
    Slice, Pad or AsStrided, which padded pooling, padding modes and large-kernel convs use) and
    fails, or keeps the old shape, at call time. Such a file is removed and the export refused
    here."""
    mx_export = _mlx_export()
    b = example_inputs[0].shape[0]
    other = tuple(concatenate([t, t[:1]], 0) for t in example_inputs)
    with C.eval_forward(fn_or_module) as forward:
        expected = [t.numpy() for t in C.outputs_of("to_mlxfn", forward(*other))]
    fn, _ = mx_export.import_function(path)
    try:
        got = fn(*[mx_export.row_major(t.numpy()) for t in other])
        problem = None if all(mx_export.close(g, e) for g, e in zip(got, expected)) else (
            f"at batch {b + 1} it returns shapes {[tuple(g.shape) for g in got]} or values "
            f"other than lucid's forward")
    except (ValueError, RuntimeError) as e:
        problem = str(e)
    if problem is not None:
        os.remove(path)
        raise ValueError(f"to_mlxfn: shapeless=True, but MLX cannot run this model's export at "
                         f"another batch size ({problem}); ops such as slices and pads (padded "
                         f"pooling, padding modes) have fixed shapes in an MLX export. Export "
                         f"with shapeless=False, once per batch size you need")

"""The one contract every array backend implements.

Arrays in and out are the backend's own type (``np.ndarray`` / ``mx.array``). Shapes and axes are
tuples of ints; dtypes are lucid dtype *names* (``"float32"``, ``"int64"``, ``"bool"``). Every
primitive is pure: it never writes into an argument. Elementwise primitives broadcast like NumPy.
Everything not listed here (neg, abs, relu, mean, softmax, pooling, padding modes, conv backward...)
is shared code in ``lucid.ops`` built from these primitives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Array = Any
Shape = tuple[int, ...]
Axis = int | tuple[int, ...] | None


class Backend(Protocol):
    name: str                      # "numpy" or "mlx"
    lazy: bool                     # results are pending graphs until ``eval`` (MLX)
    dtypes: frozenset[str]         # dtype names this backend can hold

    def device_type(self) -> str: """ "cpu" or "gpu": where this backend computes."""

    # -- creation and conversion ---------------------------------------------------------------
    def asarray(self, data: Any, dtype: str | None = None) -> Array:
        """Array from scalars, nested lists, NumPy arrays or this backend's arrays. dtype None:
        floats become float32, ints int64, bools bool. A dtype the backend can't hold: TypeError."""

    def to_numpy(self, x: Array) -> Any: """A NumPy copy (host sync on lazy backends)."""
    def dtype_name(self, x: Array) -> str: """The lucid dtype name of x."""
    def full(self, shape: Shape, value: float, dtype: str) -> Array: ...
    def arange(self, start: float, stop: float, step: float, dtype: str) -> Array: ...
    def astype(self, x: Array, dtype: str) -> Array: ...

    # -- elementwise (broadcasting) ------------------------------------------------------------
    def exp(self, x: Array) -> Array: ...
    def log(self, x: Array) -> Array: ...
    def sqrt(self, x: Array) -> Array: ...
    def tanh(self, x: Array) -> Array: ...
    def erf(self, x: Array) -> Array: ...
    def cos(self, x: Array) -> Array: ...
    def sin(self, x: Array) -> Array: ...
    def add(self, a: Array, b: Array) -> Array: ...
    def subtract(self, a: Array, b: Array) -> Array: ...
    def multiply(self, a: Array, b: Array) -> Array: ...
    def divide(self, a: Array, b: Array) -> Array: ...
    def power(self, a: Array, b: Array) -> Array: ...
    def maximum(self, a: Array, b: Array) -> Array: ...
    def equal(self, a: Array, b: Array) -> Array: """bool array"""
    def greater(self, a: Array, b: Array) -> Array: """bool array"""
    def greater_equal(self, a: Array, b: Array) -> Array: """bool array (False for NaN)"""
    def where(self, cond: Array, a: Array, b: Array) -> Array: ...
    # bit work on "uint32" / "uint64" arrays (lucid.random's counter-based generator; these two
    # dtypes are internal and never a tensor's dtype): products wrap modulo 2**64
    def bitwise_xor(self, a: Array, b: Array) -> Array: ...
    def right_shift(self, a: Array, bits: Array) -> Array: ...

    # -- reductions ----------------------------------------------------------------------------
    def sum(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def max(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def argmax(self, x: Array, axis: int | None = None, keepdims: bool = False) -> Array:
        """int64 indices of the first maximum (flat index when axis is None)."""
    def cumsum(self, x: Array, axis: int) -> Array: """Running sum along axis, dtype kept."""

    # -- movement ------------------------------------------------------------------------------
    def reshape(self, x: Array, shape: Shape) -> Array: ...
    def transpose(self, x: Array, axes: Shape) -> Array: ...
    def broadcast_to(self, x: Array, shape: Shape) -> Array: ...
    def concatenate(self, xs: Sequence[Array], axis: int) -> Array: ...
    def pad(self, x: Array, widths: Sequence[tuple[int, int]], value: float = 0.0) -> Array:
        """Constant padding; every (lo, hi) >= 0."""
    def getitem(self, x: Array, index: Any) -> Array:
        """NumPy basic and integer-array indexing; index arrays are this backend's int arrays."""
    def setitem(self, x: Array, index: Any, value: Array) -> Array:
        """A copy of x with x[index] = value."""
    def scatter_add(self, shape: Shape, index: Any, values: Array) -> Array:
        """zeros(shape) with values added at index; duplicate indices accumulate."""

    # -- linear algebra ------------------------------------------------------------------------
    def matmul(self, a: Array, b: Array) -> Array: """NumPy matmul rules (batch dims broadcast)."""

    def conv2d(self, x: Array, w: Array, stride: tuple[int, int], pad_lo: tuple[int, int],
               pad_hi: tuple[int, int], dilation: tuple[int, int],
               input_dilation: tuple[int, int], groups: int, flip: bool) -> Array:
        """Cross-correlation (convolution when flip) in channels-last layout.

        x (N, H, W, C), w (O, kh, kw, C // groups) -> (N, Ho, Wo, O), where the input is first
        dilated by input_dilation (zeros between pixels), then zero-padded by pad_lo/pad_hi (>= 0),
        and Ho, Wo are ``conv_output_size`` (below) of each spatial axis.
        """

    # -- laziness ------------------------------------------------------------------------------
    def eval(self, *arrays: Array) -> None: """Force computation (MLX: mx.eval; NumPy: nothing)."""
    def compile(self, pure_fn: Any) -> Any:
        """A compiled form of pure_fn (a list of arrays -> a list of arrays, no side effects
        on arrays): traced once per input shapes and dtypes and replayed (MLX: mx.compile;
        NumPy: pure_fn itself)."""

    # -- collectives (data parallel across processes) ------------------------------------------
    def init_distributed(self, backend: str) -> Any:
        """The global process group: an object with ``rank()`` and ``size()``. ``backend`` is
        "any", "ring", "mpi", "nccl" or "jaccl"; without a launcher, a group of size 1. A backend
        that cannot run several processes raises RuntimeError when it was launched as several."""

    def all_sum(self, x: Array, group: Any) -> Array:
        """The elementwise sum of x over every rank of group (same shape and dtype on all ranks).
        Lazy like any primitive, so it can be part of a compiled graph."""

# -- the conv geometry: the one home of the output-size formulas ------------------------------
def dilated_size(size: int, dilation: int) -> int:
    """Length of an axis after ``dilation - 1`` zeros are put between its entries."""
    return (size - 1) * dilation + 1 if size > 0 else 0


def conv_output_size(size: int, kernel: int, stride: int = 1, lo: int = 0, hi: int = 0,
                     dilation: int = 1, input_dilation: int = 1) -> int:
    """Output length of ``conv2d`` along one axis: the input dilated by input_dilation, padded
    by lo + hi, windows spanning dilation * (kernel - 1) + 1 every stride. Below 1 when no
    window fits."""
    span = dilated_size(size, input_dilation) + lo + hi - dilation * (kernel - 1) - 1
    return span // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution (PyTorch's ``ConvTranspose2d``) along one axis:
    (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1

"""The one contract every array backend implements.

Arrays in and out are the backend's own type (``np.ndarray`` / ``mx.array``). Shapes and axes are
tuples of ints; dtypes are lucid dtype *names* (``"float32"``, ``"int64"``, ``"bool"``). Every
primitive is pure: it never writes into an argument. Elementwise primitives broadcast like NumPy.
Everything not listed here (neg, abs, relu, mean, softmax, pooling, padding modes, conv backward...)
is shared code in ``lucid.ops`` built from these primitives.

Half precision (float16, bfloat16): elementwise primitives round each result to the half type;
``sum``, ``matmul`` and ``conv`` accumulate in float32 and round once at the end (MLX's Metal
kernels do; the NumPy reference widens, computes and narrows), so the backends agree within a
half-precision ulp. ``dtypes`` is ``lucid.dtypes.supported(name)``: the table decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Array = Any
Shape = tuple[int, ...]
Ints = tuple[int, ...]
Axis = int | tuple[int, ...] | None


class Backend(Protocol):
    name: str                      # "numpy" or "mlx"
    lazy: bool                     # results are pending graphs until ``eval`` (MLX)
    dtypes: frozenset[str]         # dtype names this backend can hold (from lucid.dtypes' table)

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

    def conv(self, x: Array, w: Array, stride: Shape, pad_lo: Shape, pad_hi: Shape,
             dilation: Shape, input_dilation: Shape, groups: int, flip: bool) -> Array:
        """Cross-correlation (convolution when flip) of rank 1, 2 or 3, channels-last.

        x (N, *S, C), w (O, *k, C // groups) -> (N, *S_out, O), with one spatial axis per rank
        (L; H, W; D, H, W) and one entry per spatial axis in every tuple. The input is first
        dilated by input_dilation (zeros between pixels), then zero-padded by pad_lo/pad_hi
        (>= 0); each S_out is ``conv_output_size`` (below) of its axis. Every convolution pass
        (forward, both gradients, transposed) is one call of this primitive (``lucid.ops.conv``).
        """

    # -- laziness ------------------------------------------------------------------------------
    def eval(self, *arrays: Array) -> None: """Force computation (MLX: mx.eval; NumPy: nothing)."""
    def compile(self, pure_fn: Any, shapeless: bool = False) -> Any:
        """A compiled form of pure_fn (a list of arrays -> a list of arrays, no side effects
        on arrays): traced once per input shapes and dtypes and replayed (MLX: mx.compile;
        NumPy: pure_fn itself). ``shapeless``: once per input ranks and dtypes, the graph
        replayed at other shapes (MLX's ``shapeless=True``; its caller must make sure the graph
        does not depend on the shapes, see ``lucid.compiler_shapeless``)."""

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
    """Output length of ``conv`` along one axis: the input dilated by input_dilation, padded
    by lo + hi, windows spanning dilation * (kernel - 1) + 1 every stride. Below 1 when no
    window fits."""
    span = dilated_size(size, input_dilation) + lo + hi - dilation * (kernel - 1) - 1
    return span // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution (PyTorch's ``ConvTranspose2d``) along one axis:
    (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution's geometry, normalised once (every tuple has one entry per spatial axis).

    kernel, stride, dilation, input_dilation: positive ints. lo, hi: the zero (or
    ``padding_mode``) padding before and after each axis, >= 0 — "same" resolved with the
    kernel (its extra pixel on the high side), "valid" as zeros. For a transposed conv, lo = hi =
    PyTorch's ``padding`` and ``output_padding`` is set. ``padding`` keeps the user's form (for
    repr). channels_last: input (N, *spatial, C) instead of (N, C, *spatial).
    """

    rank: int
    kernel: Ints
    stride: Ints
    lo: Ints
    hi: Ints
    dilation: Ints
    input_dilation: Ints
    groups: int
    output_padding: Ints
    padding_mode: str
    channels_last: bool
    transposed: bool
    padding: Any

    def output_size(self, spatial: Ints) -> Ints:
        """The output's spatial sizes for an input of spatial sizes ``spatial``."""
        if self.transposed:
            return tuple(conv_transpose_output_size(n, k, s, p, q, d) for n, k, s, p, q, d in zip(
                spatial, self.kernel, self.stride, self.lo, self.output_padding, self.dilation))
        return tuple(conv_output_size(n, k, s, lo, hi, d, di) for n, k, s, lo, hi, d, di in zip(
            spatial, self.kernel, self.stride, self.lo, self.hi, self.dilation,
            self.input_dilation))

    def padded_size(self, spatial: Ints) -> Ints:
        """Each spatial size after input dilation and padding (a conv's windows span this)."""
        return tuple(dilated_size(n, di) + lo + hi for n, di, lo, hi in zip(
            spatial, self.input_dilation, self.lo, self.hi))

    @property
    def mode_pads(self) -> bool:
        """True when the padding is not zeros: shared code pads first, the conv pads nothing."""
        return self.padding_mode != "zeros" and (any(self.lo) or any(self.hi))

    @property
    def conv_pads(self) -> tuple[Ints, Ints]:
        """The zero pads (lo, hi) the convolution itself applies (none after mode padding)."""
        if self.mode_pads:
            return (0,) * self.rank, (0,) * self.rank
        return self.lo, self.hi


def carried_axis(src: Ints, dst: Ints, size: int) -> int | None:
    """The axis of a reshape's target ``dst`` that carries an axis of ``src`` of length ``size``
    unchanged (the first such pair: the same length after the same number of elements), or
    None. Exports use it to leave the batch axis free: a target shape computed from an example
    input names the example's batch size, which the exported reshape must not pin."""
    before_src, seen = 1, set[int]()
    for n in src:
        if n == size:
            seen.add(before_src)
        before_src *= n
    before_dst = 1
    for i, n in enumerate(dst):
        if n == size and before_dst in seen:
            return i
        before_dst *= n
    return None

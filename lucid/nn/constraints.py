"""Weight constraints: each a small parameter-free module ``w -> w'`` over Tensor ops, so it runs
and differentiates the same way on every backend. Use one as ``ConstrainedConvNd(constraint=...)``
(by name or as the object), with ``lucid.nn.utils.parametrize.register_parametrization`` on any
parameter, or call it directly; any callable Tensor -> Tensor serves as a constraint too.
``get_config()`` gives the arguments as given and ``cls.from_config(config)`` rebuilds the
constraint (Keras's pair).

Slice families act on each slice over ``axes``: by default (``axes=None``) every axis after the
first two of a weight with 3 or more dims (a kernel slice W[o, i, ...] of a conv weight of any
rank) and the last two axes of a 2-D weight (the whole matrix of a Linear weight); S is the
slice's sum:

- ``NonNeg()``:                 max(W, 0)
- ``SumToOne(eps)``:            W / (S + eps)
- ``ZeroMean()``:               W − mean(W)
- ``NonNegSumToOne(eps)``:      P / (ΣP + eps),  P = max(W, 0)
- ``UnitL2(eps)``:              W / sqrt(ΣW² + eps)
- ``MaxL2(max_l2, eps)``:       W · min(1, max_l2 / sqrt(ΣW² + eps))
- ``FixedCenter(center_value, neighbor_sum, eps)``: the centre tap (voxel) becomes center_value
  and the other taps N are scaled to sum to neighbor_sum: N · neighbor_sum / (ΣN + eps) (Bayar &
  Stamm's constrained layer; an odd size on every slice axis).

Norm families (Keras / selfeeg) act on the L2 norm n over ``axis`` (default (1, 2, 3): one norm
per output filter of a conv weight), with eps = 1e-7:

- ``MaxNorm(max_value, axis)``:                 W · clip(n, 0, max_value) / (eps + n)
- ``MinMaxNorm(min_value, max_value, rate, axis)``:
  W · (rate · clip(n, min_value, max_value) + (1 − rate) · n) / (eps + n)
- ``UnitNorm(axis)``:                           W / (eps + n)

Degenerate slices (the same rule on both backends). The sum families divide by D = S + eps. A
slice is degenerate when that denominator is tiny beside the slice's own magnitude M (Σ|W|, the
sum of the absolute values being normalised: Σ max(W, 0) for NonNegSumToOne, Σ|N| of the
neighbours for FixedCenter): |D| ≤ 1e-5 · M, or M = 0 (nothing to normalise). Dividing by such a
D would blow up or miss the target sum, so a degenerate slice becomes the uniform kernel that
satisfies the constraint: 1/K everywhere (SumToOne, NonNegSumToOne; K taps per slice), or
neighbor_sum / (K − 1) on every neighbour (FixedCenter). Every other slice gets the formula
exactly, whatever eps (eps=0.25 gives W / (S + 0.25)). An all-zero slice or filter stays zero
under UnitL2, MaxL2 and the norm families. Values and gradients are finite in every case.
"""

from __future__ import annotations

import numbers
from typing import Any

from lucid.creation import zeros
from lucid.functions import where
from lucid.nn.module import Module
from lucid.ops import axes as AX
from lucid.tensor import Tensor

TINY = 1e-5            # |S + eps| at most this part of the slice's magnitude: degenerate
KERAS_EPS = 1e-7       # the norm families' epsilon (Keras, selfeeg)


def _number(v: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {v!r}")
    x = float(v)
    if positive and not x > 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    if not positive and not x >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    return x


def _axis_spec(axis: Any, name: str = "axis") -> tuple[int, ...]:
    """An axis argument checked for form (ints, none repeated); the range is checked against
    the weight at each call (``lucid.ops.axes``)."""
    items = (axis,) if isinstance(axis, numbers.Integral) and not isinstance(axis, bool) else axis
    if not isinstance(items, (tuple, list)) or not items or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in items):
        raise TypeError(f"{name} must be an int or a non-empty tuple of ints, got {axis!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"{name} {tuple(items)} has a repeated axis")
    return tuple(int(a) for a in items)


def _slice_axes(w: Tensor, axes: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The slice axes of w: ``axes`` (checked against w's rank), or by default every axis after
    the first two (ndim >= 3) / the last two (a 2-D weight)."""
    if axes is not None:
        return AX.axes(axes, w.ndim, name="axes")
    if w.ndim >= 3:
        return tuple(range(2, w.ndim))
    return tuple(range(max(0, w.ndim - 2), w.ndim))


def _given(v: Any) -> Any:
    """An axis argument as given, for get_config: an int stays an int, a list becomes a tuple."""
    return tuple(v) if isinstance(v, list) else v


def _normalised(p: Tensor, magnitude: Tensor, target: float, eps: float, uniform: Tensor,
                axes: tuple[int, ...]) -> Tensor:
    """p · target / (Σp + eps) per slice, or ``uniform`` where the slice is degenerate."""
    d = p.sum(axis=axes, keepdims=True) + eps
    bad = (magnitude == 0) | (d.abs() <= magnitude * TINY)
    return where(bad, uniform, p * (target / where(bad, 1.0, d)))


class Constraint(Module):
    """Base: a parameter-free module mapping a raw weight to the constrained one. ``name`` is the
    string ``ConstrainedConvNd(constraint=...)`` knows it by; ``get_config()`` gives the
    arguments that rebuild it, as given (as Keras constraints do), and ``from_config`` rebuilds
    it."""

    name = "none"

    def forward(self, w: Tensor) -> Tensor:
        return w

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """The constraint ``cls(**config)``: ``cls.from_config(c.get_config())`` rebuilds c."""
        return cls(**config)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError if a weight of ``shape`` cannot take this constraint (called by the
        constrained layers before they allocate the weight)."""

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())


class NoConstraint(Constraint):
    """The identity (``constraint="none"``)."""


class NonNeg(Constraint):
    """max(W, 0) elementwise (Keras's NonNeg)."""

    name = "nonneg"

    def forward(self, w: Tensor) -> Tensor:
        return w.relu()


class _SliceConstraint(Constraint):
    """A slice family: acts per slice over ``axes`` (None: the default slice axes, see the
    module docstring)."""

    def __init__(self, axes: Any = None) -> None:
        super().__init__()
        self.axes_given = _given(axes)
        self.axes = None if axes is None else _axis_spec(axes, "axes")

    def slice_axes(self, w: Tensor) -> tuple[int, ...]:
        return _slice_axes(w, self.axes)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if self.axes is not None:
            AX.axes(self.axes, len(shape), name="axes")

    def get_config(self) -> dict[str, Any]:
        return {} if self.axes is None else {"axes": self.axes_given}


class ZeroMean(_SliceConstraint):
    """W − mean(W) per slice."""

    name = "zero_mean"

    def forward(self, w: Tensor) -> Tensor:
        return w - w.mean(axis=self.slice_axes(w), keepdims=True)


class _EpsConstraint(_SliceConstraint):
    def __init__(self, eps: float = 1e-12, axes: Any = None) -> None:
        super().__init__(axes)
        self.eps = _number(eps, "eps")

    def get_config(self) -> dict[str, Any]:
        return {"eps": self.eps, **super().get_config()}


class SumToOne(_EpsConstraint):
    """W / (ΣW + eps) per slice (degenerate slices: see the module docstring)."""

    name = "sum_to_one"

    def numerator(self, w: Tensor) -> Tensor:
        return w

    def forward(self, w: Tensor) -> Tensor:
        ax = self.slice_axes(w)
        p = self.numerator(w)
        k = 1
        for a in ax:
            k *= w.shape[a]
        return _normalised(p, p.abs().sum(axis=ax, keepdims=True), 1.0, self.eps,
                           w.detach() * 0.0 + 1.0 / k, ax)


class NonNegSumToOne(SumToOne):
    """max(W, 0) / (Σmax(W, 0) + eps) per slice."""

    name = "nonneg_sum1"

    def numerator(self, w: Tensor) -> Tensor:
        return w.relu()


class UnitL2(_EpsConstraint):
    """W / sqrt(ΣW² + eps) per slice: unit L2 norm."""

    name = "unit_l2"

    def forward(self, w: Tensor) -> Tensor:
        den = (w * w).sum(axis=self.slice_axes(w), keepdims=True) + self.eps
        pos = den > 0
        return where(pos, w / where(pos, den, 1.0).sqrt(), 0.0)


class MaxL2(_EpsConstraint):
    """W · min(1, max_l2 / sqrt(ΣW² + eps)) per slice: L2 norm at most ``max_l2``."""

    name = "max_l2"

    def __init__(self, max_l2: float, eps: float = 1e-12, axes: Any = None) -> None:
        super().__init__(eps, axes)
        self.max_l2 = _number(max_l2, "max_l2", positive=True)

    def forward(self, w: Tensor) -> Tensor:
        den = (w * w).sum(axis=self.slice_axes(w), keepdims=True) + self.eps
        pos = den > 0
        scale = where(pos, self.max_l2 / where(pos, den, 1.0).sqrt(), 1.0)
        return w * scale.clip(max=1.0)

    def get_config(self) -> dict[str, Any]:
        return {"max_l2": self.max_l2, **super().get_config()}


class FixedCenter(_EpsConstraint):
    """Centre tap (voxel) = center_value; the neighbours scaled to sum to neighbor_sum (an odd
    size on every slice axis)."""

    name = "fixed_center"

    def __init__(self, center_value: float = -1.0, neighbor_sum: float = 1.0,
                 eps: float = 1e-12, axes: Any = None) -> None:
        super().__init__(eps, axes)
        for v, n in ((center_value, "center_value"), (neighbor_sum, "neighbor_sum")):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{n} must be a number, got {v!r}")
        self.center_value, self.neighbor_sum = float(center_value), float(neighbor_sum)

    def _check_axes(self, shape: tuple[int, ...], ax: tuple[int, ...]) -> None:
        sizes = tuple(shape[a] for a in ax)
        if any(n % 2 == 0 for n in sizes):
            raise ValueError(f"fixed_center needs an odd size on every slice axis {ax}, got "
                             f"sizes {sizes} of a weight of shape {shape}")
        if all(n == 1 for n in sizes):
            raise ValueError(f"fixed_center needs neighbours: a kernel of sizes {sizes} has none")

    def check_shape(self, shape: tuple[int, ...]) -> None:
        ax = AX.axes(self.axes, len(shape), name="axes") if self.axes is not None else \
            tuple(range(2, len(shape))) if len(shape) >= 3 else \
            tuple(range(max(0, len(shape) - 2), len(shape)))
        self._check_axes(shape, ax)

    def forward(self, w: Tensor) -> Tensor:
        ax = self.slice_axes(w)
        self._check_axes(w.shape, ax)
        shape = tuple(w.shape[a] if a in ax else 1 for a in range(w.ndim))
        taps = 1
        for a in ax:
            taps *= w.shape[a]
        c = zeros(*shape, dtype=w.dtype, device=w.backend)
        c[tuple(n // 2 for n in shape)] = 1.0                  # the centre of every slice axis
        nb = w * (1.0 - c)
        uniform = (1.0 - c) * (self.neighbor_sum / (taps - 1)) + w.detach() * 0.0
        out = _normalised(nb, nb.abs().sum(axis=ax, keepdims=True), self.neighbor_sum, self.eps,
                          uniform, ax)
        return out + c * self.center_value

    def get_config(self) -> dict[str, Any]:
        return {"center_value": self.center_value, "neighbor_sum": self.neighbor_sum,
                **super().get_config()}


class _NormConstraint(Constraint):
    def __init__(self, axis: Any = (1, 2, 3)) -> None:
        super().__init__()
        self.axis_given = _given(axis)
        self.axis = _axis_spec(axis)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        AX.axes(self.axis, len(shape), name="axis")

    def _norm_and_scale(self, w: Tensor, target_of) -> Tensor:
        n = w.norm(2, axis=AX.axes(self.axis, w.ndim, name="axis"), keepdims=True)
        return w * (target_of(n) / (n + KERAS_EPS))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis_given}


class MaxNorm(_NormConstraint):
    """Keras's MaxNorm: W · clip(n, 0, max_value) / (eps + n), n the L2 norm over ``axis``."""

    name = "max_norm"

    def __init__(self, max_value: float, axis: Any = (1, 2, 3)) -> None:
        super().__init__(axis)
        self.max_value = _number(max_value, "max_norm", positive=True)

    def forward(self, w: Tensor) -> Tensor:
        return self._norm_and_scale(w, lambda n: n.clip(0.0, self.max_value))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis_given}


class MinMaxNorm(_NormConstraint):
    """Keras's MinMaxNorm: W · (rate · clip(n, min_value, max_value) + (1 − rate) · n) / (eps + n),
    n the L2 norm over ``axis``."""

    name = "min_max_norm"

    def __init__(self, min_value: float, max_value: float, rate: float = 1.0,
                 axis: Any = (1, 2, 3)) -> None:
        super().__init__(axis)
        self.min_value = _number(min_value, "min_norm", positive=True)
        self.max_value = _number(max_value, "max_norm", positive=True)
        if self.min_value > self.max_value:
            raise ValueError(f"min_norm={min_value} must not exceed max_norm={max_value}")
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or \
                not 0 < float(rate) <= 1:
            raise ValueError(f"minmax_rate must be in (0, 1], got {rate!r}")
        self.rate: float = float(rate)

    def forward(self, w: Tensor) -> Tensor:
        r = self.rate
        return self._norm_and_scale(
            w, lambda n: n.clip(self.min_value, self.max_value) * r + n * (1.0 - r))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis_given}


class UnitNorm(_NormConstraint):
    """Keras's UnitNorm: W / (eps + n), n the L2 norm over ``axis``."""

    name = "unit_norm"

    def forward(self, w: Tensor) -> Tensor:
        return self._norm_and_scale(w, lambda n: 1.0)


SLICE_CONSTRAINTS: dict[str, type[Constraint]] = {
    c.name: c for c in (NoConstraint, NonNeg, SumToOne, ZeroMean, NonNegSumToOne, UnitL2, MaxL2,
                        FixedCenter)}
NORM_CONSTRAINTS: dict[str, type[Constraint]] = {
    c.name: c for c in (MaxNorm, MinMaxNorm, UnitNorm)}


class CallableConstraint(Constraint):
    """Any callable Tensor -> Tensor used as a constraint (a function, or a Module that is not a
    Constraint), so that every constrained layer holds a Constraint."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"constraint must be a name, a Constraint or a callable Tensor -> "
                            f"Tensor, got {fn!r}")
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def forward(self, w: Tensor) -> Tensor:
        return self.fn(w)

    def extra_repr(self) -> str:
        return f"fn={self.name}"


def build(constraint: Any, kernel_size: tuple[int, ...], *, eps: float = 1e-12,
          max_l2: float | None = None, center_value: float = -1.0, neighbor_sum: float = 1.0,
          max_norm: float | None = None, min_norm: float | None = None,
          axis_norm: Any = None, minmax_rate: float = 1.0) -> Constraint:
    """The constraint a ``ConstrainedConvNd``'s arguments select, validated, for a weight
    (O, I/g, *kernel_size) of any rank.

    ``constraint`` is a name, a Constraint (used as it is) or any callable Tensor -> Tensor
    (wrapped in ``CallableConstraint``); the keyword arguments configure a named constraint
    only. With ``constraint="none"`` and ``max_norm`` given, the norm family is chosen as selfeeg
    does: max_norm alone -> MaxNorm; min_norm and max_norm -> MinMaxNorm; both 1.0 -> UnitNorm,
    over ``axis_norm`` (None: every axis but 0)."""
    ndim = len(kernel_size) + 2
    if not isinstance(constraint, str):
        if isinstance(constraint, Constraint):
            return constraint
        return CallableConstraint(constraint)
    choices = list(SLICE_CONSTRAINTS) + list(NORM_CONSTRAINTS)
    if constraint not in choices:
        raise ValueError(f"unknown constraint {constraint!r}; choose one of {', '.join(choices)}")
    norm_given = max_norm is not None or min_norm is not None
    if constraint in SLICE_CONSTRAINTS and constraint != "none" and norm_given:
        raise ValueError(f"max_norm/min_norm apply to the norm constraints, not to "
                         f"constraint={constraint!r}; leave constraint='none' to use them")
    if max_l2 is not None and constraint != "max_l2":
        raise ValueError(f"max_l2={max_l2} applies only to constraint='max_l2', "
                         f"got constraint={constraint!r}")
    _number(eps, "eps")
    if constraint == "none" and norm_given:
        constraint = norm_family(max_norm, min_norm)
    if constraint in NORM_CONSTRAINTS:
        axes = tuple(range(1, ndim)) if axis_norm is None else axis_norm
        return norm_constraint(constraint, max_norm, min_norm, axes, minmax_rate, ndim=ndim)
    if constraint == "max_l2":
        if max_l2 is None:
            raise ValueError("constraint='max_l2' needs max_l2 (the largest L2 norm), got None")
        return MaxL2(max_l2, eps)
    if constraint == "fixed_center":
        if any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"constraint='fixed_center' needs an odd kernel in every dim, got "
                             f"kernel_size={tuple(kernel_size)}")
        if all(k == 1 for k in kernel_size):
            size = "x".join("1" * len(kernel_size))
            raise ValueError(f"constraint='fixed_center' needs neighbours: a {size} kernel has "
                             "none")
        return FixedCenter(center_value, neighbor_sum, eps)
    cls = SLICE_CONSTRAINTS[constraint]
    return cls(eps) if issubclass(cls, _EpsConstraint) else cls()


def norm_family(max_norm: float | None, min_norm: float | None) -> str:
    """selfeeg's rule: max_norm alone -> "max_norm"; min_norm and max_norm -> "min_max_norm";
    both 1.0 -> "unit_norm"."""
    if max_norm is None:
        raise ValueError(f"min_norm={min_norm} needs max_norm as well (MinMaxNorm)")
    if min_norm is None:
        return "max_norm"
    return "unit_norm" if min_norm == 1.0 and max_norm == 1.0 else "min_max_norm"


def norm_constraint(family: str, max_norm: Any, min_norm: Any, axis_norm: Any, rate: Any,
                    ndim: int) -> Constraint:
    """The norm constraint ``family`` over ``axis_norm`` of an ``ndim``-D weight, validated."""
    try:
        axes = _axis_spec(axis_norm, "axis_norm")
        AX.axes(axes, ndim, name="axis_norm")
    except (TypeError, IndexError, ValueError) as e:
        raise ValueError(f"axis_norm must hold axes of the {ndim}-D weight in -{ndim}..{ndim - 1}"
                         f", each once, got {axis_norm!r} ({e})") from None
    if family == "unit_norm":
        return UnitNorm(axes)
    if family == "max_norm":
        if max_norm is None:
            raise ValueError("constraint='max_norm' needs max_norm")
        return MaxNorm(max_norm, axes)
    if max_norm is None or min_norm is None:
        raise ValueError("constraint='min_max_norm' needs min_norm and max_norm")
    return MinMaxNorm(min_norm, max_norm, rate, axes)

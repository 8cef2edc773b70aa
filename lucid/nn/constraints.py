"""Kernel constraints: each a small ``w -> w'`` over Tensor ops, so it runs and differentiates the
same way on every backend.

Per-slice families act on each kernel slice W[o, i, :, :] (sums over the last two axes):

- ``none``:         W
- ``nonneg``:       max(W, 0)
- ``sum_to_one``:   W / (ΣW + eps)
- ``zero_mean``:    W − mean(W)
- ``nonneg_sum1``:  max(W, 0) / (Σ max(W, 0) + eps)
- ``unit_l2``:      W / sqrt(ΣW² + eps)
- ``max_l2``:       W · min(1, c / sqrt(ΣW² + eps)),  c = max_l2
- ``fixed_center``: centre tap = center_value; the other taps N scaled to sum to neighbor_sum:
                    N · neighbor_sum / (ΣN + eps)   (Bayar & Stamm's constrained layer)

Norm families (selfeeg / Keras) act on the L2 norm n over ``axis_norm`` (default (1, 2, 3): one
norm per output filter), with eps = 1e-7:

- ``max_norm``:     W · clip(n, 0, max) / (eps + n)
- ``min_max_norm``: W · (rate · clip(n, min, max) + (1 − rate) · n) / (eps + n)
- ``unit_norm``:    W / (eps + n)

Degenerate slices (numerically safe, the same rule on both backends). A slice whose normalising
sum S (ΣW for sum_to_one, Σmax(W, 0) for nonneg_sum1, the neighbours' ΣN for fixed_center) is
zero or tiny — |S| ≤ 1e-5 · Σ|W| (cancellation) or |S| ≤ 1e5 · eps (eps no longer negligible) —
would be divided by ~eps and blow up or miss the target sum; such a slice is replaced by the
uniform kernel that satisfies the constraint:
1/(kh·kw) everywhere (sum_to_one, nonneg_sum1) or neighbor_sum/(kh·kw − 1) on every neighbour
(fixed_center). An all-zero slice or filter stays zero under unit_l2, max_l2 and the norm
families. Ordinary slices get the formulas above exactly.
"""

from __future__ import annotations

from typing import Any

from lucid.creation import zeros
from lucid.functions import where
from lucid.nn.module import Module
from lucid.tensor import Tensor

TINY = 1e-5                    # relative size below which a normalising sum counts as degenerate
SLICE = (2, 3)                 # the spatial axes of an OIHW kernel


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """num / den where den != 0, else 0 (both branches finite, so gradients stay finite)."""
    nz = den != 0
    return where(nz, num / where(nz, den, 1.0), 0.0)


def _norm(w: Tensor, axes: tuple[int, ...]) -> Tensor:
    """L2 norm over axes (kept), with a finite gradient at an all-zero slice."""
    s = (w * w).sum(axis=axes, keepdims=True)
    pos = s > 0
    return where(pos, where(pos, s, 1.0).sqrt(), 0.0)


def _degenerate(total: Tensor, magnitude: Tensor, eps: float) -> Tensor:
    """True where dividing by (total + eps) would not normalise: the sum has cancelled to a tiny
    part of the slice's magnitude, or eps is not negligible beside it."""
    a = total.abs()
    return (a <= magnitude * TINY) | (a <= eps / TINY) | (magnitude == 0)


def _uniform_like(w: Tensor, value: float) -> Tensor:
    return w.detach() * 0.0 + value


class Constraint(Module):
    """Base: a parameter-free module mapping a raw OIHW kernel to the constrained one."""

    name = "none"

    def forward(self, w: Tensor) -> Tensor:
        return w

    def extra_repr(self) -> str:
        return ""


class NoConstraint(Constraint):
    name = "none"


class NonNeg(Constraint):
    name = "nonneg"

    def forward(self, w: Tensor) -> Tensor:
        return w.relu()


class ZeroMean(Constraint):
    name = "zero_mean"

    def forward(self, w: Tensor) -> Tensor:
        return w - w.mean(axis=SLICE, keepdims=True)


class _EpsConstraint(Constraint):
    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class SumToOne(_EpsConstraint):
    """W / (ΣW + eps); subclasses change what is summed (the numerator)."""

    name = "sum_to_one"

    def numerator(self, w: Tensor) -> Tensor:
        return w

    def forward(self, w: Tensor) -> Tensor:
        p = self.numerator(w)
        s = p.sum(axis=SLICE, keepdims=True)
        bad = _degenerate(s, w.abs().sum(axis=SLICE, keepdims=True), self.eps)
        k = w.shape[2] * w.shape[3]
        return where(bad, _uniform_like(w, 1.0 / k), p / (where(bad, 1.0, s) + self.eps))


class NonNegSumToOne(SumToOne):
    """max(W, 0) / (Σmax(W, 0) + eps)."""

    name = "nonneg_sum1"

    def numerator(self, w: Tensor) -> Tensor:
        return w.relu()


class UnitL2(_EpsConstraint):
    name = "unit_l2"

    def forward(self, w: Tensor) -> Tensor:
        den = (w * w).sum(axis=SLICE, keepdims=True) + self.eps
        return _safe_div(w, where(den > 0, den, 1.0).sqrt() * (den > 0))


class MaxL2(_EpsConstraint):
    name = "max_l2"

    def __init__(self, eps: float, max_l2: float) -> None:
        super().__init__(eps)
        self.max_l2 = max_l2

    def forward(self, w: Tensor) -> Tensor:
        den = (w * w).sum(axis=SLICE, keepdims=True) + self.eps
        pos = den > 0
        scale = where(pos, self.max_l2 / where(pos, den, 1.0).sqrt(), 1.0)
        return w * scale.clip(max=1.0)

    def extra_repr(self) -> str:
        return f"max_l2={self.max_l2}, eps={self.eps}"


class FixedCenter(_EpsConstraint):
    name = "fixed_center"

    def __init__(self, eps: float, center_value: float, neighbor_sum: float) -> None:
        super().__init__(eps)
        self.center_value, self.neighbor_sum = center_value, neighbor_sum

    def center_mask(self, w: Tensor) -> Tensor:
        """(1, 1, kh, kw): 1 at the centre tap, 0 elsewhere."""
        kh, kw = w.shape[2], w.shape[3]
        c = zeros(1, 1, kh, kw, dtype=w.dtype, device=w.backend)
        c[..., kh // 2, kw // 2] = 1.0
        return c

    def forward(self, w: Tensor) -> Tensor:
        c = self.center_mask(w)
        nb = w * (1.0 - c)
        s = nb.sum(axis=SLICE, keepdims=True)
        bad = _degenerate(s, nb.abs().sum(axis=SLICE, keepdims=True), self.eps)
        k = w.shape[2] * w.shape[3]
        scaled = nb * (self.neighbor_sum / (where(bad, 1.0, s) + self.eps))
        uniform = (1.0 - c) * (self.neighbor_sum / (k - 1)) + w.detach() * 0.0
        return where(bad, uniform, scaled) + c * self.center_value

    def extra_repr(self) -> str:
        return f"center_value={self.center_value}, neighbor_sum={self.neighbor_sum}, eps={self.eps}"


class _NormConstraint(Constraint):
    EPS = 1e-7                 # Keras' epsilon, as selfeeg uses

    def __init__(self, axis: tuple[int, ...]) -> None:
        super().__init__()
        self.axis = axis

    def _scaled(self, w: Tensor, target: Tensor, n: Tensor) -> Tensor:
        return w * (target / (n + self.EPS))


class MaxNorm(_NormConstraint):
    name = "max_norm"

    def __init__(self, max_norm: float, axis: tuple[int, ...]) -> None:
        super().__init__(axis)
        self.max_norm = max_norm

    def forward(self, w: Tensor) -> Tensor:
        n = _norm(w, self.axis)
        return self._scaled(w, n.clip(0.0, self.max_norm), n)

    def extra_repr(self) -> str:
        return f"max_norm={self.max_norm}, axis={self.axis}"


class MinMaxNorm(_NormConstraint):
    name = "min_max_norm"

    def __init__(self, min_norm: float, max_norm: float, rate: float,
                 axis: tuple[int, ...]) -> None:
        super().__init__(axis)
        self.min_norm, self.max_norm, self.rate = min_norm, max_norm, rate

    def forward(self, w: Tensor) -> Tensor:
        n = _norm(w, self.axis)
        target = n.clip(self.min_norm, self.max_norm) * self.rate + n * (1.0 - self.rate)
        return self._scaled(w, target, n)

    def extra_repr(self) -> str:
        return f"min_norm={self.min_norm}, max_norm={self.max_norm}, rate={self.rate}, " \
               f"axis={self.axis}"


class UnitNorm(_NormConstraint):
    name = "unit_norm"

    def forward(self, w: Tensor) -> Tensor:
        return w / (_norm(w, self.axis) + self.EPS)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


SLICE_CONSTRAINTS: dict[str, type[Constraint]] = {
    c.name: c for c in (NoConstraint, NonNeg, SumToOne, ZeroMean, NonNegSumToOne, UnitL2, MaxL2,
                        FixedCenter)}
NORM_CONSTRAINTS: dict[str, type[Constraint]] = {
    c.name: c for c in (MaxNorm, MinMaxNorm, UnitNorm)}


def build(constraint: str, kernel_size: tuple[int, int], *, eps: float = 1e-12,
          max_l2: float | None = None, center_value: float = -1.0, neighbor_sum: float = 1.0,
          max_norm: float | None = None, min_norm: float | None = None,
          axis_norm: Any = (1, 2, 3), minmax_rate: float = 1.0) -> Constraint:
    """Validate the arguments and return the constraint module they select.

    With ``constraint="none"`` and ``max_norm`` given, the norm family is chosen as selfeeg does:
    max_norm alone -> MaxNorm; min_norm and max_norm -> MinMaxNorm; both 1.0 -> UnitNorm."""
    choices = list(SLICE_CONSTRAINTS) + list(NORM_CONSTRAINTS)
    if not isinstance(constraint, str) or constraint not in choices:
        raise ValueError(f"unknown constraint {constraint!r}; choose one of {', '.join(choices)}")
    if not isinstance(eps, (int, float)) or eps < 0:
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")
    norm_given = max_norm is not None or min_norm is not None
    if constraint in SLICE_CONSTRAINTS and constraint != "none" and norm_given:
        raise ValueError(f"max_norm/min_norm apply to the norm constraints, not to "
                         f"constraint={constraint!r}; leave constraint='none' to use them")
    if max_l2 is not None and constraint != "max_l2":
        raise ValueError(f"max_l2={max_l2} applies only to constraint='max_l2', "
                         f"got constraint={constraint!r}")
    if constraint == "none" and norm_given:
        constraint = _select_norm(max_norm, min_norm)
    if constraint in NORM_CONSTRAINTS:
        return _build_norm(constraint, max_norm, min_norm, axis_norm, minmax_rate)
    if constraint == "max_l2":
        if max_l2 is None:
            raise ValueError("constraint='max_l2' needs max_l2 (the largest L2 norm), got None")
        if not isinstance(max_l2, (int, float)) or max_l2 <= 0:
            raise ValueError(f"max_l2 must be > 0, got {max_l2!r}")
        return MaxL2(eps, float(max_l2))
    if constraint == "fixed_center":
        kh, kw = kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"constraint='fixed_center' needs an odd kernel in both dims, got "
                             f"kernel_size={kernel_size}")
        if kh * kw == 1:
            raise ValueError("constraint='fixed_center' needs neighbours: a 1x1 kernel has none")
        return FixedCenter(eps, float(center_value), float(neighbor_sum))
    cls = SLICE_CONSTRAINTS[constraint]
    return cls(eps) if issubclass(cls, _EpsConstraint) else cls()


def _select_norm(max_norm: float | None, min_norm: float | None) -> str:
    if max_norm is None:
        raise ValueError(f"min_norm={min_norm} needs max_norm as well (MinMaxNorm)")
    if min_norm is None:
        return "max_norm"
    return "unit_norm" if min_norm == 1.0 and max_norm == 1.0 else "min_max_norm"


def _build_norm(name: str, max_norm: Any, min_norm: Any, axis_norm: Any,
                rate: Any) -> Constraint:
    axes = (axis_norm,) if isinstance(axis_norm, int) else tuple(axis_norm)
    if not axes or any(not isinstance(a, int) or not -4 <= a < 4 for a in axes):
        raise ValueError(f"axis_norm must hold axes of the 4-D weight in -4..3, got {axis_norm!r}")
    axes = tuple(sorted(a % 4 for a in axes))
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis_norm has a repeated axis: {axis_norm!r}")
    if name == "unit_norm":
        return UnitNorm(axes)
    if max_norm is None:
        raise ValueError(f"constraint={name!r} needs max_norm")
    if not isinstance(max_norm, (int, float)) or max_norm <= 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    if name == "max_norm":
        return MaxNorm(float(max_norm), axes)
    if min_norm is None:
        raise ValueError("constraint='min_max_norm' needs min_norm")
    if not isinstance(min_norm, (int, float)) or min_norm <= 0:
        raise ValueError(f"min_norm must be > 0, got {min_norm!r}")
    if min_norm > max_norm:
        raise ValueError(f"min_norm={min_norm} must not exceed max_norm={max_norm}")
    if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise ValueError(f"minmax_rate must be in (0, 1], got {rate!r}")
    return MinMaxNorm(float(min_norm), float(max_norm), float(rate), axes)

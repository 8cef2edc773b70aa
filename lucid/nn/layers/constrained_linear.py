"""ConstrainedLinear: selfeeg's ConstrainedDense, a Linear layer with a norm constraint."""

from __future__ import annotations

from typing import Any

from lucid.autograd import no_grad
from lucid.nn import constraints as K
from lucid.nn import functional as F
from lucid.nn.layers.linear import Linear
from lucid.nn.utils import parametrize
from lucid.tensor import Tensor

ENFORCE = ("forward", "post_step", "pre_forward")


class ConstrainedLinear(Linear):
    """y = x @ W'.T + b with W' the weight (out, in) under a Keras/selfeeg norm constraint over
    ``axis_norm`` (default 1: each output unit's vector of input weights, as selfeeg's
    ConstrainedDense; EEGNet's classifier uses max_norm=0.25): ``max_norm`` alone -> MaxNorm,
    with ``min_norm`` -> MinMaxNorm (``minmax_rate``), both 1.0 -> UnitNorm; ``max_norm=None``
    leaves the weight unconstrained. Formulas in ``lucid.nn.constraints``.

    enforce: "forward" (W' = constraint(W) in every forward, differentiably; W stays raw),
    "post_step" (W projected in place after each optimizer step), "pre_forward" (projected in
    place before each forward, selfeeg's timing); the in-place timings also project at
    construction. ``constrained_weight()`` is W', ``project_()`` writes it into W."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 max_norm: float | None = 2.0, min_norm: float | None = None,
                 axis_norm: Any = 1, minmax_rate: float = 1.0, enforce: str = "forward",
                 device: Any = None, dtype: Any = None, weight_init: Any = None,
                 bias_init: Any = None) -> None:
        if not isinstance(enforce, str) or enforce not in ENFORCE:
            raise ValueError(f"unknown enforce {enforce!r}; choose one of {', '.join(ENFORCE)}")
        if max_norm is None and min_norm is None:
            fn: K.Constraint = K.NoConstraint()
        else:
            fn = K.norm_constraint(K.norm_family(max_norm, min_norm), max_norm, min_norm,
                                   axis_norm, minmax_rate, ndim=2)
        super().__init__(in_features, out_features, bias, device, dtype,
                         weight_init=weight_init, bias_init=bias_init)
        self.constraint = fn
        self.enforce = enforce
        if enforce != "forward":
            parametrize.add_projection(self, "weight", self.project_, enforce)

    enforce = "forward"        # the class default while Linear.__init__ draws the first weight

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.enforce != "forward":
            self.project_()

    def constrained_weight(self) -> Tensor:
        """The weight the forward multiplies by."""
        return self.constraint(self.weight) if self.enforce == "forward" else self.weight

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.constrained_weight(), self.bias)

    @no_grad()
    def project_(self) -> ConstrainedLinear:
        """Write constraint(W) into the weight Parameter in place; returns self."""
        self.weight._set_data(self.constraint(self.weight).data)
        return self

    def extra_repr(self) -> str:
        params = self.constraint.extra_repr()
        return super().extra_repr() + f", constraint={self.constraint.name!r}, " \
            f"enforce={self.enforce!r}" + (", " + params if params else "")

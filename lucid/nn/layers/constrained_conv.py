"""ConstrainedConv2d: a Conv2d whose kernel obeys a structural prior (see ``nn.constraints``)."""

from __future__ import annotations

from typing import Any

from lucid.autograd import no_grad
from lucid.nn import constraints as K
from lucid.nn import conv_args as A
from lucid.nn.layers.conv import Conv2d
from lucid.nn.utils import parametrize
from lucid.tensor import Tensor

ENFORCE = ("forward", "post_step", "pre_forward")


class ConstrainedConv2d(Conv2d):
    """Conv2d with a kernel constraint. Takes every Conv2d argument, then keyword-only:

    constraint: none | nonneg | sum_to_one | zero_mean | nonneg_sum1 | unit_l2 | max_l2 |
        fixed_center, per kernel slice W[o, i] (formulas and the degenerate-slice rule in
        ``lucid.nn.constraints``); or the selfeeg/Keras norm families, chosen automatically when
        ``max_norm`` is given and constraint is "none": max_norm alone -> MaxNorm, with min_norm ->
        MinMaxNorm (``minmax_rate``), both 1.0 -> UnitNorm, the norm taken over ``axis_norm``.
    enforce:
        "forward"     the forward convolves with constraint(W), differentiably (W stays raw);
        "post_step"   the forward uses W; ``project_()`` writes constraint(W) into W in place,
                      and every lucid optimizer does so after each ``step()`` (the post_step
                      timing of ``lucid.nn.utils.parametrize``);
        "pre_forward" W is projected in place, without grad, at the start of each forward
                      (selfeeg's timing; a forward pre-hook).
        post_step and pre_forward project once at construction, so the first forward already
        satisfies the constraint.
    With a ``weight_mask`` the constraint applies to W * mask. input_dilation, weight_init and
    bias_init are Conv2d's (post_step and pre_forward project the initial weight).

    Weight (C_out, C_in/groups, kh, kw); input/output as Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None, *,
                 data_format: str = "channels_first", weight_mask: Any = None,
                 constraint: str = "none", enforce: str = "forward", eps: float = 1e-12,
                 max_l2: float | None = None, center_value: float = -1.0,
                 neighbor_sum: float = 1.0, max_norm: float | None = None,
                 min_norm: float | None = None, axis_norm: Any = (1, 2, 3),
                 minmax_rate: float = 1.0, input_dilation: Any = 1, weight_init: Any = None,
                 bias_init: Any = None) -> None:
        if not isinstance(enforce, str) or enforce not in ENFORCE:
            raise ValueError(f"unknown enforce {enforce!r}; choose one of {', '.join(ENFORCE)}")
        fn = K.build(constraint, A.pair(kernel_size, "kernel_size"), eps=eps, max_l2=max_l2,
                     center_value=center_value, neighbor_sum=neighbor_sum, max_norm=max_norm,
                     min_norm=min_norm, axis_norm=axis_norm, minmax_rate=minmax_rate)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, data_format=data_format,
                         weight_mask=weight_mask, input_dilation=input_dilation,
                         weight_init=weight_init, bias_init=bias_init)
        self.constraint = fn                   # a parameter-free submodule
        self.eps = eps
        self.enforce = enforce
        if enforce != "forward":               # the in-place timings: projected from now on
            parametrize.add_projection(self, "weight", self.project_, enforce)

    # The class default: while Conv2d.__init__ draws the first weight nothing is projected yet
    # (the constraint does not exist); the instance's own value is set right after.
    enforce = "forward"

    @property
    def constraint_name(self) -> str:
        return self.constraint.name

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.enforce != "forward":
            self.project_()

    def constrained_weight(self) -> Tensor:
        """The kernel the forward convolves with (post_step and pre_forward: the stored weight,
        projected in place already)."""
        w = self.masked_weight()
        return self.constraint(w) if self.enforce == "forward" else w

    def kernel(self) -> Tensor:
        return self.constrained_weight()

    @no_grad()
    def project_(self) -> ConstrainedConv2d:
        """Write constraint(W) into the weight Parameter in place (same object); returns self."""
        self.weight._set_data(self.constraint(self.masked_weight()).data)
        return self

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", constraint={self.constraint.name!r}, " \
                                   f"enforce={self.enforce!r}"
        params = self.constraint.extra_repr()
        return s + (", " + params if params else "")

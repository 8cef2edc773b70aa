"""ConstrainedConv1d/2d/3d: a convolution whose kernel obeys a structural prior (see
``nn.constraints``). One mechanism for every rank: ``_ConstrainedConv`` builds the constraint for
the layer's weight shape and only changes the kernel the shared convolution forward uses."""

from __future__ import annotations

from typing import Any

from lucid.autograd import no_grad
from lucid.nn import constraints as K
from lucid.nn import conv_args as A
from lucid.nn.layers.conv import Conv1d, Conv2d, Conv3d, _Conv
from lucid.nn.utils import parametrize
from lucid.tensor import Tensor

ENFORCE = ("forward", "post_step", "pre_forward")


class _ConstrainedConv(_Conv):
    """A ConvNd with a kernel constraint. Takes every ConvNd argument, then keyword-only:

    constraint: a name — none | nonneg | sum_to_one | zero_mean | nonneg_sum1 | unit_l2 | max_l2 |
        fixed_center, per kernel slice W[o, i, ...] over every spatial axis (formulas and the
        degenerate-slice rule in ``lucid.nn.constraints``; fixed_center fixes the centre tap or
        voxel and needs an odd size on every spatial axis); or the selfeeg/Keras norm families,
        chosen automatically when ``max_norm`` is given and constraint is "none": max_norm alone
        -> MaxNorm, with min_norm -> MinMaxNorm (``minmax_rate``), both 1.0 -> UnitNorm, the norm
        taken over ``axis_norm`` (default: every axis but 0). Or a Constraint object, or any
        callable Tensor -> Tensor, used as it is.
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
    bias_init are the ConvNd's (post_step and pre_forward project the initial weight).

    Weight (C_out, C_in/groups, *kernel); input/output as the ConvNd's.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None, *,
                 data_format: str = "channels_first", weight_mask: Any = None,
                 constraint: Any = "none", enforce: str = "forward", eps: float = 1e-12,
                 max_l2: float | None = None, center_value: float = -1.0,
                 neighbor_sum: float = 1.0, max_norm: float | None = None,
                 min_norm: float | None = None, axis_norm: Any = None,
                 minmax_rate: float = 1.0, input_dilation: Any = 1, weight_init: Any = None,
                 bias_init: Any = None) -> None:
        if not isinstance(enforce, str) or enforce not in ENFORCE:
            raise ValueError(f"unknown enforce {enforce!r}; choose one of {', '.join(ENFORCE)}")
        k = A.ntuple(kernel_size, "kernel_size", self.rank)
        if not isinstance(constraint, str):
            named = {"max_l2": max_l2, "max_norm": max_norm, "min_norm": min_norm,
                     "axis_norm": axis_norm}
            given = [n for n, v in named.items() if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)} configure a constraint given by name; "
                                 f"constraint={constraint!r} is an object: configure it there")
        fn = K.build(constraint, k, eps=eps, max_l2=max_l2, center_value=center_value,
                     neighbor_sum=neighbor_sum, max_norm=max_norm, min_norm=min_norm,
                     axis_norm=axis_norm, minmax_rate=minmax_rate)
        # The weight shape, to check the constraint against before any parameter exists.
        in_ch = A.positive_int(in_channels, "in_channels")
        out_ch = A.positive_int(out_channels, "out_channels")
        g = A.groups(groups, in_ch, out_ch)
        try:
            fn.check_shape((out_ch, in_ch // g) + k)
        except (IndexError, TypeError) as e:
            raise ValueError(f"constraint {fn!r} does not fit the weight "
                             f"{(out_ch, in_ch // g) + k}: {e}") from None
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, data_format=data_format,
                         weight_mask=weight_mask, input_dilation=input_dilation,
                         weight_init=weight_init, bias_init=bias_init)
        self.constraint = fn                   # a parameter-free submodule
        self.eps = eps
        self.enforce = enforce
        if enforce != "forward":               # the in-place timings: projected from now on
            parametrize.add_projection(self, "weight", self.project_, enforce)

    # The class default: while ConvNd.__init__ draws the first weight nothing is projected yet
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
    def project_(self) -> _ConstrainedConv:
        """Write constraint(W) into the weight Parameter in place (same object); returns self."""
        self.weight._set_data(self.constraint(self.masked_weight()).data)
        return self

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", constraint={self.constraint.name!r}, " \
                                   f"enforce={self.enforce!r}"
        params = self.constraint.extra_repr()
        return s + (", " + params if params else "")


class ConstrainedConv1d(_ConstrainedConv, Conv1d):
    """Conv1d with a kernel constraint (lucid 2.x's, selfeeg's): weight (C_out, C_in/groups, k);
    slice families act on each W[o, i, :]; axis_norm defaults to (1, 2)."""


class ConstrainedConv2d(_ConstrainedConv, Conv2d):
    """Conv2d with a kernel constraint: weight (C_out, C_in/groups, kh, kw); slice families act
    on each W[o, i, :, :]; axis_norm defaults to (1, 2, 3). Arguments: see ``_ConstrainedConv``."""


class ConstrainedConv3d(_ConstrainedConv, Conv3d):
    """Conv3d with a kernel constraint (lucid 2.14.6's): weight (C_out, C_in/groups, kd, kh, kw);
    slice families act on each W[o, i, :, :, :]; fixed_center fixes the centre voxel; axis_norm
    defaults to (1, 2, 3, 4)."""

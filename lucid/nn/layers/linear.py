"""Linear, Identity and Flatten."""

from __future__ import annotations

import functools
import math
from typing import Any

from lucid import dtypes
from lucid.creation import zeros
from lucid.nn import conv_args as A
from lucid.nn import functional as F
from lucid.nn import init
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter
from lucid.tensor import Tensor


class Linear(Module):
    """y = x @ W.T + b; x (..., in_features) -> (..., out_features).
    W (out, in) and b (out,) ~ U(±1/sqrt(in_features)) as PyTorch's default, or, keyword-only,
    from weight_init / bias_init: a callable ``init(tensor)`` filling the parameter in place
    (``lucid.nn.init`` style) or an array/Tensor of its exact shape. ``reset_parameters()``
    applies them again."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None, *, weight_init: Any = None,
                 bias_init: Any = None) -> None:
        super().__init__()
        in_f = A.positive_int(in_features, "in_features")
        out_f = A.positive_int(out_features, "out_features")
        w_init = init.check_initializer(weight_init, "weight_init", (out_f, in_f))
        b_init = init.check_initializer(bias_init, "bias_init", (out_f,))
        if b_init is not None and not bias:
            raise ValueError("bias_init is given but bias=False: the layer has no bias")
        self.in_features, self.out_features = in_f, out_f
        self._inits = (w_init, b_init)           # applied by reset_parameters (again on reset)
        dt = dtypes.get(dtype) or dtypes.float32
        self.weight = Parameter(zeros(out_features, in_features, dtype=dt, device=device))
        if bias:
            self.bias = Parameter(zeros(out_features, dtype=dt, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        uniform = functools.partial(init.uniform_, a=-bound, b=bound)
        w_init, b_init = self._inits
        init.apply_initializer(self.weight, w_init, "weight_init", uniform)
        if self.bias is not None:
            init.apply_initializer(self.bias, b_init, "bias_init", uniform)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Identity(Module):
    """Returns its input; takes and ignores any arguments, as PyTorch's does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flatten dims start_dim..end_dim (default: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

"""Model-level helpers."""

from __future__ import annotations

from lucid.nn.conv_args import same_padding  # noqa: F401  (public: lucid.nn.utils.same_padding)
from lucid.nn.module import Module


def project_constraints(model: Module) -> Module:
    """Project every post_step ConstrainedConv2d in ``model`` (in place); returns the model."""
    from lucid.nn.layers.constrained_conv import ConstrainedConv2d
    for m in model.modules():
        if isinstance(m, ConstrainedConv2d) and m.enforce == "post_step":
            m.project_()
    return model

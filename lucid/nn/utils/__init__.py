"""Model-level helpers: constraints on any parameter (``parametrize``), ``project_constraints``,
gradient clipping, and ``same_padding`` (TF/Keras 'SAME' padding with a stride)."""

from __future__ import annotations

from lucid.nn.conv_args import same_padding
from lucid.nn.module import Module
from lucid.nn.utils import parametrizations, parametrize
from lucid.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_


def project_constraints(model: Module) -> Module:
    """Project, in place, every post_step constraint in ``model``: post_step
    ``ConstrainedConv2d``/``ConstrainedLinear`` layers and post_step parametrizations (what every
    lucid optimizer does after ``step()`` for the parameters it updated). Returns the model."""
    for m in model.modules():
        parametrize.project_post_step(m)
    return model


__all__ = ["clip_grad_norm_", "clip_grad_value_", "parametrizations", "parametrize",
           "project_constraints", "same_padding"]

"""A lucid ``nn.Sequential`` as torch and mlx.nn models with the same layer shapes (convolutions,
BatchNorm and pooling of every rank).

The raw-framework rows of the training-step benchmark must run the same network as lucid, and
must follow the examples when their model builders change, so they are derived from the lucid
model rather than written out a second and third time. Only the layer kinds the benchmarked
nets use are known; anything else raises TypeError naming the class, so a changed demo fails
loudly instead of timing a different net. Weights are each framework's own initialisation:
step time does not depend on the values.

``ConstrainedConv2d(constraint="fixed_center")`` follows its ``enforce``, written in each
framework with the formula of ``lucid.nn.constraints.FixedCenter`` (neighbours scaled to sum to
``neighbor_sum``, centre set to ``center_value``; lucid's fallback for degenerate slices is left
out). ``"post_step"``: a plain conv plus a projection the raw step applies after its optimizer
step. ``"forward"``: the kernel is constrained in every forward, differentiably (torch: a
``torch.nn.utils.parametrize`` parametrization; mlx.nn: a Conv2d whose call constrains its
weight first).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Projection = Callable[[Any], None]


CONVS = {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3, "ConstrainedConv1d": 1,
         "ConstrainedConv2d": 2, "ConstrainedConv3d": 3}
RANKED = {f"{kind}{r}d": (kind, r) for kind in ("BatchNorm", "MaxPool", "AvgPool")
          for r in (1, 2, 3)}


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)     # type: ignore[return-value]


def _padding(m: Any) -> tuple[int, ...]:
    """A conv's zero padding per spatial axis, read from its geometry record (so 'same' and
    'valid' translate too); pads that differ between the two sides of an axis raise."""
    geo = m.geometry
    if geo.lo != geo.hi:
        raise TypeError(f"{type(m).__name__}(padding={m.padding!r}): pads {geo.lo} before and "
                        f"{geo.hi} after differ; only symmetric padding is translated")
    return geo.lo


def _fixed_center(m: Any) -> tuple[str, float, float, float] | None:
    """(enforce, center_value, neighbor_sum, eps) of a ConstrainedConv2d the raw steps can
    reproduce, None for a plain Conv2d."""
    if not type(m).__name__.startswith("ConstrainedConv"):
        return None
    c = m.constraint
    if m.enforce not in ("forward", "post_step") or c.name != "fixed_center":
        raise TypeError(f"{type(m).__name__}(constraint={c.name!r}, enforce={m.enforce!r}): only "
                        "fixed_center with enforce='forward' or 'post_step' is translated")
    if len(m.kernel_size) != 2:
        raise TypeError(f"{type(m).__name__}: only the 2-D fixed_center is translated")
    return m.enforce, c.center_value, c.neighbor_sum, m.eps


def _check_conv(m: Any) -> None:
    if any(v != 1 for v in m.input_dilation) or m.padding_mode != "zeros" \
            or getattr(m, "weight_mask", None) is not None:
        raise TypeError(f"{m!r}: only zero-padded convs without masks or input dilation")


# -- torch ---------------------------------------------------------------------------------

def to_torch(seq: Any) -> tuple[Any, list[Projection]]:
    """(torch.nn.Sequential, projections to call under no_grad after each optimizer step)."""
    import torch
    tn = torch.nn
    layers: list[Any] = []
    projections: list[Projection] = []
    for m in seq:
        kind = type(m).__name__
        if kind in CONVS:
            _check_conv(m)
            o, i_g = m.weight.shape[:2]
            conv = getattr(tn, f"Conv{CONVS[kind]}d")(
                i_g * m.groups, o, m.kernel_size, m.stride, _padding(m), m.dilation, m.groups,
                bias=m.bias is not None)
            spec = _fixed_center(m)
            if spec is not None and spec[0] == "post_step":
                projections.append(_torch_fixed_center(conv, *spec[1:]))
            elif spec is not None:
                torch.nn.utils.parametrize.register_parametrization(
                    conv, "weight", _torch_fixed_center_module(conv.kernel_size, *spec[1:]))
            layers.append(conv)
        elif kind in RANKED and RANKED[kind][0] == "BatchNorm":
            layers.append(getattr(tn, kind)(m.num_features, m.eps, m.momentum))
        elif kind in RANKED:
            layers.append(getattr(tn, kind)(m.kernel_size, m.stride, m.padding))
        elif kind == "Linear":
            layers.append(tn.Linear(m.in_features, m.out_features, bias=m.bias is not None))
        elif kind == "Flatten":
            layers.append(tn.Flatten(m.start_dim, m.end_dim))
        elif kind == "Dropout":
            layers.append(tn.Dropout(m.p))
        elif kind in ("ReLU", "Tanh"):
            layers.append(getattr(tn, kind)())
        else:
            raise TypeError(f"no torch translation for {kind}")
    return tn.Sequential(*layers), projections


def _torch_centre(k: tuple[int, int]) -> Any:
    import torch
    c = torch.zeros(1, 1, *k)
    c[..., k[0] // 2, k[1] // 2] = 1.0
    return c


def _torch_constrain(w: Any, c: Any, center: float, total: float, eps: float) -> Any:
    nb = w * (1.0 - c)
    return nb * (total / (nb.sum(dim=(2, 3), keepdim=True) + eps)) + c * center


def _torch_fixed_center(conv: Any, center: float, total: float, eps: float) -> Projection:
    import torch
    c = _torch_centre(conv.kernel_size)

    def project(_: Any = None) -> None:
        conv.weight.copy_(_torch_constrain(conv.weight, c, center, total, eps))
    with torch.no_grad():                   # as lucid: the first forward already satisfies it
        project(None)
    return project


def _torch_fixed_center_module(k: tuple[int, int], center: float, total: float,
                               eps: float) -> Any:
    """A torch module w -> fixed_center(w), for ``parametrize.register_parametrization``."""
    import torch

    class FixedCenter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("c", _torch_centre(k))

        def forward(self, w: Any) -> Any:
            return _torch_constrain(w, self.c, center, total, eps)
    return FixedCenter()


# -- mlx.nn --------------------------------------------------------------------------------

def to_mlx(seq: Any) -> tuple[Any, list[Projection]]:
    """(mlx.nn.Sequential taking NHWC input, projections ``p(model)`` to apply after each
    optimizer step, inside the compiled step where there is one)."""
    import mlx.nn as mn
    layers: list[Any] = []
    projections: list[Projection] = []
    for m in seq:
        kind = type(m).__name__
        if kind in CONVS:
            _check_conv(m)
            o, i_g = m.weight.shape[:2]
            k = m.kernel_size
            spec = _fixed_center(m)
            cls = _mlx_fixed_center_conv_class(k, *spec[1:]) \
                if spec and spec[0] == "forward" else getattr(mn, f"Conv{CONVS[kind]}d")
            pad, stride, dil = _padding(m), m.stride, m.dilation
            if CONVS[kind] == 1:                    # mlx.nn.Conv1d takes ints
                conv = cls(i_g * m.groups, o, k[0], stride[0], pad[0], dil[0], m.groups,
                           bias=m.bias is not None)
            elif CONVS[kind] == 3:                  # mlx.nn.Conv3d has no groups
                if m.groups != 1:
                    raise TypeError(f"{m!r}: mlx.nn.Conv3d has no groups")
                conv = cls(i_g, o, k, stride, pad, dil, bias=m.bias is not None)
            else:
                conv = cls(i_g * m.groups, o, k, stride, pad, dil, m.groups,
                           bias=m.bias is not None)
            if spec is not None and spec[0] == "post_step":
                projections.append(_mlx_fixed_center(len(layers), k, *spec[1:]))
            layers.append(conv)
        elif kind in RANKED and RANKED[kind][0] == "BatchNorm":
            cls = _mlx_batch_norm_5d_class() if kind == "BatchNorm3d" else mn.BatchNorm
            layers.append(cls(m.num_features, m.eps, m.momentum))
        elif kind in RANKED:
            layers.append(getattr(mn, kind)(m.kernel_size, m.stride, m.padding))
        elif kind == "Linear":
            layers.append(mn.Linear(m.in_features, m.out_features, bias=m.bias is not None))
        elif kind == "Flatten":
            if (m.start_dim, m.end_dim) != (1, -1):
                raise TypeError(f"Flatten({m.start_dim}, {m.end_dim}): only Flatten(1, -1)")
            layers.append(_mlx_flatten_class()())
        elif kind == "Dropout":
            layers.append(mn.Dropout(m.p))
        elif kind in ("ReLU", "Tanh"):
            layers.append(getattr(mn, kind)())
        else:
            raise TypeError(f"no mlx.nn translation for {kind}")
    model = mn.Sequential(*layers)
    for p in projections:
        p(model)
    return model, projections


@functools.cache
def _mlx_flatten_class() -> type:
    """mlx.nn has no Flatten layer; the class is made on first use (mlx imported lazily)."""
    import mlx.nn as mn

    class Flatten(mn.Module):
        """(N, ...) -> (N, prod(...)); NHWC order, so the feature order differs from lucid's
        NCHW flatten, which does not change the cost."""

        def __call__(self, x: Any) -> Any:
            return x.reshape(x.shape[0], -1)
    return Flatten


@functools.cache
def _mlx_batch_norm_5d_class() -> type:
    """mlx.nn.BatchNorm takes at most 4-D input: a (N, D, H, W, C) batch is normalised as
    (N, D·H, W, C), the same statistics per channel."""
    import mlx.nn as mn

    class BatchNorm5d(mn.BatchNorm):
        def __call__(self, x: Any) -> Any:
            n, d, h, w, c = x.shape
            return super().__call__(x.reshape(n, d * h, w, c)).reshape(n, d, h, w, c)
    return BatchNorm5d


def _mlx_centre(k: tuple[int, int]) -> Any:
    import mlx.core as mx
    kh, kw = k
    c = mx.zeros((1, kh, kw, 1))
    c[:, kh // 2, kw // 2, :] = 1.0         # mlx conv weights are (O, kh, kw, I)
    return c


def _mlx_constrain(w: Any, c: Any, center: float, total: float, eps: float) -> Any:
    nb = w * (1.0 - c)
    return nb * (total / (nb.sum(axis=(1, 2), keepdims=True) + eps)) + c * center


def _mlx_fixed_center(index: int, k: tuple[int, int], center: float, total: float,
                      eps: float) -> Projection:
    c = _mlx_centre(k)

    def project(model: Any) -> None:
        conv = model.layers[index]
        conv.weight = _mlx_constrain(conv.weight, c, center, total, eps)
    return project


@functools.cache
def _mlx_fixed_center_conv_class(k: tuple[int, int], center: float, total: float,
                                 eps: float) -> type:
    """An mlx.nn.Conv2d (kernel ``k``) whose call uses fixed_center(weight); made on first use,
    as mlx is imported lazily. The centre mask is made once here: an mx.array attribute of the
    module would become a trainable parameter."""
    import mlx.core as mx
    import mlx.nn as mn
    c = _mlx_centre(k)

    class FixedCenterConv2d(mn.Conv2d):
        def __call__(self, x: Any) -> Any:
            w = _mlx_constrain(self.weight, c, center, total, eps)
            y = mx.conv2d(x, w, self.stride, self.padding, self.dilation, self.groups)
            return y + self.bias if "bias" in self else y
    return FixedCenterConv2d

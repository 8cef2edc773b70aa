"""EEGNet (Lawhern et al. 2018) in two references: braindecode 1.8.1's ``EEGNet`` (its layout and
state-dict keys, so its checkpoints load) and the canonical Keras EEGNet-8,2 of arl-eegmodels
(``eegnet_keras``)."""

from __future__ import annotations

import math
from typing import Any

from lucid.models._blocks import Ensure4d, Permute, Renorm, SqueezeFinalOutput, output_shape
from lucid.models._checks import check_signal, positive, probability
from lucid.nn import init
from lucid.nn.layers.activation import ELU, Dropout
from lucid.nn.layers.constrained_conv import ConstrainedConv2d
from lucid.nn.layers.constrained_linear import ConstrainedLinear
from lucid.nn.layers.container import Sequential
from lucid.nn.layers.conv import Conv2d
from lucid.nn.layers.linear import Flatten, Linear
from lucid.nn.layers.normalization import BatchNorm2d
from lucid.nn.layers.pooling import AvgPool2d, MaxPool2d
from lucid.nn.module import Module
from lucid.nn.utils.parametrize import register_parametrization

POOLS = {"mean": AvgPool2d, "max": MaxPool2d}


def _pool_class(pool_mode: Any) -> type:
    if pool_mode not in POOLS:
        raise ValueError(f"pool_mode must be 'mean' or 'max', got {pool_mode!r}")
    return POOLS[pool_mode]


class EEGNet(Sequential):
    """EEGNet-v4 as braindecode 1.8.1 builds it: input (N, n_chans, n_times), output
    (N, n_outputs) logits.

    Layers (braindecode's names): ``conv_temporal`` Conv2d(1, F1, (1, kernel_length), padding
    (0, kernel_length // 2), no bias) -> ``bnorm_temporal`` -> ``conv_spatial`` Conv2d(F1, F1·D,
    (n_chans, 1), groups=F1, no bias) under a differentiable max-norm ``conv_spatial_max_norm``
    (``torch.renorm`` over dim 0, a ``register_parametrization(..., enforce="forward")``: key
    ``conv_spatial.parametrizations.weight.original``) -> ``bnorm_1`` -> ``elu_1`` -> ``pool_1``
    (1, pool1_kernel_size) -> ``drop_1`` -> ``conv_separable_depth`` (1, depthwise_kernel_length)
    depthwise -> ``conv_separable_point`` 1×1 to F2 -> ``bnorm_2`` -> ``elu_2`` -> ``pool_2`` ->
    ``drop_2`` -> ``final_layer``: ``conv_classifier`` Conv2d(F2, n_outputs, (1,
    final_conv_length)) without max-norm (braindecode's default), or with
    ``final_layer_with_constraint=True`` a flattened ``linearconstraint`` Linear under max-norm
    ``norm_rate`` (key ``final_layer.linearconstraint.parametrizations.weight.original``).
    BatchNorms use ``batch_norm_momentum`` (PyTorch's convention), ``batch_norm_eps``.

    Initialisation as braindecode's: PyTorch's default for the convolutions, Xavier-uniform
    for ``conv_spatial``, BatchNorm weights 1 and every bias 0. braindecode probes the output size
    with a zero input while the model is in training mode, which moves its BatchNorm running
    variances to 1 - momentum and ``num_batches_tracked`` to 1; lucid probes the same way, so a
    fresh model's state dict matches braindecode's too.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int,
                 final_conv_length: Any = "auto", pool_mode: str = "mean", F1: int = 8,
                 D: int = 2, F2: int | None = None, kernel_length: int = 64, *,
                 depthwise_kernel_length: int = 16, pool1_kernel_size: int = 4,
                 pool2_kernel_size: int = 8, conv_spatial_max_norm: float = 1,
                 activation: type[Module] = ELU, batch_norm_momentum: float = 0.01,
                 batch_norm_affine: bool = True, batch_norm_eps: float = 1e-3,
                 drop_prob: float = 0.25, final_layer_with_constraint: bool = False,
                 norm_rate: float = 0.25) -> None:
        super().__init__()
        check_signal(n_chans, n_outputs, n_times)
        for name, v in (("F1", F1), ("D", D), ("kernel_length", kernel_length),
                        ("depthwise_kernel_length", depthwise_kernel_length),
                        ("pool1_kernel_size", pool1_kernel_size),
                        ("pool2_kernel_size", pool2_kernel_size)):
            positive(v, name)
        F2 = F1 * D if F2 is None else positive(F2, "F2")
        if final_conv_length != "auto":
            positive(final_conv_length, "final_conv_length")
        probability(drop_prob, "drop_prob")
        pool = _pool_class(pool_mode)
        self.n_chans, self.n_outputs, self.n_times = n_chans, n_outputs, n_times
        self.F1, self.D, self.F2 = F1, D, F2

        def bnorm(n: int) -> BatchNorm2d:
            return BatchNorm2d(n, momentum=batch_norm_momentum, affine=batch_norm_affine,
                               eps=batch_norm_eps)

        self.add_module("ensuredims", Ensure4d())
        self.add_module("dimshuffle", Permute(0, 3, 1, 2))       # (N, C, T, 1) -> (N, 1, C, T)
        self.add_module("conv_temporal", Conv2d(1, F1, (1, kernel_length), bias=False,
                                                padding=(0, kernel_length // 2)))
        self.add_module("bnorm_temporal", bnorm(F1))
        spatial = Conv2d(F1, F1 * D, (n_chans, 1), bias=False, groups=F1)
        init.xavier_uniform_(spatial.weight, gain=1.0)
        register_parametrization(spatial, "weight", Renorm(conv_spatial_max_norm))
        self.add_module("conv_spatial", spatial)
        self.add_module("bnorm_1", bnorm(F1 * D))
        self.add_module("elu_1", activation())
        self.add_module("pool_1", pool(kernel_size=(1, pool1_kernel_size)))
        self.add_module("drop_1", Dropout(drop_prob))
        self.add_module("conv_separable_depth", Conv2d(
            F1 * D, F1 * D, (1, depthwise_kernel_length), bias=False, groups=F1 * D,
            padding=(0, depthwise_kernel_length // 2)))
        self.add_module("conv_separable_point", Conv2d(F1 * D, F2, (1, 1), bias=False))
        self.add_module("bnorm_2", bnorm(F2))
        self.add_module("elu_2", activation())
        self.add_module("pool_2", pool(kernel_size=(1, pool2_kernel_size)))
        self.add_module("drop_2", Dropout(drop_prob))

        shape = output_shape(self, n_chans, n_times)           # (1, F2, 1, T')
        if final_conv_length == "auto":
            final_conv_length = shape[3]
        self.final_conv_length = final_conv_length
        head = Sequential()
        if not final_layer_with_constraint:
            head.add_module("conv_classifier", Conv2d(F2, n_outputs,
                                                      (shape[2], final_conv_length)))
            head.add_module("permute_back", Permute(0, 1, 3, 2))
            head.add_module("squeeze", SqueezeFinalOutput())
        else:
            head.add_module("flatten", Flatten())
            linear = Linear(F2 * final_conv_length, n_outputs)
            register_parametrization(linear, "weight", Renorm(norm_rate))
            head.add_module("linearconstraint", linear)
        self.add_module("final_layer", head)
        _zero_biases_unit_batchnorm(self)


def _zero_biases_unit_batchnorm(model: Module) -> None:
    """braindecode's ``glorot_weight_zero_bias`` as it runs in 1.8.1: BatchNorm weights to 1 and
    every bias to 0 (despite its name, it leaves the other weights alone)."""
    for m in model.modules():
        if isinstance(m, BatchNorm2d) and m.weight is not None:
            init.ones_(m.weight)
        if getattr(m, "bias", None) is not None:
            init.zeros_(m.bias)


def eegnet_keras(n_chans: int, n_outputs: int, n_times: int, *, F1: int = 8, D: int = 2,
                 F2: int = 16, kernel_length: int = 64, dropout_rate: float = 0.5,
                 norm_rate: float = 0.25, depthwise_max_norm: float = 1.0) -> Sequential:
    """The canonical EEGNet-8,2 of Lawhern et al. 2018 as the authors' Keras code
    (arl-eegmodels ``EEGNet``) builds it, returning logits (the Keras model ends in a softmax;
    use ``F.cross_entropy`` on these). Input (N, n_chans, n_times), output (N, n_outputs).

    block 1: Conv2d(1, F1, (1, kernel_length), 'same', no bias) -> BatchNorm -> depthwise
    ConstrainedConv2d(F1, F1·D, (n_chans, 1), groups=F1, no bias, max-norm
    ``depthwise_max_norm`` (the paper's 1.0) over axes (1, 2, 3): one norm per output filter)
    -> BatchNorm -> ELU -> AvgPool (1, 4) -> Dropout;
    block 2: separable conv (depthwise (1, 16) 'same' then pointwise 1×1 to F2, no bias) ->
    BatchNorm -> ELU -> AvgPool (1, 8) -> Dropout; Flatten; Linear(F2·(n_times // 32),
    n_outputs) under max-norm ``norm_rate`` per output unit (each row of the (out, in) weight).
    Both max-norms are Keras's formula applied after each optimizer step (Keras applies
    constraints after the update). BatchNorm eps 1e-3 and momentum 0.01 (Keras's 0.99).
    Weights are Glorot-uniform with Keras's fans (for the depthwise kernel fan_in + fan_out =
    n_chans·(F1 + D), as Keras computes it for its (n_chans, 1, F1, D) kernel); biases zero.
    Submodules ``block1``, ``block2``, ``flatten``, ``dense``. The flattened order is lucid's
    (channels, then time), not Keras's channels-last order.
    """
    check_signal(n_chans, n_outputs, n_times)
    for name, v in (("F1", F1), ("D", D), ("F2", F2), ("kernel_length", kernel_length)):
        positive(v, name)
    probability(dropout_rate, "dropout_rate")
    if n_times // 32 < 1:
        raise ValueError(f"eegnet_keras needs n_times >= 32 (two poolings by 4 and 8), got "
                         f"{n_times}")

    def bnorm(n: int) -> BatchNorm2d:
        return BatchNorm2d(n, eps=1e-3, momentum=0.01)

    temporal = Conv2d(1, F1, (1, kernel_length), padding="same", bias=False)
    depthwise = ConstrainedConv2d(F1, F1 * D, (n_chans, 1), groups=F1, bias=False,
                                  max_norm=depthwise_max_norm, axis_norm=(1, 2, 3),
                                  enforce="post_step")
    sep_depth = Conv2d(F1 * D, F1 * D, (1, 16), padding="same", groups=F1 * D, bias=False)
    sep_point = Conv2d(F1 * D, F2, 1, bias=False)
    dense = ConstrainedLinear(F2 * (n_times // 32), n_outputs, max_norm=norm_rate,
                              axis_norm=1, enforce="post_step")
    for conv in (temporal, sep_depth, sep_point):
        init.xavier_uniform_(conv.weight)       # Keras's fans equal PyTorch's for these shapes
    bound = math.sqrt(6.0 / (n_chans * (F1 + D)))
    init.uniform_(depthwise.weight, -bound, bound)
    depthwise.project_()
    init.xavier_uniform_(dense.weight)
    init.zeros_(dense.bias)
    dense.project_()
    return Sequential({
        "ensuredims": Ensure4d(),
        "dimshuffle": Permute(0, 3, 1, 2),
        "block1": Sequential({"conv_temporal": temporal, "bnorm_temporal": bnorm(F1),
                              "conv_depthwise": depthwise, "bnorm_depthwise": bnorm(F1 * D),
                              "elu": ELU(), "pool": AvgPool2d((1, 4)),
                              "drop": Dropout(dropout_rate)}),
        "block2": Sequential({"conv_separable_depth": sep_depth,
                              "conv_separable_point": sep_point, "bnorm": bnorm(F2),
                              "elu": ELU(), "pool": AvgPool2d((1, 8)),
                              "drop": Dropout(dropout_rate)}),
        "flatten": Flatten(),
        "dense": dense,
    })

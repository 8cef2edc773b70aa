"""Stateless functions over Tensors (``lucid.nn.functional``, usually imported as ``F``), one
module per family: convolution, padding, activations, pooling, normalisation, losses."""

from lucid.nn.functional.activation import (
                                            dropout,
                                            elu,
                                            gelu,
                                            hardtanh,
                                            leaky_relu,
                                            linear,
                                            log_softmax,
                                            relu,
                                            sigmoid,
                                            silu,
                                            softmax,
                                            softplus,
                                            tanh,
)
from lucid.nn.functional.channel_dropout import dropout1d, dropout2d, dropout3d
from lucid.nn.functional.conv import conv2d, conv_transpose2d
from lucid.nn.functional.feature_norm import group_norm, instance_norm, layer_norm
from lucid.nn.functional.loss import (
                                            binary_cross_entropy,
                                            binary_cross_entropy_with_logits,
                                            cross_entropy,
                                            huber_loss,
                                            kl_div,
                                            l1_loss,
                                            mse_loss,
                                            nll_loss,
                                            smooth_l1_loss,
)
from lucid.nn.functional.normalization import batch_norm
from lucid.nn.functional.padding import pad
from lucid.nn.functional.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = [
                                            "adaptive_avg_pool2d",
                                            "avg_pool2d",
                                            "batch_norm",
                                            "binary_cross_entropy",
                                            "binary_cross_entropy_with_logits",
                                            "conv2d",
                                            "conv_transpose2d",
                                            "cross_entropy",
                                            "dropout",
                                            "dropout1d",
                                            "dropout2d",
                                            "dropout3d",
                                            "elu",
                                            "gelu",
                                            "group_norm",
                                            "hardtanh",
                                            "huber_loss",
                                            "instance_norm",
                                            "kl_div",
                                            "l1_loss",
                                            "layer_norm",
                                            "leaky_relu",
                                            "linear",
                                            "log_softmax",
                                            "max_pool2d",
                                            "mse_loss",
                                            "nll_loss",
                                            "pad",
                                            "relu",
                                            "sigmoid",
                                            "silu",
                                            "smooth_l1_loss",
                                            "softmax",
                                            "softplus",
                                            "tanh",
]

"""Stateless functions over Tensors (``lucid.nn.functional``, usually imported as ``F``), one
module per family: convolution, padding, activations, pooling, normalisation, losses."""

from lucid.nn.functional.activation import (
                                            dropout,
                                            elu,
                                            gelu,
                                            leaky_relu,
                                            linear,
                                            log_softmax,
                                            relu,
                                            sigmoid,
                                            softmax,
                                            tanh,
)
from lucid.nn.functional.conv import conv2d, conv_transpose2d
from lucid.nn.functional.feature_norm import group_norm, instance_norm, layer_norm
from lucid.nn.functional.loss import (
                                            binary_cross_entropy_with_logits,
                                            cross_entropy,
                                            mse_loss,
                                            nll_loss,
)
from lucid.nn.functional.normalization import batch_norm
from lucid.nn.functional.padding import pad
from lucid.nn.functional.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = [
                                            "adaptive_avg_pool2d",
                                            "avg_pool2d",
                                            "batch_norm",
                                            "binary_cross_entropy_with_logits",
                                            "conv2d",
                                            "conv_transpose2d",
                                            "cross_entropy",
                                            "dropout",
                                            "elu",
                                            "gelu",
                                            "group_norm",
                                            "instance_norm",
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
                                            "softmax",
                                            "tanh",
]

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
from lucid.nn.functional.conv import (
                                            conv1d,
                                            conv2d,
                                            conv3d,
                                            conv_transpose1d,
                                            conv_transpose2d,
                                            conv_transpose3d,
)
from lucid.nn.functional.loss import (
                                            binary_cross_entropy_with_logits,
                                            cross_entropy,
                                            mse_loss,
                                            nll_loss,
)
from lucid.nn.functional.normalization import batch_norm
from lucid.nn.functional.padding import pad
from lucid.nn.functional.pooling import (
                                            adaptive_avg_pool1d,
                                            adaptive_avg_pool2d,
                                            adaptive_avg_pool3d,
                                            avg_pool1d,
                                            avg_pool2d,
                                            avg_pool3d,
                                            max_pool1d,
                                            max_pool2d,
                                            max_pool3d,
)

__all__ = [
                                            "adaptive_avg_pool1d",
                                            "adaptive_avg_pool2d",
                                            "adaptive_avg_pool3d",
                                            "avg_pool1d",
                                            "avg_pool2d",
                                            "avg_pool3d",
                                            "batch_norm",
                                            "binary_cross_entropy_with_logits",
                                            "conv1d",
                                            "conv2d",
                                            "conv3d",
                                            "conv_transpose1d",
                                            "conv_transpose2d",
                                            "conv_transpose3d",
                                            "cross_entropy",
                                            "dropout",
                                            "elu",
                                            "gelu",
                                            "leaky_relu",
                                            "linear",
                                            "log_softmax",
                                            "max_pool1d",
                                            "max_pool2d",
                                            "max_pool3d",
                                            "mse_loss",
                                            "nll_loss",
                                            "pad",
                                            "relu",
                                            "sigmoid",
                                            "softmax",
                                            "tanh",
]

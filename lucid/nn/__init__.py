"""Neural-network building blocks: Module, layers, functional, init, constraints."""

from lucid.nn import constraints, conv_args, functional, init, utils
from lucid.nn.layers.activation import ELU, GELU, Dropout, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from lucid.nn.layers.constrained_conv import (
    ConstrainedConv1d,
    ConstrainedConv2d,
    ConstrainedConv3d,
)
from lucid.nn.layers.constrained_linear import ConstrainedLinear
from lucid.nn.layers.container import ModuleList, Sequential
from lucid.nn.layers.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from lucid.nn.layers.linear import Flatten, Identity, Linear
from lucid.nn.layers.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from lucid.nn.layers.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from lucid.nn.layers.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2D,
    MaxPool2d,
    MaxPool3d,
)
from lucid.nn.layers.separable_conv import DepthwiseConv2d, SeparableConv2d
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter

__all__ = [
    "ELU",
    "GELU",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "ConstrainedConv1d",
    "ConstrainedConv2d",
    "ConstrainedConv3d",
    "ConstrainedLinear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "CrossEntropyLoss",
    "DepthwiseConv2d",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2D",
    "MaxPool2d",
    "MaxPool3d",
    "Module",
    "ModuleList",
    "Parameter",
    "ReLU",
    "SeparableConv2d",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "constraints",
    "conv_args",
    "functional",
    "init",
    "utils",
]

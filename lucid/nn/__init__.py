"""Neural-network building blocks: Module, layers, functional, init, constraints."""

from lucid.nn import constraints, conv_args, functional, init, utils
from lucid.nn.layers.activation import (
    ELU,
    GELU,
    Dropout,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from lucid.nn.layers.constrained_conv import ConstrainedConv2d
from lucid.nn.layers.constrained_linear import ConstrainedLinear
from lucid.nn.layers.container import ModuleList, Sequential
from lucid.nn.layers.conv import Conv2d, ConvTranspose2d
from lucid.nn.layers.feature_norm import GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm
from lucid.nn.layers.linear import Flatten, Identity, Linear
from lucid.nn.layers.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from lucid.nn.layers.normalization import BatchNorm2d
from lucid.nn.layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2D, MaxPool2d
from lucid.nn.layers.shaping import (
    ConstantPad2d,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    Unflatten,
    ZeroPad2d,
)
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter

__all__ = [
    "ELU",
    "GELU",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm2d",
    "ConstantPad2d",
    "ConstrainedConv2d",
    "ConstrainedLinear",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "Flatten",
    "GroupNorm",
    "Hardtanh",
    "HuberLoss",
    "Identity",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "KLDivLoss",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2D",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "Unflatten",
    "ZeroPad2d",
    "constraints",
    "conv_args",
    "functional",
    "init",
    "utils",
]

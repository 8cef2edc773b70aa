"""Neural-network building blocks: Module, layers, functional, init, constraints."""

from lucid.nn import conv_args, constraints, functional, init, utils
from lucid.nn.layers.activation import ELU, GELU, Dropout, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from lucid.nn.layers.constrained_conv import ConstrainedConv2d
from lucid.nn.layers.container import ModuleList, Sequential
from lucid.nn.layers.conv import Conv2d, ConvTranspose2d
from lucid.nn.layers.linear import Flatten, Identity, Linear
from lucid.nn.layers.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from lucid.nn.layers.normalization import BatchNorm2d
from lucid.nn.layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2D, MaxPool2d
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter

__all__ = [
    "Module", "Parameter", "Conv2d", "ConvTranspose2d", "ConstrainedConv2d", "Linear", "Identity",
    "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "ELU", "Softmax", "Dropout",
    "MaxPool2d", "MaxPool2D", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d", "Sequential",
    "ModuleList", "CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "functional", "init",
    "constraints", "utils", "conv_args",
]

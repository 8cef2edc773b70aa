"""Neural-network building blocks: Module, layers, functional, init, constraints."""

from lucid.nn import functional, init
from lucid.nn.layers.conv import Conv2d, ConvTranspose2d
from lucid.nn.module import Module
from lucid.nn.parameter import Parameter

"""lucid: a small PyTorch-style deep-learning library over MLX and a NumPy reference."""

from lucid import dtypes, random
from lucid import data, nn, optim
from lucid.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from lucid.backends import get_backend, set_backend, using_backend
from lucid.creation import (arange, empty, eye, full, full_like, ones, ones_like, tensor, zeros,
                            zeros_like)
from lucid.dtypes import bool_, float16, float32, float64, int32, int64
from lucid.serialization import load, save
from lucid.tensor import Tensor, cat, concatenate, matmul, maximum, minimum, stack, where

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "empty", "full", "full_like", "arange", "eye",
    "zeros_like", "ones_like", "concatenate", "cat", "stack", "where", "maximum", "minimum",
    "matmul", "set_backend", "get_backend", "using_backend", "no_grad", "enable_grad",
    "is_grad_enabled", "set_grad_enabled", "dtypes", "random", "float16", "float32", "float64",
    "int32", "int64", "bool_", "nn", "optim", "data", "save", "load",
]

"""lucid: a small PyTorch-style deep-learning library over MLX and a NumPy reference."""

from lucid import amp, data, distributed, dtypes, export, memory, models, nn, optim, random
from lucid.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from lucid.backends import get_backend, set_backend, using_backend
from lucid.compiler import compile
from lucid.creation import (
    arange,
    empty,
    eye,
    full,
    full_like,
    ones,
    ones_like,
    tensor,
    zeros,
    zeros_like,
)
from lucid.device import Device
from lucid.dtypes import bfloat16, bool_, float16, float32, float64, int32, int64
from lucid.functions import cat, concatenate, matmul, maximum, minimum, stack, where
from lucid.precision import autocast
from lucid.serialization import load, save
from lucid.tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "Device", "Tensor", "amp", "arange", "autocast", "bfloat16", "bool_", "cat", "compile",
    "concatenate", "data", "distributed", "dtypes", "empty", "enable_grad", "export", "eye",
    "float16", "float32", "float64",
    "full", "full_like", "get_backend", "int32", "int64", "is_grad_enabled", "load", "matmul",
    "maximum", "memory", "minimum", "models", "nn", "no_grad", "ones", "ones_like", "optim",
    "random", "save",
    "set_backend", "set_grad_enabled", "stack", "tensor", "using_backend", "where", "zeros",
    "zeros_like",
]


def __getattr__(name: str):
    # lucid.selfcheck loads on first use: imported here eagerly, `python -m lucid.selfcheck`
    # would find it already in sys.modules and warn.
    if name == "selfcheck":
        import importlib
        return importlib.import_module("lucid.selfcheck")
    raise AttributeError(f"module 'lucid' has no attribute {name!r}")

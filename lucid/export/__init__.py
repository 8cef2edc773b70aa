"""Deploying a trained model: its eval-mode forward written as a file that runs without lucid.

- ``to_mlxfn``: MLX's ``.mlxfn`` (``mx.export_function``), loadable from Python, C++ and Swift.
- ``to_onnx``: an ONNX model (the ``onnx`` package), for onnxruntime and every ONNX runtime.

See docs/deploying.md for running the files.
"""

from lucid.export.mlxfn import to_mlxfn
from lucid.export.onnx_export import to_onnx

__all__ = ["to_mlxfn", "to_onnx"]

"""The ONNX graph under construction: value names for lucid's arrays, initializers for the arrays
no recorded op made (parameters, buffers, constants), and nodes. Built with ``onnx.helper``."""

from __future__ import annotations

from typing import Any

# lucid dtype -> TensorProto type name. float16 is written as float32 (see to_onnx).
_ELEM = {"float16": "FLOAT", "float32": "FLOAT", "float64": "DOUBLE", "int32": "INT32",
         "int64": "INT64", "bool": "BOOL"}


class Graph:
    """Nodes and initializers of one export. Arrays are known by identity: the output array of
    a recorded op, an example input's array, or anything else (read on the host once and stored
    as an initializer)."""

    def __init__(self, onnx: Any, opset: int, batch: int | None, be: Any) -> None:
        self.onnx, self.opset, self.be = onnx, opset, be
        self.batch = batch                   # the example's batch size when it may vary
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[int, str] = {}
        self._alive: list[Any] = []          # arrays whose ids are keys of ``names``
        self._count = 0

    def fresh(self, stem: str) -> str:
        """A value name not used before in this graph."""
        self._count += 1
        return f"{stem}_{self._count}"

    def bind(self, array: Any, name: str) -> None:
        """``array`` is the value called ``name`` from now on."""
        self._alive.append(array)
        self.names[id(array)] = name

    def value(self, array: Any) -> str:
        """The name of ``array``: the op output or input it is, else a new initializer."""
        name = self.names.get(id(array))
        if name is None:
            host = self.be.to_numpy(array)
            if str(host.dtype) == "float16":
                host = host.astype("float32")
            name = self.fresh("const")
            self.initializers.append(self.onnx.numpy_helper.from_array(host, name))
            self.bind(array, name)
        return name

    def ints(self, values: Any, stem: str = "ints") -> str:
        """An int64 1-D initializer (shapes, axes, pads of the ops that take them as inputs)."""
        name = self.fresh(stem)
        values = [int(v) for v in values]
        self.initializers.append(self.onnx.helper.make_tensor(
            name, self.onnx.TensorProto.INT64, [len(values)], values))
        return name

    def scalar(self, value: Any, dtype: str, stem: str = "scalar") -> str:
        """A 0-d initializer of lucid dtype ``dtype``."""
        name = self.fresh(stem)
        elem = getattr(self.onnx.TensorProto, _ELEM[dtype])
        self.initializers.append(self.onnx.helper.make_tensor(name, elem, [], [value]))
        return name

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        """Append an ``op_type`` node; returns its (one) output's name."""
        out = self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def elem_type(self, dtype: str) -> int:
        """The TensorProto element type of lucid dtype ``dtype`` (float16 -> FLOAT)."""
        if dtype not in _ELEM:
            raise NotImplementedError(f"to_onnx: dtype {dtype} has no ONNX type here")
        return int(getattr(self.onnx.TensorProto, _ELEM[dtype]))

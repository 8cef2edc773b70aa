"""``to_onnx``: the ops of one eval-mode forward, recorded as lucid runs them, emitted as an ONNX
graph with the ``onnx`` package (one emitter per Function kind, ``onnx_ops``)."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from lucid import tracing
from lucid.export import common as C
from lucid.export import onnx_ops
from lucid.export.onnx_graph import Graph
from lucid.functions import concatenate
from lucid.tensor import Tensor

MIN_OPSET = 13          # Softmax over one axis, ReduceSum/Squeeze/Unsqueeze axes as inputs


def _onnx() -> Any:
    try:
        return importlib.import_module("onnx")
    except ImportError as e:
        raise ImportError(f"lucid.export.to_onnx needs the onnx package (pip install onnx; "
                          f"lucid's 'export' extra): {e}") from e


def to_onnx(module: Any, path: str | os.PathLike, *example_inputs: Tensor, opset: int = 17,
            dynamic_batch: bool = True) -> None:
    """Write the eval-mode forward of ``module`` to ``path`` as an ONNX model.

    The forward runs once as in ``module.eval()`` (dropout off, BatchNorm on its running
    statistics, kernel constraints baked in), without grad, on the example inputs' backend
    (NumPy or MLX); every submodule's training flag is restored afterwards. Each lucid op it
    applies becomes ONNX nodes (conv of every rank and transposed conv, linear/matmul,
    BatchNorm's eval arithmetic, layer/group/instance norm, pooling, activations,
    reshape/flatten/transpose, padding, softmax, elementwise ops and reductions);
    parameters, buffers and constants become initializers. An op without an emitter, or one
    ONNX cannot express at ``opset`` (a conv with input_dilation, an advanced index), raises
    NotImplementedError naming the op, and no file is written. Padding modes (reflect,
    replicate, circular) reach the graph as the slices and concatenations lucid pads with, so
    they export at every opset.

    Inputs are ``input_0``, ``input_1``, ...; outputs ``output_0``, ...; with ``dynamic_batch``
    their first axis is named ``N`` and may vary (give an example batch of at least 2, so the
    batch axis cannot be mistaken for a size-1 axis). Half precision exports as float32.
    The model is checked with ``onnx.checker`` (shape inference included) before it is written;
    ``onnxruntime.InferenceSession(path)`` runs it. Metadata: ``lucid_version`` and ``inputs``
    (JSON: name, shape, dtype, layout).

    Tensors made from host values during the forward are constants of the graph. So that no
    constant stands for something computed from the input, the forward runs a second time on
    other values (at batch size + 1 with ``dynamic_batch``) and must apply the same ops to the
    same constants; otherwise (a branch on ``x.item()``, ``argmax``, ``full_like(x, ...)``)
    ValueError says so. Comparisons and logical ops, which run without a Function, are
    recorded by name and exported.
    """
    what = "to_onnx"
    path = C.check_args(what, module, path, example_inputs)
    onnx = _onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or not (
            MIN_OPSET <= opset <= onnx.defs.onnx_opset_version()):
        raise ValueError(f"{what}: opset must be an int in [{MIN_OPSET}, "
                         f"{onnx.defs.onnx_opset_version()}] (this onnx's newest), got {opset!r}")
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"{what}: dynamic_batch must be a bool, got {dynamic_batch!r}")
    if dynamic_batch and example_inputs[0].shape[0] < 2:
        raise ValueError(f"{what}: with dynamic_batch=True give an example batch of at least 2 "
                         f"(got input shape {example_inputs[0].shape}); a batch of 1 cannot be "
                         f"told from the model's size-1 axes")
    records, outs = _record(module, example_inputs)
    model = _build(onnx, records, example_inputs, outs, opset, dynamic_batch)
    if all(t.dtype.is_floating for t in example_inputs):
        # The same forward on other values (and, with dynamic_batch, another batch size) must
        # apply the same ops to the same constants: otherwise the forward branched on values (a
        # host read), derived a value from the input without a Function (argmax) or made a
        # tensor shaped by the batch (full_like), which the graph would bake in as a constant.
        other = tuple((concatenate([t, t[:1]], 0) if dynamic_batch else t) * -1.5 + 0.25
                      for t in example_inputs)
        try:
            again = _record(module, other)
        except (ValueError, RuntimeError, IndexError, TypeError) as e:
            raise ValueError(f"to_onnx: the forward fails on an input of shape "
                             f"{other[0].shape} ({e}); a model that takes one batch size only "
                             f"exports with dynamic_batch=False") from e
        _check_same_graph(records, example_inputs, *again, other)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def _record(module: Any, inputs: tuple) -> tuple[list[tuple], tuple[Tensor, ...]]:
    """(fn, inputs, options, output) of every op of one eval-mode forward, and its outputs."""
    records: list[tuple] = []

    def record(fn: Any, op_inputs: tuple, options: dict, out: Any) -> None:
        records.append((fn, op_inputs, options, out))

    with C.eval_forward(module) as forward, tracing.recording(record):
        outs = C.outputs_of("to_onnx", forward(*inputs))
    return records, outs


def _arrays(op_inputs: tuple, options: dict) -> list[Any]:
    return [t.data for t in op_inputs] + [v for v in options.values()
                                          if hasattr(v, "__dlpack__")]


def _check_same_graph(first: list[tuple], inputs: tuple, second: list[tuple],
                      outs2: tuple, inputs2: tuple) -> None:
    """Refuse a forward whose ops or constants change with the input's values."""
    made = [{id(t.data) for t in inputs}, {id(t.data) for t in inputs2}]
    if len(first) != len(second):
        raise ValueError(f"to_onnx: the forward applies {len(first)} ops to the example inputs "
                         f"and {len(second)} to other values: it branches on values, which a "
                         f"graph cannot")
    for (fn1, in1, opts1, out1), (fn2, in2, opts2, out2) in zip(first, second):
        name = onnx_ops.op_name(fn1)
        if name != onnx_ops.op_name(fn2):
            raise ValueError(f"to_onnx: the forward applies {name} to the example inputs and "
                             f"{onnx_ops.op_name(fn2)} to other values: it branches on values")
        be = in1[0]._be
        for a1, a2 in zip(_arrays(in1, opts1), _arrays(in2, opts2)):
            if (id(a1) in made[0]) != (id(a2) in made[1]) or (
                    id(a1) not in made[0] and _host_differs(be, a1, a2)):
                raise ValueError(
                    f"to_onnx: an input of op {name} depends on the model's input (its values or "
                    f"its batch size) through a step lucid runs without a Function (argmax, a "
                    f"host read, a tensor made from values or shaped like the input, such as "
                    f"full_like): it cannot be exported as a graph")
        made[0].add(id(out1.data))
        made[1].add(id(out2.data))


def _host_differs(be: Any, a: Any, b: Any) -> bool:
    ha, hb = be.to_numpy(a), be.to_numpy(b)
    return tuple(ha.shape) != tuple(hb.shape) or ha.tobytes() != hb.tobytes()


def _value_info(onnx: Any, g: Graph, name: str, t: Tensor, dynamic_batch: bool) -> Any:
    shape: list[Any] = list(t.shape)
    if dynamic_batch and shape:
        shape[0] = "N"
    return onnx.helper.make_tensor_value_info(name, g.elem_type(t.dtype.name), shape)


def _build(onnx: Any, records: list[tuple], inputs: tuple, outs: tuple, opset: int,
           dynamic_batch: bool) -> Any:
    g = Graph(onnx, opset, inputs[0].shape[0] if dynamic_batch else None, inputs[0]._be)
    graph_inputs = []
    for i, t in enumerate(inputs):
        name = f"input_{i}"
        g.bind(t.data, name)
        graph_inputs.append(_value_info(onnx, g, name, t, dynamic_batch))
    for fn, op_inputs, options, out in records:
        g.bind(out.data, onnx_ops.emit(g, fn, op_inputs, options, out))
    graph_outputs = []
    for i, t in enumerate(outs):
        if id(t.data) not in g.names:
            raise ValueError(f"to_onnx: output {i} is not computed from the inputs by an op lucid "
                             f"can export (it is a constant, or made without a Function, such "
                             f"as argmax)")
        name = f"output_{i}"
        g.nodes.append(onnx.helper.make_node("Identity", [g.value(t.data)], [name]))
        graph_outputs.append(_value_info(onnx, g, name, t, dynamic_batch))
    graph = onnx.helper.make_graph(g.nodes, "lucid", graph_inputs, graph_outputs,
                                   initializer=g.initializers)
    from lucid import __version__
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="lucid", producer_version=__version__)
    onnx.helper.set_model_props(model, {
        "lucid_version": __version__,
        "inputs": json.dumps(C.describe_inputs(inputs, dynamic_batch))})
    return model

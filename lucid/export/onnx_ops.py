"""One ONNX emitter per lucid Function kind. Each takes the graph, the recorded Function (after
its forward), its input Tensors, its options and its output Tensor, appends nodes and returns
the output's value name. What ONNX cannot express at the graph's opset raises naming the op."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lucid.backends.contract import carried_axis
from lucid.export.onnx_graph import Graph
from lucid.ops import conv as CV
from lucid.ops import elementwise as E
from lucid.ops import linalg as L
from lucid.ops import movement as M
from lucid.ops import pool as P
from lucid.ops import reduce as R
from lucid.ops import row_norm as RN

Emitter = Callable[[Graph, Any, tuple, dict, Any], str]
INT64_MAX = 2**63 - 1


def _refuse(op: str, why: str) -> NotImplementedError:
    return NotImplementedError(f"to_onnx: lucid op {op} {why}")


def _unary(op_type: str) -> Emitter:
    def emit(g, fn, ins, opts, out):
        return g.node(op_type, [g.value(ins[0].data)])
    return emit


def _binary(op_type: str) -> Emitter:
    def emit(g, fn, ins, opts, out):
        return g.node(op_type, [g.value(ins[0].data), g.value(ins[1].data)])
    return emit


def _clip(g, fn, ins, opts, out):
    dtype = ins[0].dtype.name
    bounds = [g.scalar(opts[k], dtype) if opts.get(k) is not None else "" for k in ("lo", "hi")]
    return g.node("Clip", [g.value(ins[0].data), *bounds])


def _cast(g, fn, ins, opts, out):
    # float16 travels as float32 in the exported graph (to_onnx's rule)
    return g.node("Cast", [g.value(ins[0].data)], to=g.elem_type(opts["dtype"]))


def _where(g, fn, ins, opts, out):
    return g.node("Where", [g.value(opts["cond"]), g.value(ins[0].data), g.value(ins[1].data)])


# -- movement ----------------------------------------------------------------------------------
def _reshape(g, fn, ins, opts, out):
    src, dst = tuple(ins[0].shape), tuple(out.shape)
    x = g.value(ins[0].data)
    if [n for n in src if n != 1] == [n for n in dst if n != 1]:
        # Only size-1 axes come or go (unsqueeze/squeeze, the pooling taps): Squeeze/Unsqueeze
        # leave every other axis, the batch's included, free to vary.
        ones_in = [a for a, n in enumerate(src) if n == 1]
        ones_out = [a for a, n in enumerate(dst) if n == 1]
        if ones_in:
            x = g.node("Squeeze", [x, g.ints(ones_in, "axes")])
        if ones_out:
            x = g.node("Unsqueeze", [x, g.ints(ones_out, "axes")])
        return x if ones_in or ones_out else g.node("Identity", [x])
    target = list(dst)
    axis = carried_axis(src, dst, g.batch) if g.batch is not None else None
    if axis is not None:
        target[axis] = -1                   # the batch axis: its size is the input's
    return g.node("Reshape", [x, g.ints(target, "shape")])


def _transpose(g, fn, ins, opts, out):
    return g.node("Transpose", [g.value(ins[0].data)], perm=list(opts["axes"]))


def _broadcast_to(g, fn, ins, opts, out):
    src, dst = tuple(ins[0].shape), tuple(out.shape)
    lead = len(dst) - len(src)
    # Expand broadcasts both ways: 1 where the input already has the size keeps it (a batch
    # axis among them stays free to vary).
    shape = [1 if a >= lead and src[a - lead] == n else n for a, n in enumerate(dst)]
    return g.node("Expand", [g.value(ins[0].data), g.ints(shape, "shape")])


def _concatenate(g, fn, ins, opts, out):
    return g.node("Concat", [g.value(t.data) for t in ins], axis=int(opts.get("axis", 0)))


def _pad(g, fn, ins, opts, out):
    widths = opts["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    value = g.scalar(float(opts.get("value", 0.0)) if ins[0].dtype.is_floating
                     else int(opts.get("value", 0)), ins[0].dtype.name)
    return g.node("Pad", [g.value(ins[0].data), g.ints(pads, "pads"), value], mode="constant")


def _getitem(g, fn, ins, opts, out):
    """Basic indexing (slices, ints, None, Ellipsis) as Slice, Squeeze and Unsqueeze."""
    if opts.get("guards"):
        raise _refuse("GetItem", "with an unchecked index array has no ONNX emitter")
    index = opts["index"]
    index = index if isinstance(index, tuple) else (index,)
    shape = tuple(ins[0].shape)
    if any(not (isinstance(i, (slice, int)) or i is None or i is Ellipsis) for i in index):
        raise _refuse("GetItem", "with an array (advanced) index has no ONNX emitter; only "
                      "slices, ints, None and ... are exported")
    named = sum(1 for i in index if i is not None and i is not Ellipsis)
    items: list[Any] = []
    for i in index:
        items.extend([slice(None)] * (len(shape) - named) if i is Ellipsis else [i])
    items.extend([slice(None)] * (len(shape) - sum(1 for i in items if i is not None)))
    starts, ends, axes, steps, drop, new = [], [], [], [], [], []
    axis = pos = 0
    for i in items:
        if i is None:
            new.append(pos)
            pos += 1
            continue
        n = shape[axis]
        if isinstance(i, int):
            k = i + n if i < 0 else i
            starts.append(k), ends.append(k + 1), axes.append(axis), steps.append(1)
            drop.append(axis)
        elif i != slice(None):
            lo, hi, st = i.indices(n)
            if st < 0 and hi < 0:
                hi = -INT64_MAX                # past the start, for a reversed slice
            starts.append(lo), ends.append(hi), axes.append(axis), steps.append(st)
            pos += 1
        else:
            pos += 1
        axis += 1
    x = g.value(ins[0].data)
    if axes:
        x = g.node("Slice", [x, g.ints(starts, "starts"), g.ints(ends, "ends"),
                             g.ints(axes, "axes"), g.ints(steps, "steps")])
    if drop:
        x = g.node("Squeeze", [x, g.ints(drop, "axes")])
    if new:
        x = g.node("Unsqueeze", [x, g.ints(new, "axes")])
    return x if axes or drop or new else g.node("Identity", [x])


# -- reductions --------------------------------------------------------------------------------
def _axes(opts: dict, ndim: int) -> list[int]:
    axis = opts.get("axis")
    if axis is None:
        return list(range(ndim))
    return [int(a) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]


def _reduce(op_type: str, axes_input_from: int) -> Emitter:
    """ReduceSum takes its axes as an input from opset 13, ReduceMax from 18 (before: an
    attribute)."""
    def emit(g, fn, ins, opts, out):
        axes = _axes(opts, ins[0].ndim)
        keep = int(bool(opts.get("keepdims", False)))
        x = g.value(ins[0].data)
        if g.opset >= axes_input_from:
            return g.node(op_type, [x, g.ints(axes, "axes")], keepdims=keep)
        return g.node(op_type, [x], axes=axes, keepdims=keep)
    return emit


def _cumsum(g, fn, ins, opts, out):
    return g.node("CumSum", [g.value(ins[0].data), g.scalar(int(opts.get("axis", 0)), "int64")])


def _softmax(op_type: str) -> Emitter:
    def emit(g, fn, ins, opts, out):
        return g.node(op_type, [g.value(ins[0].data)], axis=int(opts.get("axis", -1)))
    return emit


# -- linear algebra, convolution, pooling ------------------------------------------------------
def _linear(g, fn, ins, opts, out):
    x, w = g.value(ins[0].data), g.value(ins[1].data)
    b = g.value(ins[2].data) if len(ins) > 2 else None
    if ins[0].ndim == 2:
        return g.node("Gemm", [x, w] + ([b] if b else []), transB=1)
    y = g.node("MatMul", [x, g.node("Transpose", [w], perm=[1, 0])])
    return y if b is None else g.node("Add", [y, b])


def _conv_attrs(geo: Any, op: str) -> dict[str, Any]:
    lo, hi = (geo.lo, geo.hi) if geo.transposed else geo.conv_pads
    attrs = {"kernel_shape": list(geo.kernel), "strides": list(geo.stride),
             "pads": list(lo) + list(hi), "dilations": list(geo.dilation),
             "group": int(geo.groups)}
    if geo.transposed:
        attrs["output_padding"] = list(geo.output_padding)
    if any(d != 1 for d in geo.input_dilation):
        raise _refuse(op, f"with input_dilation {geo.input_dilation} cannot be expressed in "
                      f"ONNX (its Conv has no input dilation)")
    return attrs


def _conv(op_type: str) -> Emitter:
    def emit(g, fn, ins, opts, out):
        geo = opts["geo"]
        attrs = _conv_attrs(geo, type(fn).__name__)
        x = g.value(ins[0].data)
        if geo.channels_last:
            x = g.node("Transpose", [x], perm=list(CV.to_first(geo.rank)))
        y = g.node(op_type, [x, g.value(ins[1].data)], **attrs)
        if geo.channels_last:
            y = g.node("Transpose", [y], perm=list(CV.to_last(geo.rank)))
        return y
    return emit


def _max_pool_windows(g, fn, ins, opts, out):
    """MaxPool over the already padded input (lucid pads with -inf first, which ONNX's own
    padding equals), any rank; an unbatched (C, *S) input gets a batch axis and loses it."""
    k, s, d = (list(opts[key]) for key in ("k", "s", "d"))
    x = g.value(ins[0].data)
    attrs = {"kernel_shape": k, "strides": s, "dilations": d}
    if ins[0].ndim == len(k) + 2:
        return g.node("MaxPool", [x], **attrs)
    y = g.node("MaxPool", [g.node("Unsqueeze", [x, g.ints([0], "axes")])], **attrs)
    return g.node("Squeeze", [y, g.ints([0], "axes")])


def _mean_rows(g: Graph, x: str) -> str:
    """The mean over axis 1 of (M, K) rows, kept as (M, 1)."""
    if g.opset >= 18:
        return g.node("ReduceMean", [x, g.ints([1], "axes")], keepdims=1)
    return g.node("ReduceMean", [x], axes=[1], keepdims=1)


def _row_norm(g, fn, ins, opts, out):
    """Layer/group/instance norm: each row of x viewed as (M, K) normalised by its own mean
    and biased variance, then the affine weight and bias in x's shape. The rows are (-1, K)
    and the way back is x's own Shape, so the batch stays free. (``stats``, the row
    statistics a layer may collect on the side, are not part of the output.)"""
    x = g.value(ins[0].data)
    dtype = ins[0].dtype.name
    rows = g.node("Reshape", [x, g.ints([-1, opts["rows"][1]], "shape")])
    d = g.node("Sub", [rows, _mean_rows(g, rows)])
    var = _mean_rows(g, g.node("Mul", [d, d]))
    std = g.node("Sqrt", [g.node("Add", [var, g.scalar(float(opts.get("eps", 1e-5)), dtype)])])
    y = g.node("Reshape", [g.node("Div", [d, std]), g.node("Shape", [x])])
    affine, given = opts.get("affine", (False, False)), iter(ins[1:])
    for used, op_type in zip(affine, ("Mul", "Add")):
        if used:
            shape = g.ints(opts["affine_shape"], "shape")
            y = g.node(op_type, [y, g.node("Reshape", [g.value(next(given).data), shape])])
    return y


EMITTERS: dict[type | str, Emitter] = {
    # ops lucid runs without a Function (tensor.py tells the recording by name)
    "greater": _binary("Greater"), "greater_equal": _binary("GreaterOrEqual"),
    "equal": _binary("Equal"), "not": _unary("Not"), "or": _binary("Or"),
    "and": _binary("And"),
    E.Add: _binary("Add"), E.Sub: _binary("Sub"), E.Mul: _binary("Mul"),
    E.Div: _binary("Div"), E.Pow: _binary("Pow"), E.Maximum: _binary("Max"),
    E.Where: _where, E.Neg: _unary("Neg"), E.Exp: _unary("Exp"), E.Log: _unary("Log"),
    E.Sqrt: _unary("Sqrt"), E.Tanh: _unary("Tanh"), E.Sigmoid: _unary("Sigmoid"),
    E.Erf: _unary("Erf"), E.Abs: _unary("Abs"), E.Relu: _unary("Relu"), E.Clip: _clip,
    E.Cast: _cast,
    M.Reshape: _reshape, M.Transpose: _transpose, M.BroadcastTo: _broadcast_to,
    M.Concatenate: _concatenate, M.GetItem: _getitem, M.Pad: _pad,
    R.Sum: _reduce("ReduceSum", 13), R.Max: _reduce("ReduceMax", 18), R.CumSum: _cumsum,
    R.Softmax: _softmax("Softmax"), R.LogSoftmax: _softmax("LogSoftmax"),
    L.MatMul: _binary("MatMul"), L.Linear: _linear,
    CV.Conv: _conv("Conv"), CV.ConvTranspose: _conv("ConvTranspose"),
    P.MaxPoolWindows: _max_pool_windows, RN.RowNorm: _row_norm,
}


def emit(g: Graph, fn: Any, inputs: tuple, options: dict, out: Any) -> str:
    """Append the nodes of one recorded op; unknown kinds raise naming the op."""
    emitter = EMITTERS.get(fn if isinstance(fn, str) else type(fn))
    if emitter is None:
        raise _refuse(op_name(fn), f"({type(fn).__module__}) has no ONNX emitter; the ops lucid "
                      f"exports: {', '.join(sorted(op_name(c) for c in EMITTERS))}")
    return emitter(g, fn, inputs, options, out)


def op_name(fn: Any) -> str:
    """A recorded op's name: its Function class's, or the name tensor.py records it by."""
    if isinstance(fn, str):
        return fn
    return fn.__name__ if isinstance(fn, type) else type(fn).__name__

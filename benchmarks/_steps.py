"""Benchmark callables: ``build(impl, spec)`` returns a function doing one unit of work (a
training step, a conv pass, a constrained-layer fwd+bwd) with its results forced, so that the
time of a call is the time of the work (MLX is lazy: each call ends in ``mx.eval``).

impl names (one worker process each):
    torch               torch eager (CPU, one thread)
    mlx / mlx-compiled  raw mlx.nn + mlx.optimizers, eager / ``mx.compile``'d step
    lucid-numpy         lucid on the NumPy backend (eager)
    lucid-mlx / lucid-mlx-compiled   lucid on MLX, eager / ``lucid.compile``'d step
    numpy               plain NumPy GEMMs (the 1×1 conv reference)

spec kinds: {"kind": "train", "net": NET}, {"kind": "conv", "workload": NAME, "pass": "fwd" |
"fwd+bwd"}, {"kind": "constraint", "variant": "conv2d" | one of ConstrainedConv2d's ENFORCE}.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (os.path.join(ROOT, "examples"), ROOT):      # the worktree's lucid and examples
    if _p not in sys.path:
        sys.path.insert(0, _p)

import conv  # benchmarks/conv.py: the conv workloads

Step = Callable[[], Any]

# net: (batch, optimizer, (optimizer kwargs)); the model builders are below
NETS: dict[str, tuple[int, str, dict[str, float]]] = {
    "tiny MLP": (16, "SGD", {"lr": 0.1, "momentum": 0.9}),
    "digits CNN": (64, "Adam", {"lr": 3e-3}),          # examples/_common.py trains with Adam
    "constrained net": (32, "Adam", {"lr": 3e-3}),     # as the manipulation demo
}
CONSTRAINT_WORKLOAD = "mid 32->64 32² k3"
CONSTRAINT = "fixed_center"                 # the demo's constraint


def lucid_net(net: str) -> tuple[Any, tuple[int, ...], int]:
    """(lucid model on the current backend, input shape NCHW or (N, F), number of classes)."""
    from lucid import nn
    batch = NETS[net][0]
    if net == "tiny MLP":
        model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                              nn.Linear(64, 10))
        return model, (batch, 32), 10
    if net == "digits CNN":
        import digits
        return digits.build_model(), (batch, 1, 8, 8), 10
    if net == "constrained net":
        size = patch_size()
        import manipulation_detection as md
        return md.build_model("constrained", 5, size), (batch, 1, size, size), 5
    raise KeyError(net)


def patch_size() -> int:
    """The demo's patch size where its module exposes one, else 32 (what its main() uses)."""
    import manipulation_detection as md
    for name in ("PATCH", "PATCH_SIZE", "SIZE"):
        if isinstance(getattr(md, name, None), int):
            return int(getattr(md, name))
    return 32


def _data(shape: tuple[int, ...], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal(shape).astype(np.float32),
            rng.integers(0, n_classes, shape[0]).astype(np.int64))


def build(impl: str, spec: dict[str, Any]) -> Step:
    kind = spec["kind"]
    if kind == "train":
        precision = spec.get("precision", "fp32")
        if precision != "fp32":
            return _HALF_TRAIN[impl](spec["net"], precision)
        return _TRAIN[impl](spec["net"])
    if kind == "conv":
        return conv_step(impl, spec["workload"], spec["pass"])
    if kind == "constraint":
        return constraint_step(impl, spec["variant"])
    raise ValueError(f"unknown spec kind {kind!r}")


# -- whole training steps ------------------------------------------------------------------

def _lucid_train(backend: str, compiled: bool) -> Callable[..., Step]:
    def make(net: str, precision: str = "fp32") -> Step:
        import lucid
        from lucid import backends, nn, optim
        lucid.set_backend(backend)
        lucid.random.seed(0)
        model, shape, n_classes = lucid_net(net)
        _, opt_name, kw = NETS[net]
        opt = optim.SGD(model.parameters(), **kw) if opt_name == "SGD" else \
            optim.Adam(model.parameters(), **kw)
        crit = nn.CrossEntropyLoss()
        xa, ya = _data(shape, n_classes)
        x, y = lucid.tensor(xa), lucid.tensor(ya)
        be = backends.current()
        # as examples/_common.py's --precision: autocast around forward and loss; fp16 adds a
        # GradScaler (fp32: the disabled scaler is a pass-through)
        half = {"fp32": None, "bf16": lucid.bfloat16, "fp16": lucid.float16}[precision]
        scaler = lucid.amp.GradScaler(enabled=precision == "fp16")

        def step() -> Any:
            opt.zero_grad()
            with lucid.autocast(dtype=half or lucid.bfloat16, enabled=half is not None):
                loss = crit(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss

        if compiled:
            state = [model, opt] + ([scaler] if scaler.is_enabled() else [])
            return lucid.compile(step, state=state)  # evaluates its outputs itself

        def eager() -> None:
            # what a lucid user writes: the optimizer step is the sync, evaluating parameters,
            # moments, the buffers written in place (running statistics) and the loss at once,
            # as raw MLX's mx.eval(loss, model.parameters(), opt.state) does; the loss again
            # for a step the GradScaler skipped (an evaluated array costs ~1 µs)
            loss = step()
            if be.lazy:
                be.eval(loss.data)
        return eager
    return make


def _torch_train(net: str) -> Step:
    import torch
    from _translate import to_torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, shape, n_classes = _structure(net)
    tmodel, projections = to_torch(model)
    _, opt_name, kw = NETS[net]
    opt = torch.optim.SGD(tmodel.parameters(), **kw) if opt_name == "SGD" else \
        torch.optim.Adam(tmodel.parameters(), **kw)
    crit = torch.nn.CrossEntropyLoss()
    xa, ya = _data(shape, n_classes)
    x, y = torch.from_numpy(xa), torch.from_numpy(ya)

    def step() -> None:
        opt.zero_grad()
        loss = crit(tmodel(x), y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p in projections:
                p(tmodel)
    return step


def _mlx_train(compiled: bool) -> Callable[..., Step]:
    def make(net: str, precision: str = "fp32") -> Step:
        from functools import partial

        import mlx.core as mx
        import mlx.nn as mn
        import mlx.optimizers as mo
        from _translate import to_mlx
        mx.random.seed(0)
        model, shape, n_classes = _structure(net)
        mmodel, projections = to_mlx(model)
        if precision != "fp32":
            # what an MLX user does without autocast: cast the whole model and the input by
            # hand (half-precision weights and optimizer state, no master copy, no scaling)
            half = {"bf16": mx.bfloat16, "fp16": mx.float16}[precision]
            mmodel.set_dtype(half)
        _, opt_name, kw = NETS[net]
        opt = mo.SGD(learning_rate=kw["lr"], momentum=kw["momentum"]) if opt_name == "SGD" \
            else mo.Adam(learning_rate=kw["lr"], bias_correction=True)   # as torch and lucid
        opt.init(mmodel.trainable_parameters())
        xa, ya = _data(shape, n_classes)
        x = mx.array(xa.transpose(0, 2, 3, 1) if xa.ndim == 4 else xa)    # mlx convs: NHWC
        y = mx.array(ya)
        if precision != "fp32":
            x = x.astype(half)

        def loss_fn(m: Any, x: Any, y: Any) -> Any:
            return mn.losses.cross_entropy(m(x), y, reduction="mean")
        value_and_grad = mn.value_and_grad(mmodel, loss_fn)

        def step(x: Any, y: Any) -> Any:
            loss, grads = value_and_grad(mmodel, x, y)
            opt.update(mmodel, grads)
            for p in projections:
                p(mmodel)
            return loss

        if compiled:
            state = [mmodel.state, opt.state, mx.random.state]
            cstep = partial(mx.compile, inputs=state, outputs=state)(step)

            def run_compiled() -> None:
                mx.eval(cstep(x, y), state)
            return run_compiled

        def eager() -> None:
            mx.eval(step(x, y), mmodel.parameters(), opt.state)
        return eager
    return make


def _structure(net: str) -> tuple[Any, tuple[int, ...], int]:
    """The lucid net built on NumPy, only as the blueprint of a translation."""
    import lucid
    lucid.set_backend("numpy")
    return lucid_net(net)


_TRAIN: dict[str, Callable[[str], Step]] = {
    "torch": _torch_train,
    "mlx": _mlx_train(False),
    "mlx-compiled": _mlx_train(True),
    "lucid-numpy": _lucid_train("numpy", False),
    "lucid-mlx": _lucid_train("mlx", False),
    "lucid-mlx-compiled": _lucid_train("mlx", True),
}
TRAIN_IMPLS = tuple(_TRAIN)
# the half-precision training steps of the precision section (benchmarks/_sections.py)
_HALF_TRAIN: dict[str, Callable[[str, str], Step]] = {
    "mlx-compiled": _mlx_train(True),
    "lucid-numpy": _lucid_train("numpy", False),
    "lucid-mlx-compiled": _lucid_train("mlx", True),
}


# -- conv workloads (benchmarks/conv.py) ---------------------------------------------------

CONV_IMPLS = ("lucid-numpy", "lucid-mlx", "mlx", "torch")


def conv_step(impl: str, workload: str, pass_: str) -> Step:
    shape = conv.WORKLOADS[workload]
    fns = {"lucid-numpy": lambda: conv.lucid_fns("numpy", shape),
           "lucid-mlx": lambda: conv.lucid_fns("mlx", shape),
           "mlx": lambda: conv.raw_mlx_fns(shape),
           "torch": lambda: conv.torch_fns(shape),
           "numpy": lambda: conv.numpy_gemm_fns(shape)}[impl]()
    return fns[("fwd", "fwd+bwd").index(pass_)]


# -- constraint cost -----------------------------------------------------------------------

def constraint_step(impl: str, variant: str) -> Step:
    """fwd+bwd of the mid conv layer as a Conv2d or a ConstrainedConv2d with the given enforce
    timing; post_step also runs the projection (``project_()``, what an optimizer step would
    trigger) so that every variant does all the work its timing implies."""
    import lucid
    from lucid import backends, nn
    lucid.set_backend({"lucid-numpy": "numpy", "lucid-mlx": "mlx"}[impl])
    lucid.random.seed(0)
    n, ci, co, h, k, s, p, d, g = conv.WORKLOADS[CONSTRAINT_WORKLOAD]
    args = (ci, co, k, s, p, d, g, False)
    layer = nn.Conv2d(*args) if variant == "conv2d" else \
        nn.ConstrainedConv2d(*args, constraint=CONSTRAINT, enforce=variant)
    x = lucid.tensor(np.random.default_rng(0).standard_normal((n, ci, h, h)).astype(np.float32),
                     requires_grad=True)
    be = backends.current()
    project = variant == "post_step"

    def step() -> None:
        x.grad = layer.weight.grad = None
        layer(x).sum().backward()
        if project:
            layer.project_()
        be.eval(x.grad.data, layer.weight.grad.data, layer.weight.data)
    return step

"""The self-check's grid (see ``lucid.selfcheck``): each ``Check`` builds host inputs and runs
one small computation on the inputs' backend, returning its outputs and gradients. Chosen from
where MLX's GPU kernels differ from its CPU ones and lucid's graphs reach them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lucid
import lucid.nn.functional as F
from lucid import nn, optim
from lucid.tensor import Tensor

Run = Callable[[list[Tensor]], list[Any]]       # outputs and gradients (None: no grad)

# float32 against float64: a few float32 roundings of values of the reference's scale. With
# MLX_ENABLE_TF32 on (MLX's default), M5-class GPUs and CUDA multiply float32 with TF32's 10-bit
# mantissa, so matmul-like checks get TF32's tolerance there.
TOL32, TOL_TF32, TOL16 = 1e-4, 5e-3, 2e-2
TOL_BF16 = 8e-2            # bfloat16 keeps 8 mantissa bits to float16's 11: 8× the rounding


def tf32_enabled() -> bool:
    """Whether MLX may use TF32 for float32 matmuls (MLX_ENABLE_TF32, default on)."""
    return os.environ.get("MLX_ENABLE_TF32", "1").strip() not in ("0", "false", "False", "")


@dataclass(frozen=True)
class Check:
    """One computation: ``make()`` builds host inputs (float32/int64 on the NumPy backend);
    ``run(inputs)`` computes the outputs on the inputs' backend, in the inputs' dtype."""

    name: str
    make: Callable[[], list[Tensor]]
    run: Run
    tol: float
    dtype: str = "float32"          # what the MLX side computes in (the reference: float64)
    exact: bool = False             # bit-identical outputs wanted (tol 0)


# -- the grid: convolutions ----------------------------------------------------------------------

def _rand(*shape: int) -> Tensor:
    return lucid.random.randn(*shape)


# rank: (input spatial size, kernel size); 1-D and 3-D join when lucid has F.conv1d / F.conv3d
RANKS: dict[int, tuple[int, int]] = {1: (17, 3), 2: (9, 3), 3: (5, 3)}
"""Per convolution rank: (input size along each spatial axis, kernel size)."""
# case: (in channels, out channels, conv keyword arguments, transposed, dtype)
CONV_CASES: dict[str, tuple[int, int, dict[str, Any], bool, str]] = {
    "plain": (4, 6, {"padding": 1}, False, "float32"),
    "strided": (4, 6, {"stride": 2, "padding": 1}, False, "float32"),
    "grouped": (4, 6, {"groups": 2, "padding": 1}, False, "float32"),
    "strided_grouped": (4, 6, {"stride": 2, "groups": 2, "padding": 1}, False, "float32"),
    "depthwise_s2": (4, 8, {"stride": 2, "groups": 4, "padding": 1}, False, "float32"),
    "dilated": (4, 6, {"dilation": 2, "padding": 2}, False, "float32"),
    "input_dilated": (4, 6, {"input_dilation": 2, "padding": 1}, False, "float32"),
    "transposed": (4, 6, {"stride": 2, "padding": 1, "output_padding": 1}, True, "float32"),
    "transposed_grouped": (4, 6, {"stride": 2, "groups": 2, "padding": 1}, True, "float32"),
    "float16": (4, 6, {"padding": 1}, False, "float16"),
    # M1/M2 have no bfloat16 hardware: Metal emulates it, which this checks against NumPy
    "bfloat16": (4, 6, {"padding": 1}, False, "bfloat16"),
}
"""The convolution cases: (in channels, out channels, conv keyword arguments, transposed, dtype)."""


def conv_ranks() -> list[int]:
    """The ranks lucid has a functional conv for (2 always; 1 and 3 when F has them)."""
    return [r for r in sorted(RANKS) if hasattr(F, f"conv{r}d")]


def _conv_check(rank: int, case: str) -> Check | None:
    c_in, c_out, kw, transposed, dtype = CONV_CASES[case]
    fn = getattr(F, f"conv_transpose{rank}d" if transposed else f"conv{rank}d", None)
    if fn is None:
        return None
    if any(k not in inspect.signature(fn).parameters for k in kw):
        return None                   # e.g. a conv without input_dilation
    size, k = RANKS[rank]
    groups = kw.get("groups", 1)
    wshape = (c_in, c_out // groups) if transposed else (c_out, c_in // groups)

    def make() -> list[Tensor]:
        x = _rand(2, c_in, *(size,) * rank)
        w = _rand(*wshape, *(k,) * rank) * 0.3
        b = _rand(c_out)
        y = fn(x, w, b, **kw)
        return [x, w, b, _rand(*y.shape)]

    def run(ins: list[Tensor]) -> list[Any]:
        x, w, b, g = (t.requires_grad_() if i < 3 else t for i, t in enumerate(ins))
        y = fn(x, w, b, **kw)
        (y * g).sum().backward()
        return [y, x.grad, w.grad, b.grad]

    tol = {"float16": TOL16, "bfloat16": TOL_BF16}.get(
        dtype, TOL_TF32 if tf32_enabled() else TOL32)
    return Check(f"conv{rank}d_{case}", make, run, tol, dtype)


# -- the grid: everything else -------------------------------------------------------------------

def _with_grad(fn: Callable[..., Tensor], n_diff: int = 1) -> Run:
    """run(ins): out = fn(*ins) with the first n_diff inputs requiring grad; returns out and
    the gradients of sum(out * g) (g: the last input)."""
    def run(ins: list[Tensor]) -> list[Any]:
        diff = [t.requires_grad_() for t in ins[:n_diff]]
        out = fn(*ins[:-1])
        (out * ins[-1]).sum().backward()
        return [out] + [t.grad for t in diff]
    return run


def _large_sums(ins: list[Tensor]) -> list[Tensor]:
    x, y = ins
    return [x.sum(), x.mean(), y.sum(axis=(0, 2, 3)), y.mean(axis=(0, 2, 3))]


def _cumsum_make() -> list[Tensor]:
    return [_rand(6, 513), _rand(6, 513)]


def _gather_make() -> list[Tensor]:
    idx = lucid.random.randint(0, 50, (40,))              # duplicates: accumulating scatter
    return [_rand(50, 7), idx, _rand(40, 7)]


def _gather(ins: list[Tensor]) -> list[Any]:
    x, idx, g = ins
    x.requires_grad_()
    y = x[idx]
    (y * g).sum().backward()
    return [y, x.grad]


def _setitem_make(dtype: str) -> Callable[[], list[Tensor]]:
    def make() -> list[Tensor]:
        perm = lucid.random.permutation(64)
        base = lucid.random.randint(-1000, 1000, (64, 5))
        vals = lucid.random.randint(-1000, 1000, (20, 5))
        if dtype == "float32":
            base, vals = base.astype(lucid.float32), vals.astype(lucid.float32)
        rows, cols = perm[:20].numpy().tolist(), lucid.random.randint(0, 5, (20,))
        return [base, lucid.tensor(rows), vals, cols]       # unique rows; (row, col) pairs
    return make


def _setitem(ins: list[Tensor]) -> list[Tensor]:
    base, rows, vals, cols = ins
    t = base.detach() * 1                                     # a fresh tensor to write into
    t[rows] = vals
    t[rows, cols] = vals[:, 0] * 2
    return [t]


def _class_make() -> list[Tensor]:
    return [_rand(32, 10) * 3.0, lucid.random.randint(0, 10, (32,)), _rand(32, 10)]


def _softmax_ce(ins: list[Tensor]) -> list[Any]:
    x, target, g = ins
    x.requires_grad_()
    p = F.softmax(x, 1)
    lp = F.log_softmax(x, 1)
    loss = F.cross_entropy(x, target, label_smoothing=0.1)
    (loss + (p * g).sum() + (lp * g).sum() * 0.5).backward()
    return [p, lp, loss, x.grad]


def _bn_make() -> list[Tensor]:
    return [_rand(8, 4, 6, 6) * 2.0 + 1.0, _rand(4), _rand(4), _rand(8, 4, 6, 6)]


def _batch_norm(ins: list[Tensor]) -> list[Any]:
    x, w, b, g = (t.requires_grad_() if i < 3 else t for i, t in enumerate(ins))
    rm = lucid.zeros(4, dtype=x.dtype)
    rv = lucid.ones(4, dtype=x.dtype)
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1)
    (y * g).sum().backward()
    return [y, rm, rv, x.grad, w.grad, b.grad]


def _train_make() -> list[Tensor]:
    return [_rand(8, 2, 10, 10), lucid.random.randint(0, 5, (8,))]


def _train_steps(ins: list[Tensor]) -> list[Tensor]:
    """Three SGD-momentum steps of a small conv net: compiled with lucid.compile (on MLX one
    mx.compile graph; on NumPy the same function runs eagerly), losses and final weights."""
    x, y = ins
    lucid.random.seed(7)                     # the same initial weights on every backend
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, groups=2), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(64, 5))
    if x.dtype == lucid.float64:
        model.to(lucid.float64)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(xb: Tensor, yb: Tensor) -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    compiled = lucid.compile(step, state=[model, opt])
    losses = [compiled(x, y) for _ in range(3)]
    return losses + [p.detach() for p in model.parameters()] + list(model.buffers())


def _random_stream(ins: list[Tensor]) -> list[Tensor]:
    lucid.random.seed(1234)
    return [lucid.random.randn(4096), lucid.random.rand(4096),
            lucid.random.randint(0, 1000, (4096,)), lucid.random.permutation(257),
            lucid.random.uniform(-2.0, 3.0, (64,))]


def _matmul_make() -> list[Tensor]:
    return [_rand(64, 300), _rand(300, 50), _rand(64, 50)]


def other_checks() -> list[Check]:
    """The checks besides convolutions: matmul, large sums, cumsum, gather/scatter, setitem,
    softmax cross entropy, BatchNorm statistics, a compiled step, the random stream."""
    mm = TOL_TF32 if tf32_enabled() else TOL32
    return [
        Check("matmul", _matmul_make, _with_grad(lambda a, b: a @ b, 2), mm),
        Check("sum_2^20_and_per_channel", lambda: [lucid.random.rand(2**20) * 4.0,
                                                   lucid.random.rand(16, 3, 96, 96)],
              _large_sums, 1e-6),
        Check("cumsum_and_backward", _cumsum_make, _with_grad(lambda x: x.cumsum(1)), 1e-5),
        Check("gather_scatter_add", _gather_make, _gather, 1e-6),
        Check("setitem_int64", _setitem_make("int64"), _setitem, 0.0, "int64", exact=True),
        Check("setitem_float32", _setitem_make("float32"), _setitem, 0.0, exact=True),
        Check("softmax_cross_entropy", _class_make, _softmax_ce, 1e-5),
        Check("batch_norm_train_stats", _bn_make, _batch_norm, 1e-5),
        Check("compiled_train_step", _train_make, _train_steps, mm),
        Check("random_stream", list, _random_stream, 0.0, exact=True),
    ]


QUICK_CONV = ("plain", "strided_grouped", "depthwise_s2", "transposed", "float16", "bfloat16")
"""The convolution cases ``--quick`` runs."""


def grid(quick: bool = False) -> list[Check]:
    """Every check: the conv cases for each rank lucid has, then the rest. ``quick``: the conv
    cases of QUICK_CONV only (the strided-grouped ones always)."""
    cases = QUICK_CONV if quick else tuple(CONV_CASES)
    convs = [_conv_check(r, c) for r in conv_ranks() for c in cases]
    return [c for c in convs if c is not None] + other_checks()

"""lucid's self-check: every MLX device on this machine against the NumPy reference in float64.

    python -m lucid.selfcheck            # one line per check; exit status 1 on any FAIL
    python -m lucid.selfcheck --quick    # a reduced grid (what the test suite runs)

lucid's tests run on Linux, where MLX computes on its CPU build; a Mac's Metal kernels (and
CUDA's) are other code. So the proof travels: each check runs a small computation on every MLX
device here (the GPU where Metal or CUDA is available, and the CPU) and on lucid's NumPy backend
in float64 from the same inputs, and compares. The grid is chosen from where MLX's GPU kernels
differ from its CPU ones and lucid's graphs reach them: convolutions of every rank lucid has and
their three gradients (strided and grouped together was wrong on Metal before MLX 0.32.0, PR
#3800), large reductions, cumsum and its backward (a reversed scan), gathers and scatters (int64
setitem), softmax and cross entropy, BatchNorm's training statistics, a compiled training step,
and the random stream (bit-identical on every backend).

Each line reads ``<check> <device> max_err=<x> tol=<t> PASS|FAIL``; ``max_err`` is the largest
absolute difference from the reference divided by the reference's largest magnitude (0 for the
exact checks). ``run()`` does the same in the calling process and returns a ``Report`` whose
``failures`` lists the failed lines.

No numpy import here: inputs come from ``lucid.random`` and errors are computed with lucid's
own NumPy backend, so this file follows the rule that only backends touch the array libraries.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lucid
import lucid.nn.functional as F
from lucid import backends, nn, optim
from lucid.tensor import Tensor

Run = Callable[[list[Tensor]], list[Any]]       # outputs and gradients (None: no grad)

# float32 against float64: a few float32 roundings of values of the reference's scale. With
# MLX_ENABLE_TF32 on (MLX's default), M5-class GPUs and CUDA multiply float32 with TF32's 10-bit
# mantissa, so matmul-like checks get TF32's tolerance there.
TOL32, TOL_TF32, TOL16 = 1e-4, 5e-3, 2e-2


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


@dataclass
class Result:
    check: str
    device: str
    max_err: float
    tol: float
    error: str = ""                 # the exception a device raised, if any

    @property
    def ok(self) -> bool:
        return not self.error and self.max_err <= self.tol

    @property
    def line(self) -> str:
        err = "error" if self.error else f"{self.max_err:.2e}"
        tail = f" ({self.error})" if self.error else ""
        return (f"{self.check:<30} {self.device:<8} max_err={err} tol={self.tol:.0e} "
                f"{'PASS' if self.ok else 'FAIL'}{tail}")


@dataclass
class Report:
    """What ``run()`` found: the header lines, one Result per check and device."""

    header: list[str]
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[str]:
        """The lines of the failed checks (empty when everything passed)."""
        return [r.line for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        return "\n".join(self.header + [r.line for r in self.results] + [self.summary])

    @property
    def summary(self) -> str:
        n, bad = len(self.results), len(self.failures)
        verdict = "all passed" if not bad else f"{bad} FAILED"
        return f"{n} checks, {verdict} in {self.seconds:.1f}s"


# -- the grid: convolutions ----------------------------------------------------------------------

def _rand(*shape: int) -> Tensor:
    return lucid.random.randn(*shape)


# rank: (input spatial size, kernel size); 1-D and 3-D join when lucid has F.conv1d / F.conv3d
RANKS: dict[int, tuple[int, int]] = {1: (17, 3), 2: (9, 3), 3: (5, 3)}
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
}


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

    tol = TOL16 if dtype == "float16" else (TOL_TF32 if tf32_enabled() else TOL32)
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


QUICK_CONV = ("plain", "strided_grouped", "depthwise_s2", "transposed", "float16")


def grid(quick: bool = False) -> list[Check]:
    """Every check: the conv cases for each rank lucid has, then the rest. ``quick``: the conv
    cases of QUICK_CONV only (the strided-grouped ones always)."""
    cases = QUICK_CONV if quick else tuple(CONV_CASES)
    convs = [_conv_check(r, c) for r in conv_ranks() for c in cases]
    return [c for c in convs if c is not None] + other_checks()


# -- running -------------------------------------------------------------------------------------

def _to_float64(t: Tensor) -> Tensor:
    t = t.detach().to("numpy")
    return t.astype(lucid.float64)


def _max_err(got: Sequence[Any], ref: Sequence[Any], exact: bool) -> float:
    """The largest difference over the outputs, relative to each reference's largest
    magnitude (absolute for exact checks); inf for a shape mismatch, a None or a NaN."""
    if len(got) != len(ref):
        return float("inf")
    worst = 0.0
    for g, r in zip(got, ref):
        if g is None or r is None or tuple(g.shape) != tuple(r.shape):
            return float("inf")
        if g.numel() == 0:
            continue
        g64, r64 = _to_float64(g), _to_float64(r)
        diff = (g64 - r64).abs().max().item()
        if not exact:
            scale = r64.abs().max().item()
            diff = diff / scale if scale > 0 else diff
        if math.isnan(diff):
            return float("inf")
        worst = max(worst, diff)
    return worst


def _inputs(check: Check, seed: int) -> list[Tensor]:
    with lucid.using_backend("numpy"):
        lucid.random.seed(seed)
        return check.make()


def _cast(ins: list[Tensor], dtype: str) -> list[Tensor]:
    return [t.astype(dtype) if t.dtype.is_floating else t for t in ins]


def run_check(check: Check, devices: Sequence[str], seed: int = 0) -> list[Result]:
    """The check on each MLX device against the float64 reference."""
    try:
        host = _cast(_inputs(check, seed), check.dtype)     # rounded to what MLX computes in
        with lucid.using_backend("numpy"):
            ref = check.run([t.detach().astype(lucid.float64) if t.dtype.is_floating
                             else t.detach() for t in host])
            ref = [None if r is None else r.detach() for r in ref]
    except Exception as e:  # noqa: BLE001 - the reference itself failed: every device fails
        msg = f"reference failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
        return [Result(check.name, f"mlx:{dev}", float("inf"), check.tol, msg)
                for dev in devices]
    mlx = backends.load("mlx")
    out = []
    for dev in devices:
        try:
            with lucid.using_backend("mlx"), mlx.on_device(dev):
                # from host values (Tensor(...), unlike .to(), keeps them known to the index
                # and target checks, as a DataLoader batch is)
                got = check.run([Tensor(t.detach(), device="mlx") for t in host])
                got = [None if g is None else g.detach().to("numpy") for g in got]
            err, msg = _max_err(got, ref, check.exact), ""
        except Exception as e:  # noqa: BLE001 - a device that raises fails its check
            err, msg = float("inf"), f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        out.append(Result(check.name, f"mlx:{dev}", err, check.tol, msg))
    return out


def _chip() -> str:
    try:
        if sys.platform == "darwin":
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=5,
                                  check=False).stdout.strip()
        if os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _os() -> str:
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]} ({platform.machine()}, Darwin {platform.release()})"
    return f"{platform.system()} {platform.release()} ({platform.machine()})"


def header(info: dict[str, str] | None) -> list[str]:
    tf32 = os.environ.get("MLX_ENABLE_TF32")
    tf32_line = (f"MLX_ENABLE_TF32={tf32}" if tf32 is not None else
                 "MLX_ENABLE_TF32 unset (MLX's default: 1, TF32 matmuls where the GPU has them)")
    mlx_line = ("MLX not importable" if info is None else
                f"MLX {info['mlx']}, GPU: {info['gpu']}"
                + (f" ({info['device_name']})" if info.get("device_name") else ""))
    return [f"lucid selfcheck: lucid {lucid.__version__}, {mlx_line}",
            f"OS: {_os()}, Python {platform.python_version()}",
            f"chip: {_chip()}",
            tf32_line,
            "reference: lucid's NumPy backend in float64, from the same inputs"]


def run(quick: bool = False, devices: Sequence[str] | None = None,
        log: Callable[[str], None] | None = None) -> Report:
    """Run the grid in this process on ``devices`` (default: every MLX device here) and return
    the Report; ``log`` gets each line as it is made. The active backend and lucid's random
    stream are restored afterwards."""
    say = log or (lambda _line: None)
    start = time.perf_counter()
    try:
        mlx = backends.load("mlx")
    except ImportError as e:
        report = Report(header(None))
        report.results.append(Result("mlx_import", "-", float("inf"), 0.0,
                                     str(e).splitlines()[0]))
        for line in report.header + [report.results[0].line]:
            say(line)
        return report
    report = Report(header(mlx.describe()))
    for line in report.header:
        say(line)
    devs = list(devices) if devices is not None else mlx.devices()
    state = lucid.random.get_state()
    backend = lucid.get_backend()
    try:
        for i, check in enumerate(grid(quick)):
            for result in run_check(check, devs, seed=i):
                report.results.append(result)
                say(result.line)
    finally:
        lucid.set_backend(backend)
        lucid.random.set_state(state)
    report.seconds = time.perf_counter() - start
    say(report.summary)
    return report


def main(argv: list[str] | None = None) -> int:
    """Print the check lines; 0 when all pass, 1 otherwise (paste the output into a bug report
    when it fails)."""
    ap = argparse.ArgumentParser(prog="python -m lucid.selfcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a reduced conv grid")
    ap.add_argument("--device", action="append", choices=["cpu", "gpu"],
                    help="only this MLX device (repeatable; default: every device here)")
    args = ap.parse_args(argv)
    report = run(quick=args.quick, devices=args.device, log=lambda s: print(s, flush=True))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

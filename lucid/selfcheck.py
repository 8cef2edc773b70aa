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
from lucid import backends
from lucid.selfcheck_grid import (
    CONV_CASES,
    QUICK_CONV,
    RANKS,
    Check,
    conv_ranks,
    grid,
    other_checks,
    tf32_enabled,
)
from lucid.tensor import Tensor

# the grid's names are re-exported: lucid.selfcheck.grid() lists what run() runs
__all__ = ["CONV_CASES", "QUICK_CONV", "RANKS", "Check", "Report", "Result", "conv_ranks", "grid",
           "main", "other_checks", "run", "run_check", "tf32_enabled"]


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

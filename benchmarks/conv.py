"""Conv fwd and fwd+bwd timings: lucid (numpy), lucid (mlx), raw MLX and torch (if importable).

Run with ``python benchmarks/conv.py --reps 5`` (``make bench`` runs ``benchmarks/run.py``, which
times these workloads interleaved, one process per implementation). One thread each, so the
numbers compare implementations rather than thread pools. Prints milliseconds per call (the best
of --reps runs: on a shared machine the minimum is the least disturbed estimate, and every
implementation is measured the same way) and the ratios the project tracks: lucid-mlx / raw-mlx
and lucid-numpy / torch; for the 1×1 workloads (``GEMM_WORKLOADS``) also lucid-numpy against
plain NumPy GEMMs doing the same work.

``WORKLOADS`` and the ``*_case`` functions are importable: each case returns (fwd ms, fwd+bwd ms);
the ``*_fns`` functions return the (fwd, fwd_bwd) closures they time.
"""

from __future__ import annotations

import argparse
import os
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np

import lucid
import lucid.nn.functional as F
from lucid import backends

# name: (N, C_in, C_out, size, k, stride, padding, dilation, groups). size: an int is a square
# 2-D image (H = W = size); a tuple gives one size per spatial axis, so its length is the rank
# (1-D: (L,), 3-D: (D, H, W)); k, stride and dilation apply to every axis.
WORKLOADS: dict[str, tuple] = {
    "bayar 3->3 256² k5": (16, 3, 3, 256, 5, 1, 2, 1, 1),
    "mid 32->64 32² k3": (32, 32, 64, 32, 3, 1, 1, 1, 1),
    "depthwise 64 g64": (32, 64, 64, 32, 3, 1, 1, 1, 64),
    "grouped g4 64->64": (32, 64, 64, 32, 3, 1, 1, 1, 4),
    "pointwise 64->128": (32, 64, 128, 32, 1, 1, 0, 1, 1),
    "strided 5x5 s2": (32, 32, 64, 32, 5, 2, 2, 1, 1),
    "dilated 3x3 d2": (32, 32, 64, 32, 3, 1, 2, 2, 1),
    # issue 23: an EEG-like 1-D layer (a (64, 8, 512) batch, 'same' with an even kernel) and a
    # small video clip in 3-D
    "eeg 1-D 8->16 L512 k64": (64, 8, 16, (512,), 64, 1, "same", 1, 1),
    "video 3-D 3->16 8x32² k3": (4, 3, 16, (8, 32, 32), 3, 1, 1, 1, 1),
}


def spatial(shape) -> tuple[int, ...]:
    """The spatial sizes of a workload (its rank is their count)."""
    size = shape[3]
    return tuple(size) if isinstance(size, tuple) else (size, size)


def _pads(shape) -> tuple[list[int], list[int]]:
    """(lo, hi) per axis, as lucid resolves the padding ('same': the extra pixel high)."""
    rank, k, p, d = len(spatial(shape)), shape[4], shape[6], shape[7]
    if p == "same":
        total = d * (k - 1)
        return [total // 2] * rank, [total - total // 2] * rank
    return [p] * rank, [p] * rank


# 1×1 workloads also timed as plain NumPy GEMMs (issue 12: lucid-numpy <= 1.1x of those).
GEMM_WORKLOADS = ("pointwise 64->128",)


def timeit(fn, reps: int) -> float:
    fn()                                      # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def timeit_interleaved(fns, reps: int) -> list[float]:
    """Best-of-reps ms of each fn, the fns taking turns within every rep, so that a change in
    the machine's load hits all of them alike (for ratios on a shared box)."""
    for fn in fns:
        fn()                                  # warm-up
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [min(ts) * 1e3 for ts in times]


def lucid_fns(backend, shape):
    """(fwd, fwd_bwd) closures of one workload on a lucid backend."""
    n, ci, co, _size, k, s, p, d, g = shape
    sp = spatial(shape)
    conv = getattr(F, f"conv{len(sp)}d")
    rng = np.random.default_rng(0)
    with lucid.using_backend(backend):
        x = lucid.tensor(rng.standard_normal((n, ci) + sp), requires_grad=True)
        w = lucid.tensor(rng.standard_normal((co, ci // g) + (k,) * len(sp)) * 0.1,
                         requires_grad=True)
        be = backends.current()

    def fwd():
        with lucid.no_grad():
            y = conv(x, w, None, s, p, d, g)
        be.eval(y.data)

    def fwd_bwd():
        x.grad = w.grad = None
        y = conv(x, w, None, s, p, d, g)
        y.sum().backward()
        be.eval(x.grad.data, w.grad.data)

    return fwd, fwd_bwd


def lucid_case(backend, shape, reps):
    fwd, fwd_bwd = lucid_fns(backend, shape)
    return timeit(fwd, reps), timeit(fwd_bwd, reps)


def raw_mlx_fns(shape):
    """(fwd, fwd_bwd) closures of one workload in raw MLX (channels-last), each forced with
    mx.eval: ``mx.conv2d`` for the 2-D workloads, ``mx.conv_general`` for the others."""
    import mlx.core as mx
    n, ci, co, _size, k, s, p, d, g = shape
    sp = spatial(shape)
    rank = len(sp)
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal((n,) + sp + (ci,)).astype(np.float32))
    w = mx.array((rng.standard_normal((co,) + (k,) * rank + (ci // g,)) * 0.1).astype(np.float32))
    lo, hi = _pads(shape)

    def f(x, w):
        if isinstance(shape[3], int):
            return mx.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g)
        return mx.conv_general(x, w, stride=[s] * rank, padding=(lo, hi),
                               kernel_dilation=[d] * rank, groups=g)

    grad = mx.value_and_grad(lambda x, w: f(x, w).sum(), argnums=(0, 1))
    return (lambda: mx.eval(f(x, w))), (lambda: mx.eval(grad(x, w)))


def raw_mlx_case(shape, reps):
    fwd, fwd_bwd = raw_mlx_fns(shape)
    return timeit(fwd, reps), timeit(fwd_bwd, reps)


def torch_fns(shape):
    """(fwd, fwd_bwd) closures of one workload in torch eager, on one thread."""
    import torch
    torch.set_num_threads(1)
    n, ci, co, _size, k, s, p, d, g = shape
    sp = spatial(shape)
    conv = getattr(torch.nn.functional, f"conv{len(sp)}d")
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((n, ci) + sp), dtype=torch.float32, requires_grad=True)
    w = torch.tensor(rng.standard_normal((co, ci // g) + (k,) * len(sp)) * 0.1,
                     dtype=torch.float32, requires_grad=True)

    def fwd():
        with torch.no_grad():
            conv(x, w, None, s, p, d, g)

    def fwd_bwd():
        x.grad = w.grad = None
        conv(x, w, None, s, p, d, g).sum().backward()

    return fwd, fwd_bwd


def torch_case(shape, reps):
    fwd, fwd_bwd = torch_fns(shape)
    return timeit(fwd, reps), timeit(fwd_bwd, reps)


def numpy_gemm_fns(shape):
    """(fwd, fwd_bwd) of a 1×1 conv as the plain NumPy GEMMs a user would write on NCHW
    arrays: y = W·x per image; its sum (lucid's fwd+bwd differentiates ``y.sum()``); dy = ones;
    dx = Wᵀ·dy; dW = Σ_n dy_n·x_nᵀ."""
    n, ci, co, h, k, s, p, _d, g = shape
    if (k, s, p, g) != (1, 1, 0, 1):
        raise ValueError(f"plain GEMMs only for an ungrouped, unpadded 1x1 conv, got {shape}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h * h)).astype(np.float32)
    w = (rng.standard_normal((co, ci)) * 0.1).astype(np.float32)

    def fwd():
        return np.matmul(w, x)

    def fwd_bwd():
        y = fwd()
        y.sum()
        dy = np.ones_like(y)
        np.matmul(w.T, dy)
        np.matmul(dy, x.transpose(0, 2, 1)).sum(axis=0)

    return fwd, fwd_bwd


def numpy_gemm_case(shape, reps):
    fwd, fwd_bwd = numpy_gemm_fns(shape)
    return timeit(fwd, reps), timeit(fwd_bwd, reps)


def lucid_vs_gemm(shape, reps) -> list[tuple[float, float]]:
    """[(lucid-numpy ms, plain GEMMs ms)] for fwd and fwd+bwd, measured interleaved."""
    pairs = zip(lucid_fns("numpy", shape), numpy_gemm_fns(shape))
    return [tuple(timeit_interleaved(pair, reps)) for pair in pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default=None, help="substring of a workload name")
    args = ap.parse_args()
    have_mlx = "mlx" in backends.available()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    head = f"{'workload':22} {'pass':7} {'lucid-np':>9} {'lucid-mlx':>9} {'raw-mlx':>9} " \
           f"{'torch':>9} {'mlx/raw':>8} {'np/torch':>8}"
    print(head + "\n" + "-" * len(head))
    for name, shape in WORKLOADS.items():
        if args.only and args.only not in name:
            continue
        ln = lucid_case("numpy", shape, args.reps)
        lm = lucid_case("mlx", shape, args.reps) if have_mlx else (float("nan"),) * 2
        rm = raw_mlx_case(shape, args.reps) if have_mlx else (float("nan"),) * 2
        tt = torch_case(shape, args.reps) if have_torch else (float("nan"),) * 2
        for i, label in enumerate(("fwd", "fwd+bwd")):
            print(f"{name:22} {label:7} {ln[i]:9.1f} {lm[i]:9.1f} {rm[i]:9.1f} {tt[i]:9.1f} "
                  f"{lm[i] / rm[i]:8.2f} {ln[i] / tt[i]:8.2f}", flush=True)
        if name in GEMM_WORKLOADS:
            for label, (lt, gt) in zip(("fwd", "fwd+bwd"), lucid_vs_gemm(shape, args.reps)):
                print(f"{'  vs plain NumPy GEMMs':22} {label:7} {lt:9.1f} (lucid-np, interleaved) "
                      f"{gt:9.1f} (GEMMs)  lucid-np / GEMMs {lt / gt:.2f}", flush=True)


if __name__ == "__main__":
    main()

"""lucid's benchmark: ``python benchmarks/run.py [--quick] [--only SECTION[,SECTION]]``.

Prints markdown: the machine, then five sections (see benchmarks/README.md):

    train       whole training steps of three nets, six implementations (µs/step)
    conv        the conv workloads of benchmarks/conv.py, and the 1×1 conv vs plain GEMMs
    constraint  ConstrainedConv2d's enforce timings vs a plain Conv2d (fwd+bwd)
    memory      MLX active/peak memory over 1000 lucid[mlx] steps, compiled and eager
    precision   fp32 / bf16 autocast / fp16 + GradScaler steps of the digits and demo nets,
                lucid[numpy] and lucid[mlx] against raw MLX hand-cast, and MLX peak memory

Every implementation runs in its own worker process (``_worker.py``) on one thread; the parent
sends "time k calls" requests to them in turn, so every implementation sees the same machine
load, and reports medians over the repeats (warm-up calls excluded; MLX work forced with
``mx.eval`` inside every call). A ratio is the median over the repeats of the two times in the
same repeat. ``--quick`` (< 60 s on a 2-core box) uses fewer repeats and a subset of the conv
workloads.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]          # this checkout's lucid, not an installed one

import _report as R
import _sections
from _pool import Plan, Pool
from _steps import CONV_IMPLS, TRAIN_IMPLS

SECTIONS = ("train", "conv", "constraint", "memory", "precision")

# plan: the training steps; heavy: the conv and constraint sections, whose MLX calls take up
# to seconds each on the Linux CPU wheel. reps: interleaved repeats; target_s: length of one
# repeat of one implementation; conv: the conv workloads (None: all); memory_nets: how many of
# the nets (in order) the memory section runs, for ``steps`` steps each; nets: the nets of the
# training-step section and enforce: the constraint section's enforce timings (None: all; quick
# leaves out what has no target and costs seconds a call on mlx[cpu]); precisions: those of the
# precision section (absent: all three). A repeat of k = 1 call right after the process sat
# idle runs cold (a plain-GEMM 1×1 conv took twice its back-to-back time), so target_s keeps
# k >= 5 for every call under ~20 ms; the MLX convs take 0.1-2 s a call.
PROFILES = {
    "full": {"plan": Plan(reps=9, target_s=0.3, warmup=3),
             "heavy": Plan(reps=5, target_s=0.3, warmup=1),
             "conv": None, "memory_nets": 2, "steps": 1000, "nets": None, "enforce": None},
    "quick": {"plan": Plan(reps=5, target_s=0.05, warmup=2),
              "heavy": Plan(reps=3, target_s=0.1, warmup=1),
              "conv": _sections.QUICK_CONV, "memory_nets": 1, "steps": 1000,
              "nets": ("tiny MLP", "digits CNN"), "enforce": ("forward",),
              "precisions": ("fp32", "bf16")},
    "smoke": {"plan": Plan(reps=1, target_s=0.0, warmup=1),
              "heavy": Plan(reps=1, target_s=0.0, warmup=1),
              "conv": _sections.QUICK_CONV, "memory_nets": 1, "steps": 20,
              "nets": None, "enforce": None},
}


def missing_impls(skip: list[str]) -> dict[str, str]:
    """Implementations that cannot run here, with the note the tables print."""
    out = {i: "skipped (--skip)" for i in skip}
    if importlib.util.find_spec("torch") is None:
        out["torch"] = "torch is not installed"
    if importlib.util.find_spec("mlx") is None:
        for i in ("mlx", "mlx-compiled", "lucid-mlx", "lucid-mlx-compiled"):
            out[i] = "mlx is not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and workloads (< 60 s)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: tiny counts
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}")
    ap.add_argument("--conv", default=None, metavar="SUBSTR[,SUBSTR]",
                    help="only the conv workloads whose names contain one of these")
    ap.add_argument("--skip", default="", help="comma-separated implementations not to run "
                    f"(of {', '.join(TRAIN_IMPLS + ('numpy',))})")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    skip = [s.strip() for s in args.skip.split(",") if s.strip()]
    if args.conv:
        subs = [s.strip() for s in args.conv.split(",") if s.strip()]
        profile = {**profile, "conv": tuple(n for n in _sections.conv.WORKLOADS
                                            if any(s in n for s in subs))}
        if not profile["conv"]:
            ap.error(f"no conv workload matches {args.conv!r}")

    t0 = time.perf_counter()
    impls = list(dict.fromkeys(TRAIN_IMPLS + CONV_IMPLS + ("numpy",)))
    pool = Pool(impls, missing_impls(skip))
    try:
        info_impl = "torch" if "torch" in pool.workers else next(iter(pool.workers))
        versions = pool.workers[info_impl].call({"op": "info"})["result"]
        mode = "smoke" if args.smoke else "quick, noisy" if args.quick else "full"
        print(f"# lucid benchmarks ({mode})\n\n{R.machine(versions)}\n", flush=True)
        print(_sections.THREADS_NOTE + "\n", flush=True)
        for name in only:
            ts = time.perf_counter()
            text = _sections.RUN[name](pool, profile)
            print(f"{text}\n\n_section wall time {time.perf_counter() - ts:.1f} s_\n", flush=True)
    finally:
        pool.close()
    print(f"_total wall time {time.perf_counter() - t0:.1f} s_")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One implementation's benchmark process: ``python benchmarks/_worker.py IMPL``.

Started by ``benchmarks/run.py`` with one thread (OMP/OpenBLAS/MKL_NUM_THREADS=1, and
``torch.set_num_threads(1)`` in the torch builders), it speaks line-based JSON over
stdin/stdout, one reply per request:

    {"op": "setup", "id": ID, "spec": SPEC, "warmup": W}  build, then W >= 1 warm-up calls (the
        last one timed) -> {"ok": true, "est": seconds}  (or {"ok": false, "error": why})
    {"op": "time", "id": ID, "k": K}   K calls back to back -> {"ok": true, "s": seconds/call}
    {"op": "drop", "id": ID}           forget a callable
    {"op": "memory", "spec": SPEC, "steps": S, "every": E, "warmup": W}  see ``memory``
    {"op": "info"}                     versions and thread settings of this process

Anything the libraries print goes to stderr, so stdout carries only the protocol.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                 # before numpy/torch/mlx load their BLAS

import _steps


def timed(fn: _steps.Step, k: int) -> float:
    """Seconds per call over k back-to-back calls (each call forces its own results)."""
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - t0) / k


def memory(impl: str, spec: dict, steps: int, every: int, warmup: int) -> dict[str, Any]:
    """MLX memory over ``steps`` training steps after ``warmup`` ones: active memory (bytes held
    by live arrays) every ``every`` steps, and the peak since the end of the warm-up."""
    import mlx.core as mx
    fn = _steps.build(impl, spec)
    for _ in range(warmup):
        fn()
    gc.collect()
    mx.reset_peak_memory()
    after_warmup = mx.get_active_memory()
    samples = []
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        fn()
        if i % every == 0 or i == steps:
            samples.append(mx.get_active_memory())
    wall = time.perf_counter() - t0
    return {"after_warmup": after_warmup, "samples": samples, "final": samples[-1],
            "peak": mx.get_peak_memory(), "cache": mx.get_cache_memory(), "wall_s": wall}


def info() -> dict[str, Any]:
    """Versions, read from package metadata (this process need not import torch)."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    def ver(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None
    return {"python": sys.version.split()[0], "numpy": np.__version__, "mlx": ver("mlx"),
            "torch": ver("torch")}


def handle(impl: str, req: dict, fns: dict[str, _steps.Step]) -> dict[str, Any]:
    op = req["op"]
    if op == "setup":
        fn = _steps.build(impl, req["spec"])
        for _ in range(req.get("warmup", 2) - 1):
            fn()
        fns[req["id"]] = fn
        return {"ok": True, "est": timed(fn, 1)}     # the last warm-up call, timed for k
    if op == "time":
        return {"ok": True, "s": timed(fns[req["id"]], req["k"])}
    if op == "drop":
        fns.pop(req["id"], None)
        gc.collect()
        return {"ok": True}
    if op == "memory":
        return {"ok": True, "result": memory(impl, req["spec"], req["steps"], req["every"],
                                             req["warmup"])}
    if op == "info":
        return {"ok": True, "result": info()}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    impl = sys.argv[1]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                          # stray prints (also from C) go to stderr
    sys.stdout = sys.stderr
    fns: dict[str, _steps.Step] = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        try:
            reply = handle(impl, req, fns)
        except Exception as e:  # noqa: BLE001  (any failure is reported; the parent notes it)
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()

"""The five sections of ``benchmarks/run.py``: each measures through the worker pool and
returns its markdown (a heading, tables, notes). Targets are issue 12's."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import _report as R
import conv
from _pool import Plan, Pool, Result, WorkerError, measure, paired_ratio
from _steps import CONSTRAINT, CONSTRAINT_WORKLOAD, CONV_IMPLS, NETS, TRAIN_IMPLS

QUICK_CONV = ("pointwise 64->128",)        # the 1×1 target's workload
ENFORCE = ("forward", "post_step", "pre_forward")   # lucid.nn.layers.constrained_conv.ENFORCE

LABELS = {"torch": "torch", "mlx": "mlx.nn eager", "mlx-compiled": "mlx.nn compiled",
          "lucid-numpy": "lucid[numpy]", "lucid-mlx": "lucid[mlx] eager",
          "lucid-mlx-compiled": "lucid[mlx] compiled", "numpy": "NumPy GEMMs"}

CONV_LABELS = {"lucid-mlx": "lucid[mlx]", "mlx": "raw MLX"}   # no mlx.nn, no step in section 2

THREADS_NOTE = (
    "Times: median per call over interleaved repeats (warm-ups excluded); a ratio a / b is the "
    "median over repeats of a's time over b's in the same repeat.\n\n"
    "Threads: OMP/OPENBLAS/MKL_NUM_THREADS=1 in every worker and `torch.set_num_threads(1)`. "
    "MLX 0.32 has no CPU thread setting (no API, no environment variable): its CPU backend "
    "runs the ops of a stream on one worker thread, and the Linux `mlx[cpu]` wheel calls the "
    "reference BLAS bundled with it, so MLX is single-threaded already.")


def _progress(what: str) -> None:
    """A line on stderr as each workload finishes (a full run takes minutes)."""
    print(f"[{time.strftime('%H:%M:%S')}] done: {what}", file=sys.stderr, flush=True)


def _notes(pairs: list[tuple[str, Result]]) -> str:
    seen: dict[str, list[str]] = {}
    for what, r in pairs:
        if r.error:
            seen.setdefault(r.error.strip().splitlines()[-1][:300], []).append(what)
    return "\n".join(f"- {', '.join(whats)}: {err}" for err, whats in seen.items())


def _ratio_rows(rows: list[list[str]], name: str, what: str, a: Result, b: Result,
                target: float | None) -> None:
    r = paired_ratio(a, b)
    rows.append([name, what, R.ratio_cell(r), "—" if target is None else f"≤ {target:.2f}",
                 R.verdict(r, target)])


# -- 1. whole training steps -----------------------------------------------------------------

# (numerator, denominator, {net: target}) for the ratio table: issue 27's targets (issue 12's
# where issue 27 set none: digits compiled 1.10, tiny-MLP NumPy 1.20)
TRAIN_RATIOS = [
    ("lucid-mlx-compiled", "mlx-compiled", {"tiny MLP": 1.05, "digits CNN": 1.10}),
    ("lucid-mlx", "mlx", {"tiny MLP": 1.05, "digits CNN": 1.05, "constrained net": 1.05}),
    ("lucid-numpy", "torch", {"tiny MLP": 1.20, "digits CNN": 1.5, "constrained net": 1.3}),
]


def train(pool: Pool, profile: dict[str, Any]) -> str:
    """µs per whole training step (forward, loss, backward, optimizer step, and for the
    constrained net the post-step projection), per net and implementation."""
    plan: Plan = profile["plan"]
    rows, ratio_rows, failed = [], [], []
    chosen = [n for n in NETS if n in (profile["nets"] or NETS)]
    for net in chosen:
        batch, opt, kw = NETS[net]
        res = dict(zip(TRAIN_IMPLS, measure(pool, [(i, {"kind": "train", "net": net})
                                                   for i in TRAIN_IMPLS], plan)))
        hyper = " ".join(f"{k} {v}" for k, v in kw.items())
        rows.append([net, str(batch), f"{opt} {hyper}"] + [R.num(res[i].median)
                                                            for i in TRAIN_IMPLS])
        for a, b, targets in TRAIN_RATIOS:
            _ratio_rows(ratio_rows, net, f"{LABELS[a]} / {LABELS[b]}", res[a], res[b],
                        targets.get(net))
        failed += [(f"{net} {LABELS[i]}", res[i]) for i in TRAIN_IMPLS]
        _progress(f"train {net}")
    shown = "" if len(chosen) == len(NETS) else f" ({len(chosen)} of {len(NETS)} nets)"
    out = [f"## 1. Whole training steps (µs/step, median){shown}", "",
           R.table(["net", "batch", "optimizer"] + [LABELS[i] for i in TRAIN_IMPLS], rows, 3),
           "", R.table(["net", "ratio", "value", "target", "met"], ratio_rows, 2), "",
           TRAIN_NOTES]
    notes = _notes(failed)
    return "\n".join(out + ([notes] if notes else []))


TRAIN_NOTES = (
    "- tiny MLP 32→64→64→10 with CrossEntropyLoss; digits CNN = `examples/digits.py` "
    "`build_model()` on 8×8 inputs; constrained net = `examples/manipulation_detection.py` "
    "`build_model(\"constrained\", 5, size)` (its first layer is a ConstrainedConv2d with "
    "constraint=\"fixed_center\", enforce=\"forward\"; the torch step constrains the "
    "kernel in every forward through `torch.nn.utils.parametrize`, the mlx.nn step through "
    "a Conv2d whose call constrains its weight first).\n"
    "- torch and mlx.nn models are translated from the lucid net (`_translate.py`): same "
    "layer shapes, own initialisation; mlx.nn convs take NHWC input. Train mode "
    "(BatchNorm batch statistics, Dropout active). Same batch every step, no data "
    "loading. Eager mlx.nn steps end in `mx.eval` of parameters, buffers, optimizer state "
    "and loss; lucid's eager step in its optimizer's step, which evaluates the same (the "
    "parameters, their state, the buffers written in place and the loss of the last "
    "backward) in one sync, as a lucid user's loop does; compiled steps evaluate the state "
    "and loss they return.")


# -- 2. conv workloads -----------------------------------------------------------------------

def _conv_group(pool: Pool, name: str, impls: tuple[str, ...],
                plan: Plan) -> dict[tuple[str, str], Result]:
    """Both passes of one workload on ``impls``, interleaved: {(impl, pass): Result}."""
    entries = [(i, {"kind": "conv", "workload": name, "pass": p})
               for p in ("fwd", "fwd+bwd") for i in impls]
    return dict(zip([(e[0], e[1]["pass"]) for e in entries], measure(pool, entries, plan)))


def conv_section(pool: Pool, profile: dict[str, Any]) -> str:
    """ms per conv call (fwd: no-grad forward; fwd+bwd: forward, sum, backward to x and w) of
    benchmarks/conv.py's workloads, and the 1×1 workload against plain NumPy GEMMs."""
    plan: Plan = profile["heavy"]
    names = profile["conv"] or tuple(conv.WORKLOADS)
    rows, gemm_rows, failed = [], [], []
    for name in names:
        res = _conv_group(pool, name, CONV_IMPLS, plan)
        _progress(f"conv {name}")
        for p in ("fwd", "fwd+bwd"):
            r = {i: res[(i, p)] for i in CONV_IMPLS}
            rows.append([name, p] + [R.num(r[i].median, 1e3, 2) for i in CONV_IMPLS] +
                        [R.ratio_cell(paired_ratio(r["lucid-mlx"], r["mlx"])),
                         R.ratio_cell(paired_ratio(r["lucid-numpy"], r["torch"]))])
            failed += [(f"{name} {p} {CONV_LABELS.get(i, LABELS[i])}", r[i]) for i in CONV_IMPLS]
        if name not in conv.GEMM_WORKLOADS:
            continue
        # the pair on its own: between MLX calls of ~0.3 s each (caches flushed) the plain
        # GEMMs slowed down more than lucid did, which flattered lucid by up to 20 %
        res = _conv_group(pool, name, ("lucid-numpy", "numpy"), plan)
        for p in ("fwd", "fwd+bwd"):
            a, b = res[("lucid-numpy", p)], res[("numpy", p)]
            q = paired_ratio(a, b)
            target = 1.1 if p == "fwd+bwd" else None
            gemm_rows.append([name, p, R.num(a.median, 1e3, 2), R.num(b.median, 1e3, 2),
                              R.ratio_cell(q), "—" if target is None else f"≤ {target}",
                              R.verdict(q, target)])
            failed += [(f"{name} {p} {LABELS[i]} (pair)", res[(i, p)])
                       for i in ("lucid-numpy", "numpy")]
    shown = "" if len(names) == len(conv.WORKLOADS) else \
        f" ({len(names)} of {len(conv.WORKLOADS)} workloads)"
    out = [f"## 2. Conv workloads of benchmarks/conv.py (ms/call, median){shown}", "",
           R.table(["workload", "pass"] + [CONV_LABELS.get(i, LABELS[i]) for i in CONV_IMPLS] +
                   ["lucid[mlx] / raw MLX", "lucid[numpy] / torch"], rows, 2), "",
           "### 1×1 conv vs plain NumPy GEMMs", "",
           R.table(["workload", "pass", "lucid[numpy] ms", "NumPy GEMMs ms", "ratio", "target",
                    "met"], gemm_rows, 2) if gemm_rows else
           f"(not run: none of {', '.join(conv.GEMM_WORKLOADS)} selected)", "",
           CONV_NOTES]
    notes = _notes(failed)
    return "\n".join(out + ([notes] if notes else []))


CONV_NOTES = (
    "- shapes (N, C_in, C_out, size, k, stride, padding, dilation, groups) in "
    "`benchmarks/conv.py` WORKLOADS (size H for a square 2-D image, (L,) in 1-D, (D, H, W) "
    "in 3-D); lucid and torch channels-first, raw MLX channels-last (`mx.conv2d`, or "
    "`mx.conv_general` for the 1-D and 3-D rows); no bias. The "
    "GEMM reference is W·x per image, then Wᵀ·dy and Σ dy·xᵀ (`numpy_gemm_fns`), timed "
    "interleaved with lucid[numpy] alone (with MLX calls in between, the plain GEMMs lost more "
    "to cold caches than lucid did). The lucid fwd+bwd also computes y.sum(); the GEMM "
    "reference starts from dy = ones.")


# -- 3. constraint cost ----------------------------------------------------------------------

def constraint(pool: Pool, profile: dict[str, Any]) -> str:
    """ms per fwd+bwd of the mid conv layer, ConstrainedConv2d per enforce timing vs Conv2d."""
    plan: Plan = profile["heavy"]
    rows, failed = [], []
    enforce = profile["enforce"] or ENFORCE
    variants = ("conv2d",) + tuple(enforce)
    for impl in ("lucid-numpy", "lucid-mlx"):
        res = dict(zip(variants, measure(pool, [(impl, {"kind": "constraint", "variant": v})
                                                for v in variants], plan)))
        for v in variants:
            q = paired_ratio(res[v], res["conv2d"])
            target = 1.10 if v == "forward" else None
            rows.append([LABELS[impl], "Conv2d" if v == "conv2d" else f'enforce="{v}"',
                         R.num(res[v].median, 1e3, 2), R.ratio_cell(q),
                         "—" if target is None else "≤ 1.10", R.verdict(q, target)])
            failed.append((f"{LABELS[impl]} {v}", res[v]))
        _progress(f"constraint {LABELS[impl]}")
    shown = "" if len(enforce) == len(ENFORCE) else \
        f" ({len(enforce)} of {len(ENFORCE)} enforce timings)"
    out = [f"## 3. Constraint cost: {CONSTRAINT_WORKLOAD}, fwd+bwd (ms, median){shown}", "",
           R.table(["backend", "layer", "ms", "vs Conv2d", "target", "met"], rows, 2), "",
           CONSTRAINT_NOTES]
    notes = _notes(failed)
    return "\n".join(out + ([notes] if notes else []))


CONSTRAINT_NOTES = (
    f"- ConstrainedConv2d(constraint=\"{CONSTRAINT}\") (the demo's), no bias; input "
    "requires grad (a mid layer). forward: the forward convolves with constraint(W), "
    "differentiably; post_step: plain forward, then `project_()` as an optimizer step "
    "would trigger; pre_forward: projection in place at the start of each forward.")


# -- 4. MLX memory ---------------------------------------------------------------------------

def memory(pool: Pool, profile: dict[str, Any]) -> str:
    """MLX active memory (bytes held by live arrays) and peak over ``steps`` lucid[mlx]
    training steps after a warm-up, compiled and eager."""
    steps, warmup, every = profile["steps"], 20, max(1, profile["steps"] // 10)
    nets = list(NETS)[:profile["memory_nets"]]
    rows, notes = [], []
    for net in nets:
        for impl in ("lucid-mlx-compiled", "lucid-mlx"):
            w = pool.workers.get(impl)
            if w is None:
                notes.append(f"- {net} {LABELS[impl]}: {pool.missing.get(impl)}")
                continue
            try:
                m = w.call({"op": "memory", "spec": {"kind": "train", "net": net},
                            "steps": steps, "every": every, "warmup": warmup})["result"]
            except WorkerError as e:
                notes.append(f"- {net} {LABELS[impl]}: {e}")
                continue
            _progress(f"memory {net} {LABELS[impl]}")
            growth = max(m["samples"]) - m["after_warmup"]
            tol = 0.01 * m["after_warmup"] + 64 * 1024
            rows.append([net, LABELS[impl], str(steps), R.kib(m["after_warmup"]),
                         R.kib(m["final"]), R.kib(max(m["samples"])), R.kib(m["peak"]),
                         f"{growth / 2**10:+,.1f}", "yes" if growth <= tol else "**no**"])
            notes.append(f"- {net} {LABELS[impl]}: active KiB every {every} steps: "
                         + " ".join(R.kib(s) for s in m["samples"]))
    out = ["## 4. MLX memory over lucid[mlx] training steps", "",
           R.table(["net", "step", "steps", "after warm-up KiB", "final KiB", "max sampled KiB",
                    "peak KiB", "growth KiB", "flat"], rows, 2), "",
           (f"- `mx.get_active_memory()` after {warmup} warm-up steps, then every {every} "
           "steps; peak = `mx.get_peak_memory()` since `mx.reset_peak_memory()` at the end of "
           "the warm-up (all three exist in mlx 0.32 and report on the CPU backend). Flat: "
           "no sample more than 1 % + 64 KiB above the after-warm-up value.")]
    return "\n".join(out + notes)


# -- 5. mixed precision -----------------------------------------------------------------------

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_IMPLS = ("lucid-numpy", "lucid-mlx-compiled", "mlx-compiled")
PRECISION_TARGET = 1.10          # lucid[mlx] bf16 autocast / raw MLX bf16 hand-cast, compiled


def precision(pool: Pool, profile: dict[str, Any]) -> str:
    """µs per training step of the digits and demo nets in fp32, bf16 autocast and fp16
    autocast + GradScaler (lucid), against raw MLX with the model hand-cast; MLX peak memory
    of the lucid[mlx] compiled step per precision."""
    plan: Plan = profile["heavy"]
    nets = [n for n in ("digits CNN", "constrained net") if n in (profile["nets"] or NETS)]
    precisions = profile.get("precisions", PRECISIONS)
    rows, ratio_rows, failed = [], [], []
    for net in nets:
        entries = [(i, {"kind": "train", "net": net, "precision": p})
                   for p in precisions for i in PRECISION_IMPLS]
        res = dict(zip([(e[0], e[1]["precision"]) for e in entries],
                       measure(pool, entries, plan)))
        for p in precisions:
            peak = _peak(pool, net, p, profile)
            rows.append([net, p] + [R.num(res[(i, p)].median) for i in PRECISION_IMPLS]
                        + [R.kib(peak)])
            failed += [(f"{net} {p} {LABELS[i]}", res[(i, p)]) for i in PRECISION_IMPLS]
        _ratio_rows(ratio_rows, net, "lucid[mlx] compiled bf16 / mlx.nn compiled bf16",
                    res[("lucid-mlx-compiled", "bf16")], res[("mlx-compiled", "bf16")],
                    PRECISION_TARGET)
        for i in ("lucid-numpy", "lucid-mlx-compiled"):
            _ratio_rows(ratio_rows, net, f"{LABELS[i]} bf16 / fp32", res[(i, "bf16")],
                        res[(i, "fp32")], None)
        _progress(f"precision {net}")
    out = ["## 5. Mixed precision (µs/step, median)", "",
           R.table(["net", "precision"] + [LABELS[i] for i in PRECISION_IMPLS]
                   + ["lucid[mlx] compiled peak KiB"], rows, 2), "",
           R.table(["net", "ratio", "value", "target", "met"], ratio_rows, 2), "",
           PRECISION_NOTES]
    notes = _notes(failed)
    return "\n".join(out + ([notes] if notes else []))


def _peak(pool: Pool, net: str, p: str, profile: dict[str, Any]) -> int | None:
    """MLX's peak memory over a few compiled lucid[mlx] steps in precision p (None: no MLX)."""
    w = pool.workers.get("lucid-mlx-compiled")
    if w is None:
        return None
    try:
        m = w.call({"op": "memory", "spec": {"kind": "train", "net": net, "precision": p},
                    "steps": 5, "every": 5, "warmup": 2})["result"]
    except WorkerError:
        return None
    return int(m["peak"])


PRECISION_NOTES = (
    "- lucid: the step of `examples/_common.py --precision`: `lucid.autocast` around forward "
    "and loss (convs and Linear in the half type, softmax/loss/BatchNorm in float32), float32 "
    "master weights; fp16 adds a `lucid.amp.GradScaler` to the compiled state. mlx.nn: the "
    "translated model cast by hand (`set_dtype`, half weights and Adam state, the input cast), "
    "no loss scaling — what an MLX user writes without autocast.\n"
    "- lucid[numpy] computes bfloat16 through ml_dtypes (elementwise ufunc loops that convert "
    "every element; conv and matmul widen to float32): a correctness path, not a speed one. "
    "On the "
    "Linux `mlx[cpu]` wheel half precision is no faster either; the gain is on Metal (M3 and "
    "later for bf16). Peak: `mx.get_peak_memory()` over 5 compiled steps after 2 warm-up "
    "ones.")


RUN: dict[str, Callable[[Pool, dict[str, Any]], str]] = {
    "train": train, "conv": conv_section, "constraint": constraint, "memory": memory,
    "precision": precision}

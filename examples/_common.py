"""Training loop and reporting shared by the examples: tqdm progress, per-class table, confusion
matrix, matplotlib figures (Agg backend, written as PNG)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import lucid
from lucid import backends, nn, optim


def default_backend() -> tuple[str, str]:
    """The faster backend on this machine and why: MLX where its default device is a GPU (Metal
    on Apple silicon, or a CUDA build), else the NumPy reference (MLX's CPU build computes the
    same numbers, but its GEMMs are slower than NumPy's BLAS). Returns (name, reason)."""
    if "mlx" not in backends.available():
        return "numpy", "MLX is not installed here"
    if backends.load("mlx").device_type() == "gpu":
        return "mlx", "MLX runs on this machine's GPU"
    return "numpy", "MLX has only its CPU build here, which is slower than NumPy on the CPU"


# --precision: the autocast dtype of each choice (None: plain float32)
PRECISIONS: dict[str, Any] = {"fp32": None, "bf16": lucid.bfloat16, "fp16": lucid.float16}


def example_parser(doc: str, out: str, quick_help: str,
                   threads: int | None = 1) -> argparse.ArgumentParser:
    """The flags every example takes: --backend, --epochs, --quick, --out, --seed, --no-compile,
    --precision, --threads (whose default is ``threads``: one BLAS thread, see
    ``limit_blas_threads``; None leaves BLAS its own, one thread per core)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.set_defaults(threads=threads)
    ap.add_argument("--threads", type=int, metavar="N",
                    help="BLAS threads for the NumPy backend's GEMMs (default: "
                         + ("BLAS's own, one per core" if threads is None else str(threads))
                         + "; see docs/speed.md)")
    ap.add_argument("--backend", choices=["mlx", "numpy"], default=None,
                    help="default: the faster one on this machine (MLX on a GPU, else NumPy)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--out", default=out)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="run the training step eagerly instead of through lucid.compile")
    ap.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                    help="fp32; bf16 = lucid.autocast(bfloat16) (Apple M3 and later); fp16 = "
                         "autocast(float16) + GradScaler (M1/M2). See docs/mixed_precision.md")
    return ap


def setup(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the flags, then select the backend (printing which and why), seed lucid
    and create --out."""
    args = ap.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        ap.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    print(choose_backend(args))
    if args.threads is not None:
        print(limit_blas_threads(args.threads))
    lucid.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    return args


def limit_blas_threads(n: int) -> str:
    """Run the BLAS that NumPy calls on n threads from now on (threadpoolctl). Every example
    runs on one unless --threads says otherwise: on a 2-core box a second thread bought the
    examples' nets 0-9 % a step, and two-thread GEMMs fell at random into stretches ~3x slower
    (``make demo``: 205-283 s on two threads, 175-203 s on one); only --model mislnet gains
    ~10 % from two. The measurements: docs/speed.md, "BLAS threads". Returns the line saying
    so."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n, user_api="blas")
    return f"BLAS threads: {n} (--threads sets them)"


def choose_backend(args: argparse.Namespace) -> str:
    """Fill in ``args.backend`` (the default when --backend was not given) and select it.
    Returns the line that says which backend runs and why."""
    if args.backend is None:
        args.backend, why = default_backend()
        line = f"backend {args.backend} (the default here: {why}; --backend chooses)"
    else:
        line = f"backend {args.backend} (from --backend)"
    lucid.set_backend(args.backend)
    return line


def train_and_report(model: nn.Module, train: tuple[np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray], classes: list[str], epochs: int,
                     lr: float = 3e-3, compile: bool = True, precision: str = "fp32",
                     ) -> tuple[dict, float, np.ndarray, np.ndarray]:
    """Adam with cosine decay, batch 32 (see ``fit``), then the per-class table and confusion
    matrix on the test set. Returns (history, test accuracy, confusion matrix, predictions)."""
    opt = optim.Adam(model.parameters(), lr=lr)
    history, pred = fit(model, opt, train, test, epochs, batch_size=32,
                        scheduler=optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
                        compile=compile, precision=precision)
    cm = confusion(test[1], pred, len(classes))
    print_report(cm, classes)
    return history, float((pred == test[1]).mean()), cm, pred


def save_run(out: str, model: nn.Module, accuracy: float, meta: dict[str, Any],
             figures: list[str], started: float) -> str:
    """Write out/model.safetensors (the state dict plus ``meta`` and the accuracy) and print the
    closing lines; the last is ``test accuracy: 0.xxx``. Returns the checkpoint path."""
    ckpt = os.path.join(out, "model.safetensors")
    lucid.save({"model": model.state_dict(), "test_accuracy": accuracy, **meta}, ckpt)
    print(f"wrote {ckpt} and {', '.join(figures)} in {time.time() - started:.0f}s")
    print(f"test accuracy: {accuracy:.3f}")
    return ckpt


def load_model(path: str, build: Callable[[dict], nn.Module]) -> tuple[nn.Module, dict]:
    """Read a checkpoint written by ``save_run``, build the model from its metadata with
    ``build``, load the weights, switch to eval mode. Returns (model, metadata)."""
    ckpt = lucid.load(path)
    model = build(ckpt)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, {k: v for k, v in ckpt.items() if k != "model"}


def predict(model: nn.Module, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class predictions (N,) for inputs x (N, ...) in eval mode, without building a graph."""
    was_training = model.training
    model.eval()
    out = []
    with lucid.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(lucid.tensor(x[i:i + batch])).argmax(axis=1).numpy())
    model.train(was_training)
    return np.concatenate(out)


def train_step(model: nn.Module, opt, compile: bool = True,
               after_backward: Callable[[], Any] | None = None,
               precision: str = "fp32") -> Callable:
    """step(x, y) -> (mean loss, number of correct predictions), both 0-d tensors: one optimizer
    step with cross entropy; ``after_backward()`` runs between backward and the optimizer step
    (the distributed example averages gradients there). Compiled with ``lucid.compile`` unless
    ``compile`` is False (on MLX one graph per batch shape; on NumPy the same function runs as
    it is). ``precision`` (see ``PRECISIONS``): the forward and loss run under
    ``lucid.autocast``; "fp16" adds a GradScaler (part of the compiled state), parameters stay
    float32 either way."""
    loss_fn = nn.CrossEntropyLoss()
    dtype = PRECISIONS[precision]
    scaler = lucid.amp.GradScaler(enabled=precision == "fp16")

    def step(x: lucid.Tensor, y: lucid.Tensor) -> tuple[lucid.Tensor, lucid.Tensor]:
        opt.zero_grad()
        with lucid.autocast(dtype=dtype or lucid.bfloat16, enabled=dtype is not None):
            logits = model(x)
            loss = loss_fn(logits, y)
        scaler.scale(loss).backward()
        if after_backward is not None:
            after_backward()
        scaler.step(opt)        # opt.step() (skipped on an fp16 overflow); also re-projects
        scaler.update()         # post_step-constrained kernels
        return loss, (logits.argmax(axis=1) == y).sum()

    state = [model, opt] + ([scaler] if scaler.is_enabled() else [])
    return lucid.compile(step, state=state) if compile else step


def fit(model: nn.Module, opt, train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray], epochs: int, batch_size: int,
        scheduler=None, compile: bool = True,
        precision: str = "fp32") -> tuple[dict[str, list[float]], np.ndarray]:
    """Train with cross entropy, one tqdm bar per epoch showing running loss and accuracy (the
    step compiled unless ``compile`` is False, in ``precision``: see ``train_step``). Returns
    the history (loss, train_acc running over the epoch, test_acc, per epoch) and the test-set
    predictions after the last epoch."""
    from tqdm import tqdm
    step = train_step(model, opt, compile, precision=precision)
    data = lucid.data.TensorDataset(lucid.tensor(train[0]), lucid.tensor(train[1]))
    loader = lucid.data.DataLoader(data, batch_size=batch_size, shuffle=True)
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    on_mlx = lucid.get_backend() == "mlx"
    if on_mlx:
        lucid.memory.reset_peak()
    model.train()
    for epoch in range(epochs):
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", file=sys.stdout, disable=None)
        total, correct, seen = 0.0, 0, 0
        for xb, yb in bar:
            loss, hits = step(xb, yb)
            n = yb.shape[0]
            total += loss.item() * n        # read after the step, never inside it
            correct += int(hits.item())
            seen += n
            bar.set_postfix(loss=f"{total / seen:.3f}", acc=f"{correct / seen:.3f}")
        if scheduler is not None:
            scheduler.step()
        history["loss"].append(total / seen)
        history["train_acc"].append(correct / seen)
        pred = predict(model, test[0])
        history["test_acc"].append(float((pred == test[1]).mean()))
        print(f"  epoch {epoch + 1}: loss {total / seen:.3f}  train acc {correct / seen:.3f}  "
              f"test acc {history['test_acc'][-1]:.3f}")
    if on_mlx:
        print(peak_memory_line())
    return history, pred


def peak_memory_line() -> str:
    """What MLX's allocator held at most since the last ``lucid.memory.reset_peak()``."""
    return (f"peak MLX memory: {lucid.memory.peak() / 2**20:.1f} MiB "
            f"(cache now {lucid.memory.cache() / 2**20:.1f} MiB)")


def confusion(y: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts; rows are true classes, columns predictions."""
    return np.bincount(y * n + p, minlength=n * n).reshape(n, n)


def print_report(cm: np.ndarray, classes: list[str]) -> None:
    """Per-class accuracy table and the confusion matrix, as text."""
    print("\nper-class test accuracy")
    for i, c in enumerate(classes):
        print(f"  {c:10s} {cm[i, i] / max(cm[i].sum(), 1):.3f}  ({cm[i].sum()} samples)")
    print("confusion matrix (rows: true, columns: predicted)")
    print("            " + " ".join(f"{c[:9]:>9s}" for c in classes))
    for i, c in enumerate(classes):
        print(f"  {c[:9]:9s} " + " ".join(f"{v:9d}" for v in cm[i]))


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_curves(out: str, history: dict[str, list[float]]) -> str:
    """Loss and accuracy per epoch -> out/curves.png."""
    plt = pyplot()
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(epochs, history["loss"], marker="o")
    a1.set_title("training loss"), a1.set_xlabel("epoch")
    a2.plot(epochs, history["train_acc"], marker="o", label="train")
    a2.plot(epochs, history["test_acc"], marker="o", label="test")
    a2.set_title("accuracy"), a2.set_xlabel("epoch"), a2.legend()
    path = os.path.join(out, "curves.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_confusion(out: str, cm: np.ndarray, classes: list[str]) -> str:
    """The confusion matrix as an annotated heat map -> out/confusion.png."""
    plt = pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(0.7 * k + 3, 0.7 * k + 2.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, str(v), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    path = os.path.join(out, "confusion.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_kernels(out: str, kernels: np.ndarray, title: str, name: str = "filters.png",
                 annotate: bool = True) -> str:
    """Show (K, kh, kw) kernels side by side on a symmetric colour scale -> out/name."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(kernels), figsize=(2.6 * len(kernels), 2.8))
    for ax, k in zip(np.atleast_1d(axes), kernels):
        lim = float(np.abs(k).max()) or 1.0
        im = ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        if annotate:
            for (r, c), v in np.ndenumerate(k):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title)
    path = os.path.join(out, name)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path

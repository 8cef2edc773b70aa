"""A plain Conv2d CNN on scikit-learn's 8×8 handwritten digits (1797 images, 10 classes).

    python examples/digits.py                  # the faster backend here (MLX on a GPU)
    python examples/digits.py --backend numpy --quick

Prints a progress bar per epoch, the per-class table and confusion matrix, writes a safetensors
checkpoint and curves.png / confusion.png / filters.png to --out, and ends with
``test accuracy: 0.xxx``.
"""

from __future__ import annotations

import time

import numpy as np
from _common import (
    example_parser,
    load_model,
    save_confusion,
    save_curves,
    save_kernels,
    save_run,
    setup,
    train_and_report,
)

from lucid import nn


def load_digits(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Stratified 75/25 split: x (N, 1, 8, 8) float32 in [0, 1] (pixels are 0..16), y (N,)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split
    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target.astype(np.int64), test_size=0.25,
                                          stratify=d.target, random_state=seed)
    return (xtr, ytr), (xte, yte)


def build_model() -> nn.Sequential:
    """(N, 1, 8, 8) -> (N, 10) logits: two conv blocks, a max-pool and two Linear layers."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))


def load_checkpoint(path: str) -> tuple[nn.Sequential, dict]:
    """Rebuild the saved model and load its weights. Returns (model, metadata)."""
    return load_model(path, lambda meta: build_model())


def main(argv: list[str] | None = None) -> dict:
    """Run the example; returns accuracy, checkpoint/figure paths and the test set."""
    args = setup(example_parser(__doc__, "runs/digits", "fewer epochs (seconds)"), argv)
    epochs = args.epochs or (4 if args.quick else 8)
    t0 = time.time()
    (xtr, ytr), (xte, yte) = load_digits(args.seed)
    print(f"{len(xtr)} train and {len(xte)} test digits")
    model = build_model()
    classes = [str(i) for i in range(10)]
    history, acc, cm, _ = train_and_report(model, (xtr, ytr), (xte, yte), classes, epochs,
                                           compile=args.compile, precision=args.precision)
    figs = [save_kernels(args.out, model[0].weight.numpy()[:8, 0], "first-layer filters (8 of 16)",
                         annotate=False),
            save_curves(args.out, history), save_confusion(args.out, cm, classes)]
    ckpt = save_run(args.out, model, acc, {"epochs": epochs, "seed": args.seed}, figs, t0)
    return {"accuracy": acc, "checkpoint": ckpt, "figures": figs, "history": history,
            "x_test": xte, "y_test": yte}


if __name__ == "__main__":
    main()

"""On-device training of a constrained CNN that detects image manipulation.

A scaled-down reproduction of Bayar & Stamm's constrained CNN for universal image-manipulation
detection. Data is made offline from images that ship inside scikit-image and scikit-learn; the
train/test split is by source image. The first layer is ``ConstrainedConv2d(1, 3, 5,
constraint="fixed_center", enforce="post_step")``: each filter has centre −1 and neighbours that
sum to 1 (a prediction-error filter), re-projected after every optimizer step.

    python examples/manipulation_detection.py                # binary: original vs median
    python examples/manipulation_detection.py --task multi   # original/median/blur/resample
    python examples/manipulation_detection.py --first-layer plain   # the ablation
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import lucid
import lucid.nn as nn
import lucid.optim as optim
from lucid import backends

CLASSES = {"binary": ["original", "median"],
           "multi": ["original", "median", "blur", "resample"],
           "all": ["original", "median", "blur", "noise", "resample"]}
SKIMAGE = ["camera", "astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "moon", "page",
           "text", "coins", "clock", "hubble_deep_field", "immunohistochemistry", "retina",
           "rocket", "cell", "colorwheel"]


# -- data --------------------------------------------------------------------------------------

def source_images() -> dict[str, np.ndarray]:
    """Grayscale float images in [0, 255] (green channel of colour ones), at most 512 px a side."""
    import skimage.data
    from sklearn.datasets import load_sample_images
    out = {}
    for name in SKIMAGE:
        out[name] = getattr(skimage.data, name)()
    for i, im in enumerate(load_sample_images().images):
        out[f"sklearn_{i}"] = im
    for name, im in out.items():
        im = im[..., 1] if im.ndim == 3 else im
        step = int(np.ceil(max(im.shape) / 512))
        out[name] = np.asarray(im[::step, ::step], dtype=np.float64)
    return out


def manipulate(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one manipulation (scipy), returning an image in [0, 255] rounded like a saved 8-bit
    image."""
    from scipy import ndimage
    if kind == "original":
        out = img
    elif kind == "median":
        out = ndimage.median_filter(img, size=5)
    elif kind == "blur":
        out = ndimage.gaussian_filter(img, sigma=1.1)
    elif kind == "noise":
        out = img + rng.normal(0.0, 2.0, img.shape)
    elif kind == "resample":
        out = ndimage.zoom(img, 1.5, order=1)
    else:
        raise ValueError(f"unknown manipulation {kind!r}")
    return np.clip(np.round(out), 0, 255)


def split_sources(names: list[str], test_every: int = 4) -> tuple[list[str], list[str]]:
    """Deterministic split by source image: every ``test_every``-th name (sorted) is a test image."""
    names = sorted(names)
    test = names[1::test_every]
    return [n for n in names if n not in test], test


def make_patches(images: dict[str, np.ndarray], names: list[str], classes: list[str],
                 per_image: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_image`` random size×size patches of every manipulated version of every named image.
    Returns x (N, 1, size, size) float32, (pixel - 128) / 16, and y (N,) int64."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for name in names:
        for label, kind in enumerate(classes):
            m = manipulate(images[name], kind, rng)
            h, w = m.shape
            rows = rng.integers(0, h - size + 1, per_image)
            cols = rng.integers(0, w - size + 1, per_image)
            for r, c in zip(rows, cols):
                xs.append(m[r:r + size, c:c + size])
                ys.append(label)
    x = ((np.stack(xs)[:, None] - 128.0) / 16.0).astype(np.float32)   # residuals of ~1 grey level stay O(0.1)
    return x, np.array(ys, dtype=np.int64)


def make_dataset(task: str, per_image: int, size: int, seed: int):
    images = source_images()
    train_names, test_names = split_sources(list(images))
    classes = CLASSES[task]
    xtr, ytr = make_patches(images, train_names, classes, per_image, size, seed)
    xte, yte = make_patches(images, test_names, classes, per_image, size, seed + 1)
    return (xtr, ytr), (xte, yte), (train_names, test_names)


# -- model -------------------------------------------------------------------------------------

def build_model(first_layer: str, n_classes: int, size: int) -> nn.Sequential:
    """Constrained residual layer, then a small MISLnet-like stack of conv + BatchNorm + tanh +
    max-pool blocks and two Linear layers."""
    if first_layer == "constrained":
        first = [nn.ConstrainedConv2d(1, 3, 5, padding=2, constraint="fixed_center",
                                      enforce="post_step")]
    elif first_layer == "plain":
        first = [nn.Conv2d(1, 3, 5, padding=2)]
    elif first_layer == "none":
        first = []
    else:
        raise ValueError(f"--first-layer must be constrained, plain or none, got {first_layer!r}")
    c0 = 3 if first else 1
    feat = size // 4
    return nn.Sequential(
        *first,
        nn.Conv2d(c0, 16, 3, padding=1), nn.BatchNorm2d(16), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * feat * feat, 64), nn.Tanh(), nn.Linear(64, n_classes))


def predict(model: nn.Module, x: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with lucid.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(lucid.tensor(x[i:i + batch])).argmax(axis=1).numpy())
    model.train()
    return np.concatenate(out)


def confusion(y: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, p), 1)
    return m


# -- reporting ---------------------------------------------------------------------------------

def save_figures(out: str, model: nn.Module, history: dict, cm: np.ndarray,
                 classes: list[str]) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    first = model[0]
    if isinstance(first, nn.Conv2d):
        w = first.weight.numpy()[:, 0]
        fig, axes = plt.subplots(1, len(w), figsize=(3 * len(w), 3))
        for ax, k in zip(np.atleast_1d(axes), w):
            im = ax.imshow(k, cmap="RdBu_r", vmin=-np.abs(k).max(), vmax=np.abs(k).max())
            for (r, c), v in np.ndenumerate(k):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(f"learned first-layer filters ({type(first).__name__})")
        paths.append(os.path.join(out, "filters.png"))
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(history["loss"], marker="o"), a1.set_title("training loss"), a1.set_xlabel("epoch")
    a2.plot(history["train_acc"], marker="o", label="train")
    a2.plot(history["test_acc"], marker="o", label="test")
    a2.set_title("accuracy"), a2.set_xlabel("epoch"), a2.legend()
    paths.append(os.path.join(out, "curves.png"))
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, str(v), ha="center", va="center")
    paths.append(os.path.join(out, "confusion.png"))
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


# -- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> float:
    from tqdm import tqdm
    default_backend = "mlx" if "mlx" in backends.available() else "numpy"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["mlx", "numpy"], default=default_backend)
    ap.add_argument("--task", choices=["binary", "multi", "all"], default="binary")
    ap.add_argument("--first-layer", choices=["constrained", "plain", "none"],
                    default="constrained")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="a small run that finishes in < 60 s")
    ap.add_argument("--out", default="runs/manipulation")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    lucid.set_backend(args.backend)
    lucid.random.seed(args.seed)
    size = 32
    per_image = 40 if args.quick else 120
    epochs = args.epochs or (4 if args.quick else 8)
    classes = CLASSES[args.task]
    os.makedirs(args.out, exist_ok=True)

    t0 = time.time()
    (xtr, ytr), (xte, yte), (tr_names, te_names) = make_dataset(args.task, per_image, size,
                                                                  args.seed)
    print(f"backend {args.backend}; task {args.task} {classes}; {len(xtr)} train patches from "
          f"{len(tr_names)} images, {len(xte)} test patches from {len(te_names)} other images "
          f"({time.time() - t0:.1f}s)")
    model = build_model(args.first_layer, len(classes), size)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    loader = lucid.data.DataLoader(lucid.data.TensorDataset(lucid.tensor(xtr), lucid.tensor(ytr)),
                                   batch_size=64, shuffle=True)
    history = {"loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(epochs):
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=True, file=sys.stdout,
                   disable=None)
        total, correct, seen = 0.0, 0, 0
        for xb, yb in bar:
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()                      # also re-projects the fixed_center filters
            n = yb.shape[0]
            total += loss.item() * n
            correct += int((logits.argmax(axis=1).numpy() == yb.numpy()).sum())
            seen += n
            bar.set_postfix(loss=f"{total / seen:.3f}", acc=f"{correct / seen:.3f}")
        sched.step()
        history["loss"].append(total / seen)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(float((predict(model, xte) == yte).mean()))
        print(f"  train acc {correct / seen:.3f}  test acc {history['test_acc'][-1]:.3f}")

    pred = predict(model, xte)
    acc = float((pred == yte).mean())
    cm = confusion(yte, pred, len(classes))
    print("\nper-class test accuracy")
    for i, c in enumerate(classes):
        print(f"  {c:10s} {cm[i, i] / max(cm[i].sum(), 1):.3f}  ({cm[i].sum()} patches)")
    print("confusion matrix (rows: true, columns: predicted)")
    print("            " + " ".join(f"{c[:9]:>9s}" for c in classes))
    for i, c in enumerate(classes):
        print(f"  {c[:9]:9s} " + " ".join(f"{v:9d}" for v in cm[i]))
    ckpt = os.path.join(args.out, "model.safetensors")
    lucid.save({"model": model.state_dict(), "task": args.task, "first_layer": args.first_layer,
                "classes": classes, "test_accuracy": acc, "epochs": epochs}, ckpt)
    figs = save_figures(args.out, model, history, cm, classes)
    print(f"wrote {ckpt} and {', '.join(figs)} in {time.time() - t0:.0f}s")
    print(f"test accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
